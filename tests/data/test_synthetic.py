"""Synthetic ISIC data: determinism, exact official headers, readers round-trip, a learnable
signal and artifacts where the truth file says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from isic_tracking.data.manifest import MULTICLASS_CLASSES, validate_manifest
from isic_tracking.data.sources import detect_dataset, read_source
from isic_tracking.data.synthetic import ARTIFACTS, make_synthetic, read_truth
from isic_tracking.errors import IsicInputError

N = 240


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    make_synthetic(out, n_images=N, seed=0, image_size=64)
    return out


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255


def csv_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.csv"))}


def test_same_seed_same_bytes_and_pixels_other_seed_differs(tmp_path):
    a = make_synthetic(tmp_path / "a", n_images=24, seed=3, image_size=32)
    b = make_synthetic(tmp_path / "b", n_images=24, seed=3, image_size=32)
    c = make_synthetic(tmp_path / "c", n_images=24, seed=4, image_size=32)
    assert csv_bytes(tmp_path / "a") == csv_bytes(tmp_path / "b")
    assert csv_bytes(tmp_path / "a") != csv_bytes(tmp_path / "c")
    for layout in a:
        files_a = sorted(a[layout].rglob("*.jpg"))
        assert [p.relative_to(a[layout]) for p in files_a] == [
            p.relative_to(b[layout]) for p in sorted(b[layout].rglob("*.jpg"))
        ]
        for p in files_a:
            np.testing.assert_array_equal(pixels(p), pixels(b[layout] / p.relative_to(a[layout])))
    assert sorted(c) == sorted(a)


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


def test_readers_round_trip_with_artifact_truth(synth):
    assert detect_dataset(synth) == "synthetic"
    binary = read_source("synthetic", synth)
    m = validate_manifest(binary.manifest)
    assert binary.n_duplicates_dropped == 2 and binary.n_missing == 0 and binary.n_unlisted == 0
    assert (m["split"] == "train").sum() == N - 2 and (m["split"] == "test").sum() == N // 4
    assert set(m["source"]) == {"synthetic-isic2020", "synthetic-isic2016"}
    truth = read_truth(synth).set_index("image_id")["artifact"]
    assert (m["artifact"] == m["image_id"].map(truth)).all()
    multi = read_source("synthetic", synth, task="multiclass").manifest
    assert len(multi) == N and set(multi["label_name"]) == set(MULTICLASS_CLASSES)
    assert not multi["image_id"].str.endswith("_downsampled").any()
    assert multi["path"].str.endswith("_downsampled.jpg").sum() >= 2
    assert (multi["artifact"] == multi["image_id"].map(truth)).all()
    assert multi["lesion_id"].notna().any()


def test_artifacts_on_a_known_subset_every_kind_several_times(synth):
    truth = read_truth(synth)
    for layout, t in truth.groupby("layout"):
        assert 0.3 <= (t["artifact"] != "none").mean() <= 0.4, layout
        assert set(t["artifact"]) <= {"none", *ARTIFACTS}
        if layout != "isic2016":
            assert t["artifact"].value_counts()[list(ARTIFACTS)].min() >= 3


def _detectors(img: np.ndarray) -> dict[str, float]:
    """Simple per-image statistics each artifact should raise."""
    h, w, _ = img.shape
    lum = img.mean(axis=2)
    k = max(2, h // 10)
    corners = np.concatenate([lum[:k, :k], lum[:k, -k:], lum[-k:, :k], lum[-k:, -k:]], axis=None)
    yy, xx = np.mgrid[0:h, 0:w]
    outer = np.hypot((yy - h / 2) / (h / 2), (xx - w / 2) / (w / 2)) > 0.8
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    sat = img.max(axis=2) - img.min(axis=2)
    bands = [lum[:k], lum[-k:], lum[:, :k].T, lum[:, -k:].T]
    return {
        "dark_corners": 1 - corners.mean(),
        "hair": (lum[outer] < 0.3).mean(),
        "ruler": max(np.abs(np.diff(band, axis=1)).mean() for band in bands),
        "sticker": ((sat > 0.45) & ((g - b > 0.25) | (b - r > 0.2))).mean(),  # not red/skin
        "ink": ((b > g + 0.12) & (r > g + 0.05)).mean(),
        "fluid": (lum > 0.9).mean(),
    }


def test_artifacts_are_visible_where_recorded(synth):
    truth = read_truth(synth)
    truth = truth[truth["layout"] == "isic2020"]
    m = read_source("isic2020", synth / "isic2020").manifest
    paths = dict(zip(m["image_id"], m["path"]))
    scores = pd.DataFrame(
        [
            {"artifact": a, **_detectors(pixels(paths[i]))}
            for i, a in zip(truth["image_id"], truth["artifact"])
            if i in paths
        ]
    )
    means = scores.groupby("artifact").mean()
    for artifact in ARTIFACTS:
        with_it, without = means.loc[artifact, artifact], means.loc["none", artifact]
        assert with_it > 2 * without + 1e-3, (artifact, with_it, without)


def _colour_features(paths) -> np.ndarray:
    rows = []
    for p in paths:
        img = pixels(p)
        h, w, _ = img.shape
        centre = img[h // 5 : h - h // 5, w // 5 : w - w // 5].reshape(-1, 3)
        q = np.percentile(centre, [5, 25, 50, 75, 95], axis=0).ravel()
        rows.append(np.concatenate([centre.mean(0), centre.std(0), q]))
    return np.array(rows)


def test_signal_is_learnable_from_colour_statistics(synth):
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    binary = read_source("synthetic", synth).manifest
    binary = binary[binary["split"] == "train"]
    logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    auc = cross_val_score(
        logistic, _colour_features(binary["path"]), binary["label"], scoring="roc_auc", cv=cv
    )
    assert auc.mean() > 0.9, auc
    multi = read_source("synthetic", synth, task="multiclass").manifest
    lda = make_pipeline(StandardScaler(), LinearDiscriminantAnalysis())  # closed form: fast
    acc = cross_val_score(
        lda, _colour_features(multi["path"]), multi["label"], scoring="balanced_accuracy", cv=cv
    )
    assert acc.mean() > 0.5, acc  # chance: 0.125


def test_replaces_its_own_output_but_never_a_foreign_folder(tmp_path):
    make_synthetic(tmp_path, n_images=32, seed=0, image_size=32)
    stale = tmp_path / "isic2020" / "jpeg" / "train" / "ISIC_0000000.jpg"
    stale.write_bytes(b"old")
    make_synthetic(tmp_path, n_images=16, seed=1, image_size=32)
    assert not stale.exists()
    assert len(pd.read_csv(tmp_path / "isic2020" / "train.csv")) == 16
    with pytest.raises(IsicInputError, match="pass overwrite=True"):
        make_synthetic(tmp_path, n_images=16, image_size=32, overwrite=False)
    foreign = tmp_path / "other"
    (foreign / "isic2019").mkdir(parents=True)
    (foreign / "isic2019" / "mine.txt").write_text("user data")
    with pytest.raises(IsicInputError, match="not written by make_synthetic"):
        make_synthetic(foreign, n_images=16, image_size=32)
    assert (foreign / "isic2019" / "mine.txt").read_text() == "user data"
    assert not (foreign / "isic2020").exists()  # checked before anything is written


@pytest.mark.parametrize(
    "kwargs, match",
    [({"n_images": 8}, "at least 16"), ({"image_size": 16}, "at least 32"), ({"seed": -1}, "seed")],
)
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(IsicInputError, match=match):
        make_synthetic(tmp_path, **kwargs)
