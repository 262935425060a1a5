"""The written layouts: exact official headers, sizes, patients, duplicates, artifact subsets."""

from __future__ import annotations

import pandas as pd

from isic_tracking.data.manifest import MULTICLASS_CLASSES
from isic_tracking.data.synthetic import ARTIFACTS, read_truth
from tests.data.synthetic.helpers import N


def test_official_headers_exactly(synth):
    def first_line(rel: str) -> str:
        return (synth / rel).read_text().splitlines()[0]

    assert first_line("isic2020/train.csv") == (
        "image_name,patient_id,sex,age_approx,anatom_site_general_challenge,diagnosis,"
        "benign_malignant,target"
    )
    assert first_line("isic2020/ISIC_2020_Training_Duplicates.csv") == "image_name_1,image_name_2"
    assert first_line("isic2019/ISIC_2019_Training_GroundTruth.csv") == (
        "image,MEL,NV,BCC,AK,BKL,DF,VASC,SCC,UNK"
    )
    assert first_line("isic2019/ISIC_2019_Training_Metadata.csv") == (
        "image,age_approx,anatom_site_general,lesion_id,sex"
    )
    first = first_line("isic2016/ISBI2016_ISIC_Part3_Test_GroundTruth.csv")  # no header
    assert first.startswith("ISIC_") and first.split(",")[1] in ("0.0", "1.0")
    for layout in ("isic2020", "isic2019", "isic2016"):
        assert first_line(f"{layout}/synthetic_truth.csv") == "image_id,artifact"


def test_layout_sizes_patients_duplicates_and_2019_quirks(synth):
    train = pd.read_csv(synth / "isic2020/train.csv")
    assert len(train) == N and train["image_name"].is_unique
    assert train.groupby("patient_id").size().median() >= 2  # several images per patient
    assert 0.2 <= train["target"].mean() <= 0.35
    dups = pd.read_csv(synth / "isic2020/ISIC_2020_Training_Duplicates.csv")
    assert len(dups) == 2
    image_dir = synth / "isic2020/jpeg/train"
    for a, b in dups.itertuples(index=False):
        assert (image_dir / f"{a}.jpg").read_bytes() == (image_dir / f"{b}.jpg").read_bytes()
    assert len(list(image_dir.glob("*.jpg"))) == N

    gt = pd.read_csv(synth / "isic2019/ISIC_2019_Training_GroundTruth.csv")
    assert len(gt) == N and (gt["UNK"] == 0.0).all()
    assert (gt[list(MULTICLASS_CLASSES)].sum(axis=1) == 1.0).all()
    assert (gt[list(MULTICLASS_CLASSES)].sum() >= 8).all()
    down = gt["image"][gt["image"].str.endswith("_downsampled")]
    assert len(down) >= 2
    meta = pd.read_csv(synth / "isic2019/ISIC_2019_Training_Metadata.csv")
    assert meta["image"].tolist() == gt["image"].tolist()
    assert meta["lesion_id"].isna().any() and meta["lesion_id"].notna().any()
    for stem in down:
        assert (synth / "isic2019/ISIC_2019_Training_Input" / f"{stem}.jpg").is_file()

    gt16 = pd.read_csv(synth / "isic2016/ISBI2016_ISIC_Part3_Test_GroundTruth.csv", header=None)
    assert len(gt16) == N // 4 and set(gt16[1]) == {0.0, 1.0}


def test_artifacts_on_a_known_subset_every_kind_several_times(synth):
    truth = read_truth(synth)
    for layout, t in truth.groupby("layout"):
        assert 0.3 <= (t["artifact"] != "none").mean() <= 0.4, layout
        assert set(t["artifact"]) <= {"none", *ARTIFACTS}
        if layout != "isic2016":
            assert t["artifact"].value_counts()[list(ARTIFACTS)].min() >= 3
