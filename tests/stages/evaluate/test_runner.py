"""The evaluate stage on a real MLflow store: a model trained and registered here, scored on
its manifest's test rows; metrics with intervals, tables, figures, and the test section in
the registered version's description."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn import metrics as skm

from isic_tracking.config import TrainConfig
from isic_tracking.data.manifest import read_manifest
from isic_tracking.stages.evaluate.config import EvaluateConfig
from isic_tracking.stages.evaluate.metrics import BINARY_METRICS
from isic_tracking.stages.evaluate.runner import run_evaluate
from isic_tracking.stages.train.runner import run_training
from isic_tracking.tracking import tag
from isic_tracking.tracking.descriptions import TEST_HEADING
from isic_tracking.tracking.runs import download_artifacts

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _evaluate_runs(client: MlflowClient) -> list:
    exp = client.get_experiment_by_name("tests").experiment_id
    return client.search_runs([exp], filter_string=f"tags.`{tag.STAGE}` = 'evaluate'")


def test_evaluate_scores_the_champion_on_the_test_rows(
    mlflow_tracking: str, search_manifest: str, tmp_path: Path
) -> None:
    train = run_training(TrainConfig(manifest=search_manifest, arch="smallcnn", image_size=32,
                                     epochs=1, folds=2, device="cpu",
                                     work_dir=str(tmp_path / "work")))  # fmt: skip
    uri = f"models:/{train.model_name}@champion"
    cfg = EvaluateConfig(model_uri=uri, n_resamples=100, device="cpu", n_bins=5)
    result = run_evaluate(cfg)
    test = read_manifest(search_manifest).query("split == 'test'")
    assert result.n_images == len(test) > 0
    client = MlflowClient()
    (run,) = _evaluate_runs(client)
    rid = run.info.run_id
    for m in BINARY_METRICS:
        lo, est, hi = (run.data.metrics[f"test_{m}{s}"] for s in ("_low", "", "_high"))
        assert lo <= est <= hi, m
    preds = pd.read_csv(download_artifacts(rid, "tables/test_predictions.csv", tmp_path),
                        dtype={"image_id": str})  # fmt: skip
    assert list(preds["image_id"]) == list(test["image_id"].astype(str))
    assert (preds["y_true"] == test["label"].to_numpy()).all()
    # the logged numbers are those of the logged predictions
    auc = skm.roc_auc_score(preds["y_true"], preds["score"])
    assert run.data.metrics["test_roc_auc"] == pytest.approx(auc)
    cm = pd.read_csv(download_artifacts(rid, "tables/test_confusion.csv", tmp_path))
    assert cm.iloc[:, 1:].to_numpy().sum() == len(test)
    assert np.array_equal(cm.iloc[:, 1:].to_numpy(), result.confusion)
    for fig in ("test_confusion", "test_pr_curve", "test_calibration"):
        assert download_artifacts(rid, f"figures/{fig}.png", tmp_path).is_file()
    version = client.get_model_version_by_alias(train.model_name, "champion")
    assert version.tags[tag.TEST_RUN] == rid
    assert version.description.count(TEST_HEADING) == 1
    assert "**Champion**" in version.description  # the training part is kept
    assert f"`roc_auc` {result.line('roc_auc')}" in version.description
    run_evaluate(cfg)  # a second evaluation replaces the section
    again = client.get_model_version_by_alias(train.model_name, "champion")
    assert again.description.count(TEST_HEADING) == 1 and again.tags[tag.TEST_RUN] != rid


def test_a_manifest_without_test_rows_gives_a_run_that_says_so(
    mlflow_tracking: str, search_manifest: str, tmp_path: Path
) -> None:
    train = run_training(TrainConfig(manifest=search_manifest, arch="smallcnn", image_size=32,
                                     epochs=1, folds=2, device="cpu", max_batches=1,
                                     work_dir=str(tmp_path / "work")))  # fmt: skip
    no_test = tmp_path / "manifest.csv"
    df = read_manifest(search_manifest)
    df[df["split"] == "train"].to_csv(no_test, index=False)
    uri = f"models:/{train.model_name}@champion"
    assert run_evaluate(EvaluateConfig(model_uri=uri, manifest=str(no_test), device="cpu")) is None
    (run,) = _evaluate_runs(MlflowClient())
    assert "no test images" in run.data.tags[tag.TEST_SKIPPED]
    assert run.info.status == "FINISHED"
