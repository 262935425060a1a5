from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from isic_tracking.data.manifest import normalize_manifest
from isic_tracking.data.splits import (
    assign_folds,
    check_fold,
    fold_class_counts,
    fold_split,
    group_ids,
    holdout_split,
    split_digest,
    stratified_subset,
    write_folds_csv,
)
from isic_tracking.errors import IsicInputError
from tests.helpers import folds_from_csv

CLASSES = ("benign", "malignant")


def patients_manifest(
    n_patients: int = 40, per_patient: int = 4, malignant_every: int = 4, seed: int = 0
) -> pd.DataFrame:
    """ISIC-2020-like: several images per patient, some patients with a malignant image."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        for j in range(int(rng.integers(1, per_patient + 1))):
            label = int(p % malignant_every == 0 and j == 0)
            rows.append(
                {
                    "image_id": f"ISIC_{len(rows):07d}",
                    "path": f"/x/{len(rows)}.jpg",
                    "label": label,
                    "label_name": CLASSES[label],
                    "source": "isic2020",
                    "patient_id": f"IP_{p:04d}",
                }
            )
    return normalize_manifest(pd.DataFrame(rows))


def test_grouped_folds_keep_patients_together_and_stratify():
    df = patients_manifest()
    out = assign_folds(df, n_folds=4, seed=0)
    assert out["fold"].dtype == np.int64 and set(out["fold"]) == {0, 1, 2, 3}
    assert out.groupby("patient_id")["fold"].nunique().max() == 1
    for k in range(4):
        tr, va = fold_split(out, k)
        check_fold(tr, va, CLASSES, k)  # every class on both sides
        assert set(tr["image_id"]).isdisjoint(va["image_id"])
        assert len(tr) + len(va) == len(df)
        assert set(tr["patient_id"]).isdisjoint(va["patient_id"])
    assert out.attrs["fold_scheme"] == "stratified-group"
    assert df.equals(patients_manifest())  # input untouched


def test_plain_stratified_folds_on_request():
    df = patients_manifest()
    out = assign_folds(df, n_folds=4, seed=0, grouped=False)
    assert out.attrs["fold_scheme"] == "stratified"
    assert out.groupby("patient_id")["fold"].nunique().max() > 1  # patients do get split
    sizes = out["fold"].value_counts()
    assert sizes.max() - sizes.min() <= 1
    malignant = out[out["label"] == 1]["fold"].value_counts()
    assert malignant.max() - malignant.min() <= 1


def test_folds_are_seeded():
    df = patients_manifest()
    a, b, c = (assign_folds(df, 4, seed=s)["fold"] for s in (1, 1, 2))
    assert a.equals(b) and not a.equals(c)


def test_only_train_rows_get_folds():
    df = patients_manifest()
    df.loc[df.index[-5:], "split"] = "test"
    out = assign_folds(df, n_folds=3)
    assert (out.loc[df.index[-5:], "fold"] == -1).all()
    assert (out.loc[df.index[:-5], "fold"] >= 0).all()
    tr, va = fold_split(out, 0)
    assert "test" not in set(tr["split"]) | set(va["split"])


def test_group_ids_prefer_patient_then_lesion_then_row():
    df = pd.DataFrame(
        {
            "patient_id": ["P1", None, None, "P1", None],
            "lesion_id": ["L1", "L1", None, None, ""],
            "label": [0, 0, 0, 1, 1],
        }
    )
    g = group_ids(df).tolist()
    assert g[0] == g[3] == "patient_id:P1"
    assert g[1] == "lesion_id:L1"
    assert g[2] != g[4] and g[2].startswith("row:")  # no id: a group of its own
    assert group_ids(df.drop(columns=["patient_id", "lesion_id"])) is None


def test_lesion_groups_used_without_patients():
    df = patients_manifest()
    df["lesion_id"] = df["patient_id"]
    df["patient_id"] = pd.NA
    out = assign_folds(df, n_folds=3)
    assert out.groupby("lesion_id")["fold"].nunique().max() == 1
    assert out.attrs["fold_scheme"] == "stratified-group"


def test_no_group_columns_falls_back_to_stratified():
    df = patients_manifest()
    df["patient_id"] = pd.NA
    out = assign_folds(df, n_folds=3, grouped=True)
    assert out.attrs["fold_scheme"] == "stratified"


def test_check_fold_explains_a_missing_class():
    df = patients_manifest()
    tr, va = fold_split(assign_folds(df, 3), 1)
    va = va[va["label"] == 0]
    with pytest.raises(IsicInputError) as err:
        check_fold(tr, va, CLASSES, 1)
    msg = str(err.value)
    assert "fold 1" in msg and "'malignant'" in msg and "validation" in msg
    assert "validation 0" in msg and "fewer folds" in msg and "grouped=False" in msg


def test_too_many_folds_raise():
    df = patients_manifest(n_patients=3)
    with pytest.raises(IsicInputError, match="fewer folds"):
        assign_folds(df, n_folds=5)
    with pytest.raises(IsicInputError, match="at least 2"):
        assign_folds(df, n_folds=1)
    with pytest.raises(IsicInputError, match="fold 7 does not exist"):
        fold_split(assign_folds(patients_manifest(), 3), 7)


def test_stratified_subset_keeps_every_class():
    df = patients_manifest(n_patients=200, malignant_every=20)
    sub = stratified_subset(df, 0.1, seed=0)
    assert 0.05 * len(df) <= len(sub) <= 0.2 * len(df)
    assert (sub["label"].value_counts() >= 2).all() and set(sub["label"]) == {0, 1}
    assert set(sub["image_id"]) <= set(df["image_id"])
    assert stratified_subset(df, 0.1, seed=0).equals(sub)
    # a class too rare for a 10 % draw is still represented
    rare = df[df["label"] == 0].copy()
    extra = df[df["label"] == 1].head(3)
    tiny = pd.concat([rare, extra], ignore_index=True)
    assert (stratified_subset(tiny, 0.1, seed=1)["label"] == 1).sum() >= 2


def test_holdout_split_is_grouped_and_stratified():
    df = patients_manifest(n_patients=60)
    tr, va = holdout_split(df, val_fraction=0.25, seed=0)
    assert len(tr) + len(va) == len(df)
    assert set(tr["patient_id"]).isdisjoint(va["patient_id"])
    assert 0.15 <= len(va) / len(df) <= 0.35
    check_fold(tr, va, CLASSES, "holdout")


def test_holdout_split_places_a_rare_class_on_both_sides():
    df = patients_manifest(n_patients=30, malignant_every=1000)  # only patient 0 malignant
    extra = df.iloc[[0]].assign(image_id="ISIC_9999999", patient_id="IP_9999")
    df = pd.concat([df, extra], ignore_index=True)  # two malignant images, two patients
    for seed in range(4):
        tr, va = holdout_split(df, 0.2, seed=seed)
        check_fold(tr, va, CLASSES, seed)


def test_folds_csv_roundtrip_and_digest(tmp_path):
    df = assign_folds(patients_manifest(), 4, seed=0)
    path = write_folds_csv(df, tmp_path / "folds.csv")
    assert pd.read_csv(path).columns.tolist() == ["image_id", "fold"]
    again = folds_from_csv(patients_manifest(), path)
    assert again["fold"].tolist() == df["fold"].tolist()
    assert split_digest(again) == split_digest(df)
    assert split_digest(df.sample(frac=1, random_state=0)) == split_digest(df)  # order-free
    assert split_digest(assign_folds(patients_manifest(), 4, seed=1)) != split_digest(df)
    assert len(split_digest(df)) == 12


def test_fold_class_counts_count_each_folds_parts() -> None:
    df = assign_folds(patients_manifest(), n_folds=4, seed=1)
    counts = fold_class_counts(df, CLASSES)
    assert list(counts.columns) == ["fold", "part", "benign", "malignant", "total"]
    assert len(counts) == 8  # 4 folds x (train, validation)
    for k in range(4):
        tr, va = fold_split(df, k)
        got = counts[counts["fold"] == k].set_index("part")
        for part, rows in (("train", tr), ("validation", va)):
            assert got.loc[part, "total"] == len(rows)
            for c in CLASSES:
                assert got.loc[part, c] == (rows["label_name"] == c).sum()
    val = counts[counts["part"] == "validation"]
    assert val["total"].sum() == len(df)  # each image validates once
    assert val["malignant"].sum() == (df["label_name"] == "malignant").sum()


def test_fold_class_counts_keep_an_unexpected_label_and_need_folds() -> None:
    df = assign_folds(patients_manifest(), n_folds=2)
    df.loc[df.index[0], "label_name"] = "odd"
    counts = fold_class_counts(df, CLASSES)
    assert counts["odd"].sum() == 2  # in one fold's train and the other's validation
    with pytest.raises(IsicInputError, match="fold"):
        fold_class_counts(patients_manifest(), CLASSES)


@pytest.mark.parametrize("grouped", [True, False])
def test_holdout_of_a_set_too_small_for_its_folds_falls_back_to_halves(grouped: bool) -> None:
    """Three images per class (the tiny multiclass demo after its test set): a 5-fold holdout
    cannot be stratified; the split falls back to halves with every class on both sides."""
    rows = [
        {"image_id": f"ISIC_{i:07d}", "path": f"/x/{i}.jpg", "label": c, "label_name": f"c{c}",
         "source": "synthetic", "lesion_id": f"L{i}"}
        for i, c in enumerate(k for k in range(4) for _ in range(3))
    ]  # fmt: skip
    df = normalize_manifest(pd.DataFrame(rows))
    train, val = holdout_split(df, 0.2, seed=0, grouped=grouped)
    assert len(train) + len(val) == len(df)
    assert set(train["label"]) == set(val["label"]) == {0, 1, 2, 3}
    with pytest.raises(IsicInputError, match="5 folds need at least 5 images of some class"):
        assign_folds(df, n_folds=5, grouped=grouped)
