"""``run_prepare``: the run's tags, params, dataset input, per-source counts and skip report."""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from isic_tracking.stages.prepare.runner import run_prepare
from isic_tracking.tracking import tag
from isic_tracking.tracking.runs import download_artifacts, manifest_digest


def _params(root: Path, out: Path, **kw) -> dict:
    base = dict(
        dataset="isic2016-test",
        root=str(root),
        out=str(out),
        task="binary",
        extra_malignant=None,
        extra_dataset="isic2019",
        image_size=32,
        max_bad_fraction=0.5,
        workers=1,
    )
    base.update(kw)
    return base


@pytest.fixture
def broken_layout(synthetic_root: Path, tmp_path: Path) -> tuple[Path, str]:
    """A copy of the synthetic ISIC 2016 layout with one image truncated to 0 bytes."""
    root = tmp_path / "isic2016"
    shutil.copytree(synthetic_root / "isic2016", root)
    image = sorted((root / "ISBI2016_ISIC_Part3_Test_Data").glob("*.jpg"))[0]
    image.write_bytes(b"")
    return root, image.stem


def test_run_records_stage_params_input_and_source_counts(
    mlflow_tracking: str, synthetic_root: Path, tmp_path: Path
) -> None:
    """Stage tag, run name, params as given, the manifest as dataset input, per-source counts."""
    out = tmp_path / "prepared"
    prepared = run_prepare(_params(synthetic_root / "isic2016", out))
    (run,) = mlflow.search_runs(output_format="list")
    assert run.data.tags[tag.STAGE] == "prepare"
    assert run.info.run_name == "prepare-isic2016-test"
    assert run.data.params["dataset"] == "isic2016-test"
    assert run.data.params["image_size"] == "32" and run.data.params["task"] == "binary"
    df = pd.read_csv(prepared.manifest_path)
    assert prepared.manifest_path == out / "manifest.csv"
    (ds_input,) = run.inputs.dataset_inputs
    assert ds_input.dataset.name == "isic2016-test"
    assert ds_input.dataset.digest == manifest_digest(prepared.cache.manifest)
    assert {t.key: t.value for t in ds_input.tags}["mlflow.data.context"] == "prepared"
    assert run.data.tags[tag.dataset_digest("prepared")] == ds_input.dataset.digest
    sources = df["source"].value_counts()
    assert {k: run.data.metrics[f"n_source/{k}"] for k in sources.index} == sources.to_dict()
    assert run.data.metrics["n_skipped_images"] == 0


def test_skipped_images_are_counted_and_listed(
    mlflow_tracking: str, broken_layout: tuple[Path, str], tmp_path: Path
) -> None:
    """A 0-byte image: left out of the manifest, counted, and listed with its reason."""
    root, bad_id = broken_layout
    prepared = run_prepare(_params(root, tmp_path / "prepared"))
    (run,) = mlflow.search_runs(output_format="list")
    df = pd.read_csv(prepared.manifest_path)
    assert bad_id not in set(df["image_id"])
    assert run.data.metrics["n_skipped_images"] == 1
    assert run.data.metrics["n_cached"] == len(df)
    skipped = pd.read_csv(download_artifacts(run.info.run_id, "skipped.csv", tmp_path / "dl"))
    assert list(skipped["image_id"]) == [bad_id]
    assert "empty file" in skipped["reason"].iloc[0]
    arts = {a.path for a in MlflowClient().list_artifacts(run.info.run_id)}
    assert arts == {"skipped.csv", "leakage"}  # leakage/pairs.csv, leakage/dropped.csv


def test_skipped_csv_on_disk_is_the_logged_one_with_every_reason(
    mlflow_tracking: str, synthetic_root: Path, tmp_path: Path
) -> None:
    """``out/skipped.csv`` lists what the reader left out (missing, unlisted, duplicate files)
    and what the cache could not read, exactly as the run's ``skipped.csv``."""
    root = tmp_path / "isic2020"
    shutil.copytree(synthetic_root / "isic2020", root)
    images = sorted((root / "jpeg" / "train").glob("*.jpg"))
    dupes = set(pd.read_csv(root / "ISIC_2020_Training_Duplicates.csv")["image_name_2"])
    usable = [p for p in images if p.stem not in dupes]
    usable[0].unlink()  # listed, no file
    usable[1].write_bytes(b"")  # unreadable
    (root / "jpeg" / "train" / "ISIC_0000000.jpg").write_bytes(images[2].read_bytes())  # unlisted
    out = tmp_path / "prepared"
    run_prepare(_params(root, out, dataset="isic2020"))
    (run,) = mlflow.search_runs(output_format="list")
    logged = pd.read_csv(download_artifacts(run.info.run_id, "skipped.csv", tmp_path / "dl"))
    on_disk = pd.read_csv(out / "skipped.csv")
    pd.testing.assert_frame_equal(on_disk, logged)
    reasons = dict(zip(on_disk["image_id"], on_disk["reason"]))
    assert reasons[usable[0].stem] == "missing_file"
    assert reasons["ISIC_0000000"] == "unlisted_file"
    assert {reasons[d] for d in dupes} == {"duplicate_dropped"}
    assert "empty file" in reasons[usable[1].stem]


