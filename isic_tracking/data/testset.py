"""The test set of a prepared data set: the images no training, search or fold ever sees.

Three ways, in this order of precedence:

1. **another data set** (``test_dataset`` + ``test_root``, e.g. the ISIC 2016 Part 3 test set
   for the binary task): all its rows become ``split == "test"``; test rows the training
   source brought itself are then left out (reported), and a training image whose id is also
   a test image is dropped from training (reported as ``in_test_set``), so ids stay unique and
   no test image is trained on;
2. **the source's own test rows** (``split == "test"``, e.g. the synthetic set's ISIC 2016 part
   or the Kaggle folders' ``Test/``);
3. **a held-out split** of the training rows (``test_fraction`` > 0): stratified by label and
   grouped by patient / lesion where the manifest has them (:func:`.splits.holdout_split`),
   carved out in ``prepare`` before any fold exists, so search and train never see it.

Everything is recorded: :func:`attach_test_set` says which way was taken in words.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from isic_tracking.data.manifest import normalize_manifest
from isic_tracking.data.sources.result import SourceResult, concat_reports, report
from isic_tracking.data.splits import group_ids, holdout_split
from isic_tracking.errors import IsicInputError

#: default fraction of the training rows held out as the test set when the data has none
TEST_FRACTION = 0.15
TEST_FRACTION_HELP = (
    "data without a test set (no test_dataset, no split=test rows): hold out this fraction of "
    "the training rows, stratified, grouped by patient/lesion, before any fold (0: none)"
)
#: skip reasons of this module (beside the readers' ``REASONS``)
IN_TEST_SET = "in_test_set"
REPLACED_BY_TEST_SET = "replaced_by_test_set"


@dataclass(frozen=True)
class ChosenTestSet:
    """How the test set of a prepared data set was made.

    Attributes:
        kind: ``dataset`` (another data set), ``source`` (the source's own test rows),
            ``holdout`` (carved out of the training rows) or ``none``.
        about: the same in words, for the run's description and params.
        n_test: test rows.
    """

    kind: str
    about: str
    n_test: int


def _test_mask(df: pd.DataFrame) -> pd.Series:
    return df["split"].astype(str) == "test"


def holdout_test(df: pd.DataFrame, fraction: float = TEST_FRACTION, seed: int = 0) -> pd.DataFrame:
    """Mark about ``fraction`` of the ``split == "train"`` rows as ``split == "test"``.

    Stratified by label and grouped (every image of a patient, else of a lesion, on one side)
    where ``patient_id`` / ``lesion_id`` exist; every class with at least two images lands on
    both sides (:func:`.splits.holdout_split`). Rows keep their order; deterministic in ``seed``.
    """
    if not 0.0 < fraction < 1.0:
        raise IsicInputError(f"test_fraction={fraction} must lie strictly between 0 and 1")
    out = df.copy()
    train_rows = out[~_test_mask(out)]
    if len(train_rows) < 4:
        raise IsicInputError(
            f"{len(train_rows)} training rows are too few to hold out a test set; "
            "give test_dataset/test_root or test_fraction=0"
        )
    _, held = holdout_split(train_rows, val_fraction=fraction, seed=seed, grouped=True)
    out.loc[out["image_id"].isin(set(held["image_id"])), "split"] = "test"
    return out


def _as_test(test: SourceResult) -> pd.DataFrame:
    rows = test.manifest.copy()
    rows["split"] = "test"
    return rows


def with_test_dataset(source: SourceResult, test: SourceResult) -> SourceResult:
    """``source``'s training rows plus every row of ``test`` as ``split == "test"``.

    The source's own test rows are left out (``replaced_by_test_set``); a training row whose
    image id is a test image is dropped from training (``in_test_set``). Counters of both
    readings add up; the skip reports are joined.
    """
    base = source.manifest
    test_rows = _as_test(test)
    own_test = _test_mask(base)
    clash = ~own_test & base["image_id"].isin(set(test_rows["image_id"]))
    dropped = [
        report(base.loc[own_test, "image_id"], base.loc[own_test, "path"], REPLACED_BY_TEST_SET),
        report(base.loc[clash, "image_id"], base.loc[clash, "path"], IN_TEST_SET),
    ]
    kept = base[~own_test & ~clash]
    out = SourceResult(
        manifest=normalize_manifest(pd.concat([kept, test_rows], ignore_index=True)),
        report=concat_reports([source.report, test.report, *dropped]),
    )
    for name in source.counters():
        if name != "n_images":
            setattr(out, name, getattr(source, name) + getattr(test, name))
    return out


def attach_test_set(
    source: SourceResult,
    test: SourceResult | None = None,
    test_name: str = "",
    fraction: float = 0.0,
    seed: int = 0,
) -> tuple[SourceResult, ChosenTestSet]:
    """The source with its test set (see the module docstring for the order), and how.

    Args:
        source: what the training reader returned.
        test: another data set read as the test set (e.g. ISIC 2016 Part 3), or None.
        test_name: its dataset name, for the record.
        fraction: held-out fraction of the training rows when neither ``test`` nor the source
            has test rows (0: no test set).
        seed: seed of the held-out split.
    """
    if test is not None:
        out = with_test_dataset(source, test)
        n = int(_test_mask(out.manifest).sum())
        return out, ChosenTestSet("dataset", f"data set {test_name or 'given'} ({n} images)", n)
    n_own = int(_test_mask(source.manifest).sum())
    if n_own:
        about = f"the source's own test rows ({n_own} images)"
        return source, ChosenTestSet("source", about, n_own)
    if fraction <= 0:
        return source, ChosenTestSet("none", "none (test_fraction=0 and no test rows)", 0)
    manifest = holdout_test(source.manifest, fraction, seed)
    n = int(_test_mask(manifest).sum())
    grouped = group_ids(source.manifest) is not None
    out = SourceResult(**{**source.__dict__, "manifest": manifest})
    about = (
        f"held-out {n} images ({fraction:g} of the training rows, stratified, "
        f"{'grouped by patient/lesion' if grouped else 'ungrouped'}, seed {seed})"
    )
    return out, ChosenTestSet("holdout", about, n)


__all__ = [
    "IN_TEST_SET",
    "TEST_FRACTION_HELP",
    "REPLACED_BY_TEST_SET",
    "TEST_FRACTION",
    "ChosenTestSet",
    "attach_test_set",
    "holdout_test",
    "with_test_dataset",
]
