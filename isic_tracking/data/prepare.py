"""The ``prepare`` stage without MLflow: read a layout, merge extra malignant images, cache."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from isic_tracking.data.cache import CacheResult, build_cache
from isic_tracking.data.sources import SourceResult, merge_external_malignant, read_source
from isic_tracking.data.sources.result import concat_reports
from isic_tracking.errors import IsicInputError


@dataclass
class Prepared:
    """A prepared data set: the source reading, the cache and where the manifest lies."""

    source: SourceResult
    cache: CacheResult
    manifest_path: Path

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
) -> Prepared:
    """Read ``root`` as ``dataset``, optionally merge the malignant images of
    ``extra_malignant`` (read as ``extra_dataset``, e.g. ISIC 2019 MEL into ISIC 2020, as the
    thesis did), then cache every image once at ``image_size`` under ``out``, listing every
    image left out in ``out/skipped.csv`` (:meth:`Prepared.skip_report`).
    """
    source = read_source(dataset, root, task=task)
    if extra_malignant:
        extra = read_source(extra_dataset, extra_malignant, task="multiclass")
        source = merge_external_malignant(source, extra)
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
    prepared = Prepared(source, cache, Path(out) / "manifest.csv")
    prepared.skip_report().to_csv(skipped_csv, index=False)  # the cache wrote its own part
    return prepared
