"""What a reader returns: the manifest, the skip report and counters; stacking and merging them.

Skip reasons (``REASONS``):
- ``missing_file``: listed in the CSV, no image file.
- ``unlisted_file``: image file present, not listed in the CSV (not used).
- ``duplicate_dropped``: listed as ``image_name_2`` in ``ISIC_2020_Training_Duplicates.csv``, or
  the same image id in two class folders (the first is kept).
- ``already_present``: an external image whose id the base set already has
  (:func:`merge_external_malignant`).
- ``no_label``: ISIC Archive, binary task: the row's label is Indeterminate or empty.
- ``unmapped_diagnosis``: ISIC Archive, multiclass task: the diagnosis is none of the 8 classes.
- ``missing_in_hdf5``: ISIC 2024: listed in the CSV, not a key of ``train-image.hdf5``.
- ``leakage_duplicate``: ``prepare``: the same picture as another image (exact or near copy,
  :mod:`isic_tracking.data.leakage`), dropped by ``dedupe``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields

import pandas as pd

from isic_tracking.data.manifest import BINARY_CLASSES, normalize_manifest
from isic_tracking.data.sources.checks import check_malignant_classes
from isic_tracking.data.sources.constants import REPORT_COLUMNS
from isic_tracking.errors import IsicInputError


@dataclass
class SourceResult:
    """What a reader found.

    Attributes:
        manifest: the usable images, in the manifest format (``normalize_manifest``).
        report: every image not used, ``image_id, path, reason`` (see ``REASONS``).
        n_listed: rows in the label CSV(s) (folders: image files found).
        n_missing: listed but no file.
        n_unlisted: file present but not listed.
        n_duplicates_dropped: listed duplicates (or repeated ids) dropped.
        n_external_added: images added by :func:`merge_external_malignant`.
        n_already_present: external images skipped because the id was already there.
    """

    manifest: pd.DataFrame
    report: pd.DataFrame = field(default_factory=lambda: empty_report())
    n_listed: int = 0
    n_missing: int = 0
    n_unlisted: int = 0
    n_duplicates_dropped: int = 0
    n_external_added: int = 0
    n_already_present: int = 0

    def counters(self) -> dict[str, int]:
        """All ``n_*`` counters plus ``n_images`` (manifest rows), e.g. to log as metrics."""
        out = {f.name: int(getattr(self, f.name)) for f in fields(self) if f.name.startswith("n_")}
        out["n_images"] = len(self.manifest)
        return out


def _counter_names() -> list[str]:
    return [f.name for f in fields(SourceResult) if f.name.startswith("n_")]


def empty_report() -> pd.DataFrame:
    """A skip report with no rows."""
    return pd.DataFrame({c: pd.Series(dtype="str") for c in REPORT_COLUMNS})


def report(ids: Iterable[str], paths: Iterable[str], reason: str) -> pd.DataFrame:
    """Skip-report rows: one per (id, path), all with ``reason`` (one of ``REASONS``)."""
    ids, paths = list(ids), list(paths)
    return pd.DataFrame(
        {"image_id": pd.Series(ids, dtype="str"), "path": pd.Series(paths, dtype="str")}
    ).assign(reason=reason)


def concat_reports(reports: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Stack skip reports (empty ones dropped) into one with the ``REPORT_COLUMNS``."""
    reports = [r for r in reports if len(r)]
    if not reports:
        return empty_report()
    return pd.concat(reports, ignore_index=True)[list(REPORT_COLUMNS)]


def finish(
    df: pd.DataFrame, paths: pd.Series, reports: Sequence[pd.DataFrame], **counters: int
) -> SourceResult:
    """A reader's result: keep the rows with a file, normalize, and attach the report."""
    df = df.assign(path=paths)
    df = df[paths.notna()]
    skipped = concat_reports(reports)
    counts = {
        "n_missing": int((skipped["reason"] == "missing_file").sum()),
        "n_unlisted": int((skipped["reason"] == "unlisted_file").sum()),
    } | counters
    return SourceResult(manifest=normalize_manifest(df), report=skipped, **counts)


def concat_results(results: Sequence[SourceResult]) -> SourceResult:
    """Stack several results (e.g. a training and a test source); ids must stay unique."""
    manifest = pd.concat([r.manifest for r in results], ignore_index=True)
    dup = manifest["image_id"][manifest["image_id"].duplicated()]
    if len(dup):
        raise IsicInputError(
            f"image id {dup.iloc[0]!r} appears in several sources "
            f"({sorted(set(manifest.loc[manifest['image_id'] == dup.iloc[0], 'source']))}); "
            "remove it from one of them"
        )
    out = SourceResult(
        manifest=normalize_manifest(manifest),
        report=concat_reports([r.report for r in results]),
    )
    for name in _counter_names():
        setattr(out, name, sum(getattr(r, name) for r in results))
    return out


def merge_external_malignant(
    base: SourceResult, extra: SourceResult, malignant_classes: Sequence[str] = ("MEL",)
) -> SourceResult:
    """Add another source's malignant images to a binary training set (thesis: 2020 + 2019 MEL).

    The extra images become label 1 / "malignant", ``is_external=True``, split "train"; ids the
    base already has are skipped and reported as ``already_present``. In the thesis this took
    ISIC 2020 from 584 to 5,106 malignant images.

    Args:
        base: a binary result (e.g. :func:`read_isic2020`).
        extra: a multiclass result (its ``label_name`` in ``malignant_classes`` is taken) or a
            binary one (its "malignant" rows are taken).
        malignant_classes: ISIC 2019 classes counted as malignant.

    Returns:
        A new SourceResult: base rows, then the added rows; reports and counters combined.
    """
    classes = check_malignant_classes(malignant_classes)
    base_names = set(base.manifest["label_name"])
    if not base_names <= set(BINARY_CLASSES):
        raise IsicInputError(
            f"merge_external_malignant needs a binary base set; it has labels {sorted(base_names)}"
        )
    extra_df = extra.manifest
    wanted = extra_df["label_name"].isin((*classes, BINARY_CLASSES[1]))
    add = extra_df[wanted]
    present = add["image_id"].isin(set(base.manifest["image_id"]))
    skipped = report(add.loc[present, "image_id"], add.loc[present, "path"], "already_present")
    add = add[~present].copy()
    if "diagnosis" not in add.columns or add["label_name"].isin(classes).all():
        add["diagnosis"] = add["label_name"]
    add["label"] = 1
    add["label_name"] = BINARY_CLASSES[1]
    add["is_external"] = True
    add["split"] = "train"
    merged = concat_results([base, SourceResult(manifest=normalize_manifest(add))])
    merged.report = concat_reports([base.report, extra.report, skipped])
    for name in _counter_names():
        setattr(merged, name, getattr(base, name) + getattr(extra, name))
    merged.n_external_added = base.n_external_added + len(add)
    merged.n_already_present = base.n_already_present + len(skipped)
    return merged