def test_run_records_how_the_test_set_was_made(
    mlflow_tracking: str, synthetic_root: Path, tmp_path: Path
) -> None:
    """A held-out test split: its size and classes as metrics, its making as tags."""
    params = _params(synthetic_root / "isic2019", tmp_path / "prepared", dataset="isic2019",
                     task="multiclass", test_fraction=0.2)  # fmt: skip
    prepared = run_prepare(params)
    (run,) = mlflow.search_runs(output_format="list")
    test = prepared.cache.manifest.query("split == 'test'")
    assert run.data.metrics["n_test"] == len(test) == prepared.test_set.n_test > 0
    counts = test["label_name"].value_counts()
    assert {k: run.data.metrics[f"n_test_class/{k}"] for k in counts.index} == counts.to_dict()
    assert run.data.tags[tag.TEST_KIND] == "holdout"
    assert run.data.tags[tag.TEST_SET] == prepared.test_set.about
    assert run.data.params["test_fraction"] == "0.2"


@pytest.fixture(scope="module")
def planted_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic set with 6 planted near-duplicate pairs (4 cross train/test)."""
    from isic_tracking.data.synthetic import make_synthetic

    root = tmp_path_factory.mktemp("planted") / "raw"
    make_synthetic(root, n_images=64, seed=2, image_size=64, near_duplicates=6)
    return root


@pytest.mark.parametrize("dedupe", ["test", "none"])
def test_leakage_pairs_are_logged_checked_against_truth_and_test_copies_dropped(
    mlflow_tracking: str, planted_root: Path, tmp_path: Path, dedupe: str
) -> None:
    params = _params(
        planted_root, tmp_path / "prepared", dataset="synthetic", dedupe=dedupe, image_size=48
    )
    prepared = run_prepare(params)
    (run,) = mlflow.search_runs(output_format="list")
    m = run.data.metrics
    assert m["leakage_planted"] == 4 and m["leakage_planted_found"] == 4
    assert m["leakage_false_alarms"] == 0 and m["leakage_pairs"] == 4
    assert m["leakage_cross_split"] == 4 and m["leakage_cross_source"] == 4
    dl = tmp_path / "dl"
    pairs = pd.read_csv(download_artifacts(run.info.run_id, "leakage/pairs.csv", dl))
    dropped = pd.read_csv(download_artifacts(run.info.run_id, "leakage/dropped.csv", dl))
    skipped = pd.read_csv(download_artifacts(run.info.run_id, "skipped.csv", dl))
    manifest = pd.read_csv(prepared.manifest_path)
    test_side = {
        a if sa == "test" else b for a, b, sa in zip(pairs.id_a, pairs.id_b, pairs.split_a)
    }
    if dedupe == "test":
        assert m["leakage_dropped"] == 4 and set(dropped["image_id"]) == test_side
        assert not test_side & set(manifest["image_id"])
        assert set(skipped.loc[skipped.reason == "leakage_duplicate", "image_id"]) == test_side
    else:
        assert m["leakage_dropped"] == 0 and dropped.empty
        assert test_side <= set(manifest["image_id"])
    assert m["n_images"] == len(prepared.source.manifest)


def test_unknown_dedupe_is_refused(mlflow_tracking: str, synthetic_root: Path, tmp_path: Path):
    from isic_tracking.errors import IsicInputError

    with pytest.raises(IsicInputError, match="dedupe='both'"):
        run_prepare(_params(synthetic_root / "isic2016", tmp_path / "p", dedupe="both"))


def test_artifact_labels_are_joined_and_reported(
    mlflow_tracking: str, synthetic_root: Path, tmp_path: Path
) -> None:
    """A Bissoto 2022-style file naming two of the images and one unknown id."""
    root = synthetic_root / "isic2016"
    ids = sorted(p.stem for p in (root / "ISBI2016_ISIC_Part3_Test_Data").glob("*.jpg"))
    lines = [
        "image,dark_corner,hair,gel_border,gel_bubble,ruler,ink,patches,label,label_string,vasc",
        f"{ids[0]},0.9,0.8,0,0,0,0,0,0,NV,0",
        f"{ids[1]},0.1,0.1,0,0,0,0,0,1,MEL,0",
        "ISIC_9999999,0,0,0,0,1,0,0,0,NV,0",
        f"{ids[2]},oops,0,0,0,0,0,0,0,NV,0",
    ]
    labels = tmp_path / "isic_inferred_wocarcinoma.csv"
    labels.write_text("\n".join(lines) + "\n")
    params = _params(root, tmp_path / "prepared", artifacts=str(labels), artifact_threshold=0.5)
    prepared = run_prepare(params)
    (run,) = mlflow.search_runs(output_format="list")
    m = run.data.metrics
    assert m["artifacts_labelled"] == 2 and m["artifacts_file_only"] == 1
    assert m["artifacts_data_only"] == len(ids) - 2 and m["artifacts_skipped_rows"] == 1
    assert m["artifact_prevalence/hair"] == 0.5 and m["n_artifact/dark_corners"] == 1
    manifest = pd.read_csv(prepared.manifest_path).set_index("image_id")
    assert manifest.loc[ids[0], "artifact"] == "dark_corners|hair"
    assert manifest.loc[ids[1], "artifact"] == "none"
    assert pd.isna(manifest.loc[ids[2], "artifact"])
    dl = tmp_path / "dl"
    prevalence = pd.read_csv(download_artifacts(run.info.run_id, "artifacts/prevalence.csv", dl))
    assert "vasc" in set(prevalence["artifact"])
    rows = pd.read_csv(download_artifacts(run.info.run_id, "artifacts/skipped_rows.csv", dl))
    assert list(rows["line"]) == [5] and rows["value"].iloc[0] == "oops"
