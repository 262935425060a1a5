"""The test set of a prepared data set: another data set, the source's own test rows, or a
held-out split made before any fold (stratified, grouped, recorded)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from isic_tracking.data.manifest import normalize_manifest
from isic_tracking.data.prepare import prepare_dataset
from isic_tracking.data.sources import read_source
from isic_tracking.data.sources.result import SourceResult
from isic_tracking.data.splits import assign_folds, group_ids
from isic_tracking.data.testset import (
    IN_TEST_SET,
    REPLACED_BY_TEST_SET,
    attach_test_set,
    holdout_test,
    with_test_dataset,
)
from isic_tracking.errors import IsicInputError


def _rows(n: int, n_patients: int, split: str = "train", prefix: str = "ISIC_") -> pd.DataFrame:
    return normalize_manifest(
        pd.DataFrame(
            {
                "image_id": [f"{prefix}{i:04d}" for i in range(n)],
                "path": [f"/x/{i}.jpg" for i in range(n)],
                "label": [int(i % 4 == 0) for i in range(n)],
                "label_name": ["malignant" if i % 4 == 0 else "benign" for i in range(n)],
                "split": split,
                "source": "t",
                "patient_id": [f"P{i % n_patients}" for i in range(n)],
            }
        )
    )


def test_holdout_is_stratified_grouped_and_deterministic() -> None:
    df = _rows(200, 50)
    out = holdout_test(df, 0.2, seed=3)
    test = out[out["split"] == "test"]
    assert 0.1 * len(df) <= len(test) <= 0.3 * len(df)
    assert set(test["label"]) == {0, 1}
    assert abs(test["label"].mean() - df["label"].mean()) < 0.1
    groups = group_ids(out)
    assert not set(groups[out["split"] == "test"]) & set(groups[out["split"] == "train"])
    assert out.equals(holdout_test(df, 0.2, seed=3))
    assert not out.equals(holdout_test(df, 0.2, seed=4))
    assert list(out["image_id"]) == list(df["image_id"])  # rows keep their order


def test_folds_never_see_the_held_out_rows() -> None:
    out = assign_folds(holdout_test(_rows(120, 40), 0.15), n_folds=3)
    assert (out.loc[out["split"] == "test", "fold"] == -1).all()
    assert (out.loc[out["split"] == "train", "fold"] >= 0).all()


def test_bad_fraction_and_too_few_rows_are_errors() -> None:
    with pytest.raises(IsicInputError, match="strictly between"):
        holdout_test(_rows(20, 5), 1.0)
    with pytest.raises(IsicInputError, match="too few"):
        holdout_test(_rows(3, 3), 0.2)


def test_precedence_dataset_then_own_rows_then_holdout_then_none() -> None:
    train = SourceResult(manifest=_rows(40, 10))
    own = SourceResult(
        manifest=normalize_manifest(pd.concat([_rows(40, 10), _rows(8, 4, "test", "T_")]))
    )
    other = SourceResult(manifest=_rows(6, 3, "train", "O_"))
    _, chosen = attach_test_set(own, other, "isic2016-test", fraction=0.2)
    assert (chosen.kind, chosen.n_test) == ("dataset", 6) and "isic2016-test" in chosen.about
    _, chosen = attach_test_set(own, None, fraction=0.2)
    assert (chosen.kind, chosen.n_test) == ("source", 8)
    held, chosen = attach_test_set(train, None, fraction=0.2, seed=1)
    assert chosen.kind == "holdout" and chosen.n_test == (held.manifest["split"] == "test").sum()
    assert "grouped by patient/lesion" in chosen.about and "seed 1" in chosen.about
    same, chosen = attach_test_set(train, None, fraction=0.0)
    assert chosen.kind == "none" and same.manifest.equals(train.manifest)


def test_a_test_dataset_replaces_own_test_rows_and_drops_shared_ids_from_training() -> None:
    base = normalize_manifest(pd.concat([_rows(10, 5), _rows(3, 3, "test", "T_")]))
    test = _rows(4, 2, "train")  # ids ISIC_0000..0003 are also training ids of the base
    out = with_test_dataset(
        SourceResult(manifest=base, n_listed=13), SourceResult(test, n_listed=4)
    )
    m = out.manifest
    assert m["image_id"].is_unique
    assert set(m.loc[m["split"] == "test", "image_id"]) == set(test["image_id"])
    assert len(m[m["split"] == "train"]) == 6
    reasons = out.report.groupby("reason")["image_id"].apply(set).to_dict()
    assert reasons[IN_TEST_SET] == set(test["image_id"])
    assert reasons[REPLACED_BY_TEST_SET] == {"T_0000", "T_0001", "T_0002"}
    assert out.n_listed == 17


def test_prepare_takes_a_test_dataset_or_holds_out(synthetic_root: Path, tmp_path: Path) -> None:
    """The synthetic ISIC 2016 layout as the test set of the synthetic ISIC 2019 (binary);
    without one, a held-out split of the multiclass rows."""
    root2016 = synthetic_root / "isic2016"
    prepared = prepare_dataset(
        "isic2019", synthetic_root / "isic2019", tmp_path / "a", task="binary", image_size=32,
        test_dataset="isic2016-test", test_root=root2016, workers=1,
    )  # fmt: skip
    m = prepared.cache.manifest
    n2016 = len(read_source("isic2016-test", root2016).manifest)
    assert (m["split"] == "test").sum() == n2016 == prepared.test_set.n_test
    assert set(m.loc[m["split"] == "test", "source"]) == {"isic2016"}
    held = prepare_dataset(
        "isic2019", synthetic_root / "isic2019", tmp_path / "b", task="multiclass",
        image_size=32, test_fraction=0.2, workers=1,
    )  # fmt: skip
    test = held.cache.manifest[held.cache.manifest["split"] == "test"]
    assert held.test_set.kind == "holdout" and len(test) == held.test_set.n_test > 0
    with pytest.raises(IsicInputError, match="together"):
        prepare_dataset("isic2019", synthetic_root / "isic2019", tmp_path / "c",
                        test_dataset="isic2016-test")  # fmt: skip
