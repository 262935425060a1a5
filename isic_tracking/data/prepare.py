"""The ``prepare`` stage without MLflow: read a layout, merge extra malignant images, cache."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from isic_tracking.data.cache import CacheResult, build_cache
from isic_tracking.data.sources import SourceResult, merge_external_malignant, read_source
from isic_tracking.data.sources.result import concat_reports
from isic_tracking.data.testset import ChosenTestSet, attach_test_set
from isic_tracking.errors import IsicInputError


@dataclass
class Prepared:
    """A prepared data set: the source reading, the cache, where the manifest lies and how
    its test set was made."""

    source: SourceResult
    cache: CacheResult
    manifest_path: Path
    test_set: ChosenTestSet = ChosenTestSet("none", "not recorded", 0)

    def counts(self) -> dict[str, int]:
        """Counters of reading + caching, for metrics."""
        return {
            **self.source.counters(),
            "n_cached": self.cache.n_cached,
            "n_reused": self.cache.n_reused,
            "n_skipped_images": self.cache.n_skipped,
        }

    def skip_report(self) -> pd.DataFrame:
        """Every image left out, by the reader (missing, unlisted, duplicate, already
        present) or by the cache (unreadable): what ``out/skipped.csv`` and the run hold."""
        return concat_reports([self.source.report, self.cache.skipped])


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
) -> Prepared:
    """Read ``root`` as ``dataset``, optionally merge the malignant images of
    ``extra_malignant`` (read as ``extra_dataset``, e.g. ISIC 2019 MEL into ISIC 2020, as the
    thesis did), attach the test set (``test_dataset`` read from ``test_root``, else the
    source's own test rows, else ``test_fraction`` of the training rows held out:
    :func:`isic_tracking.data.testset.attach_test_set`), then cache every image once at
    ``image_size`` under ``out``, listing every image left out in ``out/skipped.csv``
    (:meth:`Prepared.skip_report`).
    """
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
    prepared = Prepared(source, cache, Path(out) / "manifest.csv", test_set)
    prepared.skip_report().to_csv(skipped_csv, index=False)  # the cache wrote its own part
    return prepared
