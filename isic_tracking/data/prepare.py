"""The ``prepare`` stage without MLflow: read a layout, merge extra malignant images, cache."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from isic_tracking.data.artifact_labels import (
    ArtifactJoin,
    ArtifactLabels,
    join_artifacts,
    read_artifact_labels,
)
from isic_tracking.data.cache import CacheResult, build_cache
from isic_tracking.data.leakage import (
    PlantedCheck,
    check_dedupe,
    check_planted,
    drop_duplicates_from,
    duplicate_pairs,
    image_hashes,
)
from isic_tracking.data.manifest import write_manifest
from isic_tracking.data.sources import SourceResult, merge_external_malignant, read_source
from isic_tracking.data.sources.result import concat_reports, report
from isic_tracking.data.synthetic.near_duplicates import read_near_duplicates
from isic_tracking.data.testset import ChosenTestSet, attach_test_set
from isic_tracking.errors import IsicInputError


@dataclass
class Leakage:
    """The duplicate check of a prepared set: every pair found, the images ``dedupe`` dropped,
    and, for a synthetic set with planted near-duplicates, the check against that truth."""

    pairs: pd.DataFrame
    dropped: pd.DataFrame
    dedupe: str
    planted: PlantedCheck | None = None

    def counts(self) -> dict[str, int]:
        """``leakage_pairs`` (all), ``_exact``, ``_near``, ``_cross_split``,
        ``_cross_source``, ``leakage_dropped`` (+ the planted counts when there is truth)."""
        p = self.pairs
        out = {
            "leakage_pairs": len(p),
            "leakage_exact": int((p["kind"] == "exact").sum()),
            "leakage_near": int((p["kind"] == "near").sum()),
            "leakage_cross_split": int((p["split_a"] != p["split_b"]).sum()),
            "leakage_cross_source": int((p["source_a"] != p["source_b"]).sum()),
            "leakage_dropped": len(self.dropped),
        }
        return out | (self.planted.metrics() if self.planted else {})


@dataclass
class Prepared:
    """A prepared data set: the source reading, the cache, where the manifest lies and how
    its test set was made."""

    source: SourceResult
    cache: CacheResult
    manifest_path: Path
    test_set: ChosenTestSet = ChosenTestSet("none", "not recorded", 0)
    leakage: Leakage | None = field(default=None)
    labels: ArtifactLabels | None = field(default=None)
    artifacts: ArtifactJoin | None = field(default=None)

    def counts(self) -> dict[str, int]:
        """Counters of reading + caching (+ the leakage check), for metrics."""
        return {
            **self.source.counters(),
            "n_cached": self.cache.n_cached,
            "n_reused": self.cache.n_reused,
            "n_skipped_images": self.cache.n_skipped,
            **(self.leakage.counts() if self.leakage else {}),
            **(self.artifacts.counts(len(self.labels.skipped)) if self.artifacts else {}),
        }

    def skip_report(self) -> pd.DataFrame:
        """Every image left out, by the reader (missing, unlisted, duplicate, already
        present), by the cache (unreadable) or by ``dedupe`` (``leakage_duplicate``): what
        ``out/skipped.csv`` and the run hold."""
        dropped = self.leakage.dropped if self.leakage else pd.DataFrame(columns=["image_id"])
        paths = self.source.manifest.set_index("image_id")["path"]
        deduped = report(dropped["image_id"], dropped["image_id"].map(paths), "leakage_duplicate")
        return concat_reports([self.source.report, self.cache.skipped, deduped])


def check_leakage(
    cache: CacheResult, dedupe: str, truth_folders: list[str | Path]
) -> tuple[pd.DataFrame, Leakage]:
    """Hash the cached images, pair duplicates, drop per ``dedupe``; check planted truth
    found in ``truth_folders`` (see :func:`read_near_duplicates`). Returns the kept manifest."""
    df = cache.manifest
    pairs = duplicate_pairs(image_hashes(df))
    kept, dropped = drop_duplicates_from(df, pairs, dedupe)
    planted = read_near_duplicates(*truth_folders)
    check = None if planted is None else check_planted(pairs, planted, df["image_id"])
    return kept, Leakage(pairs, dropped, dedupe, check)


def prepare_dataset(
    dataset: str,
    root: str | Path,
    out: str | Path,
    task: str | None = None,
    extra_malignant: str | Path | None = None,
    extra_dataset: str = "isic2019",
    image_size: int = 256,
    max_bad_fraction: float = 0.05,
    workers: int | None = None,
    test_dataset: str | None = None,
    test_root: str | Path | None = None,
    test_fraction: float = 0.0,
    test_seed: int = 0,
    dedupe: str = "test",
    artifacts: str | Path | None = None,
    artifact_threshold: float = 0.5,
) -> Prepared:
    """Read ``root`` as ``dataset``, optionally merge the malignant images of
    ``extra_malignant`` (read as ``extra_dataset``, e.g. ISIC 2019 MEL into ISIC 2020, as the
    thesis did), attach the test set (``test_dataset`` read from ``test_root``, else the
    source's own test rows, else ``test_fraction`` of the training rows held out:
    :func:`isic_tracking.data.testset.attach_test_set`), then cache every image once at
    ``image_size`` under ``out``, listing every image left out in ``out/skipped.csv``
    (:meth:`Prepared.skip_report`). Then the cached images are checked for duplicates across
    splits and sources (:func:`check_leakage`); ``dedupe`` (``test``, ``all``, ``none``, see
    :func:`isic_tracking.data.leakage.drop_duplicates_from`) says which copies leave the
    manifest: by default the test-side copy, so no test image has a copy in training.
    ``artifacts`` (a Bissoto label file, see :mod:`.artifact_labels`; probabilities count from
    ``artifact_threshold``) sets the manifest's ``artifact`` column.
    """
    check_dedupe(dedupe)
    labels = read_artifact_labels(artifacts, artifact_threshold) if artifacts else None
    source = read_source(dataset, root, task=task)
    if extra_malignant:
        extra = read_source(extra_dataset, extra_malignant, task="multiclass")
        source = merge_external_malignant(source, extra)
    if bool(test_dataset) != bool(test_root):
        raise IsicInputError("give test_dataset and test_root together (or neither)")
    test = read_source(test_dataset, test_root, task=task) if test_dataset else None
    source, test_set = attach_test_set(source, test, test_dataset or "", test_fraction, test_seed)
    skipped_csv = Path(out) / "skipped.csv"
    try:
        cache = build_cache(
            source.manifest,
            out,
            image_size=image_size,
            max_bad_fraction=max_bad_fraction,
            workers=workers,
        )
    except IsicInputError:  # too many unreadable files: list the reader's skips there too
        if skipped_csv.is_file():
            unreadable = pd.read_csv(skipped_csv, dtype=str)
            concat_reports([source.report, unreadable]).to_csv(skipped_csv, index=False)
        raise
    roots = [root] + ([extra_malignant] if extra_malignant else [])
    kept, leakage = check_leakage(cache, dedupe, roots)
    joined = None
    if labels is not None:
        kept, joined = join_artifacts(kept, labels)
    if len(leakage.dropped) or joined is not None:
        write_manifest(kept, Path(out) / "manifest.csv")
        cache.manifest = kept
    prepared = Prepared(
        source, cache, Path(out) / "manifest.csv", test_set, leakage, labels, joined
    )
    prepared.skip_report().to_csv(skipped_csv, index=False)  # the cache wrote its own part
    return prepared
