"""The train stage against a real sqlite MLflow store: runs, artifacts, registry, failures."""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient

from isic_tracking.config import TrainConfig
from isic_tracking.data.dataset import make_loader
from isic_tracking.data.manifest import read_manifest, write_manifest
from isic_tracking.data.transforms import build_transforms
from isic_tracking.errors import IsicInputError
from isic_tracking.stages.train.runner import run_training
from isic_tracking.stages.train.runner_results import FOLD_COUNTS_TABLE
from isic_tracking.tracking import load_model, training_split

TINY = "timm:test_resnet"


def tiny_config(manifest: Path, tmp_path: Path, **kw) -> TrainConfig:
    base = dict(
        manifest=str(manifest),
        arch=TINY,
        folds=2,
        epochs=2,
        batch_size=16,
        image_size=48,
        work_dir=str(tmp_path / "work"),
        lr=1e-3,
    )
    base.update(kw)
    return TrainConfig(**base)


def test_train_logs_folds_registers_and_model_loads_back(
    mlflow_tracking: str, binary_manifest: Path, tmp_path: Path
) -> None:
    out = run_training(tiny_config(binary_manifest, tmp_path))
    client = MlflowClient()
    parent = client.get_run(out.run_id)
    assert parent.data.tags["isic.stage"] == "train" and parent.data.tags["isic.complete"] == "true"
    # a few headline metrics, named the same for every arch and task; the rest in tables
    names = ("roc_auc", "balanced_accuracy", "accuracy", "f1")
    headline = {f"{p}_{m}_{s}" for p in ("cv", "test") for m in names for s in ("mean", "std")}
    own = {k for k in parent.data.metrics if not k.startswith("system/")}  # MLflow's monitor
    assert own == headline | {f"oof_{m}" for m in names}
    counts = pd.read_csv(
        mlflow.artifacts.download_artifacts(run_id=out.run_id, artifact_path=FOLD_COUNTS_TABLE)
    )
    assert list(counts["part"]) == ["train", "validation"] * 2  # the thesis's Table 5
    folds = pd.read_csv(
        mlflow.artifacts.download_artifacts(run_id=out.run_id, artifact_path="splits/folds.csv")
    )
    assert counts.loc[counts["part"] == "validation", "total"].sum() == len(folds)
    summary = pd.read_csv(
        mlflow.artifacts.download_artifacts(run_id=out.run_id, artifact_path="tables/summary.csv")
    ).set_index("metric")
    assert summary.loc["best_val_roc_auc", "mean"] == pytest.approx(
        parent.data.metrics["cv_roc_auc_mean"]
    )
    assert {"best_train_loss", "best_val_loss", "oof_roc_auc"} <= set(summary.index)
    note = parent.data.tags["mlflow.note.content"]
    assert note.startswith(f"**{TINY}** · binary · 2-fold cross-validation on ")
    assert "| roc_auc | " in note and f"`models:/{out.model_name}@champion`" in note
    # resume states are gone once the run has finished (the option keeps them)
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").rglob("*"))
    parent_files = {f.path for f in client.list_artifacts(out.run_id, "figures")}
    assert "figures/oof_confusion_matrix.png" in parent_files
    assert len(training_split(out.run_id)) > 0

    folds = mlflow.search_runs(filter_string=f"tags.mlflow.parentRunId = '{out.run_id}'")
    assert len(folds) == 2
    fold_id = folds.run_id.iloc[0]
    history = client.get_metric_history(fold_id, "val_roc_auc")
    assert [m.step for m in history] == [0, 1]
    files = {f.path for f in client.list_artifacts(fold_id, "figures")}
    assert {"figures/confusion_matrix.png", "figures/roc.png", "figures/loss.png"} <= files
    # the checkpoint is the fold's logged (pyfunc) model: safetensors + config.json as its data
    (fold_model,) = mlflow.search_logged_models(
        filter_string=f"source_run_id = '{fold_id}'", output_format="list"
    )
    data = Path(
        mlflow.artifacts.download_artifacts(f"{fold_model.artifact_location}/data/checkpoint")
    )
    assert {f.name for f in data.iterdir()} == {"config.json", "model.safetensors"}

    versions = client.search_model_versions(f"name='{out.model_name}'")
    assert len(versions) == 2
    champion = client.get_model_version_by_alias(out.model_name, "champion")
    assert champion.tags["isic.monitor"] == "best_val_roc_auc"

    # the champion rebuilt from the registry predicts exactly what its fold logged
    loaded = load_model(f"models:/{out.model_name}@champion")
    assert loaded.tags["model.train_run_id"] == out.run_id
    preds = pd.read_csv(
        mlflow.artifacts.download_artifacts(
            run_id=champion.run_id, artifact_path="tables/predictions.csv"
        )
    )
    df = read_manifest(binary_manifest).set_index("image_id").loc[preds.image_id].reset_index()
    loader = make_loader(df, build_transforms(48, train=False), 64, shuffle=False)
    with torch.no_grad():
        scores = torch.cat([torch.sigmoid(loaded.model(x[0]).squeeze(1)) for x in loader])
    assert torch.allclose(
        scores, torch.tensor(preds.score.to_numpy(), dtype=torch.float32), atol=1e-5
    )


def test_keep_resume_state_keeps_one_state_per_fold(
    mlflow_tracking: str, binary_manifest: Path, tmp_path: Path
) -> None:
    out = run_training(tiny_config(binary_manifest, tmp_path, epochs=1, keep_resume_state=True))
    states = sorted(p.name for p in (tmp_path / "work" / out.run_id).iterdir())
    assert states == ["fold0.pt", "fold1.pt"]


def test_nan_loss_fails_the_fold_not_the_job(
    mlflow_tracking: str, binary_manifest: Path, tmp_path: Path
) -> None:
    with pytest.raises(IsicInputError, match="every fold failed"):
        run_training(tiny_config(binary_manifest, tmp_path, lr=1e30, batch_size=8, epochs=1))
    runs = mlflow.search_runs(filter_string="tags.`isic.stage` = 'train-fold'")
    assert set(runs.status) == {"FAILED"}
    assert runs["tags.isic.error"].str.contains("NaN|Inf|non-finite", case=False).all()


def test_empty_class_in_a_fold_is_a_clear_error(
    mlflow_tracking: str, binary_manifest: Path, tmp_path: Path
) -> None:
    df = read_manifest(binary_manifest)
    keep = df[(df.label == 0) | (df.index.isin(df[df.label == 1].index[:2]))]
    path = write_manifest(keep, tmp_path / "few_malignant.csv")
    with pytest.raises(IsicInputError, match="malignant.*no image"):
        run_training(tiny_config(path, tmp_path, folds=3, grouped=False))


def test_unknown_arch_fails_before_any_run(
    mlflow_tracking: str, binary_manifest: Path, tmp_path: Path
) -> None:
    with pytest.raises(IsicInputError, match="unknown arch"):
        run_training(tiny_config(binary_manifest, tmp_path, arch="alexnett"))


def test_image_size_too_small_is_a_clear_error(
    mlflow_tracking: str, binary_manifest: Path, tmp_path: Path
) -> None:
    with pytest.raises(IsicInputError, match="image_size=32 is too small for alexnet"):
        run_training(tiny_config(binary_manifest, tmp_path, arch="alexnet", image_size=32))


class _Lines(logging.Handler):
    """Collects the messages of one logger (what the stage prints)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_folds_run_apart_join_one_parent_and_finish_once(
    mlflow_tracking: str, binary_manifest: Path, tmp_path: Path
) -> None:
    said = _Lines()
    logger = logging.getLogger("isic_tracking.stages.train.runner")
    logger.addHandler(said)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        first = run_training(tiny_config(binary_manifest, tmp_path, fold=0, epochs=1))
        # fold is not a result field: same config hash, so fold 1 joins the same parent
        second = run_training(tiny_config(binary_manifest, tmp_path, fold=1, epochs=1))
    finally:
        logger.removeHandler(said)
        logger.setLevel(level)
    assert first.model_name is None and first.summary == {}
    assert second.run_id == first.run_id and second.model_name == "isic-binary-timm-test_resnet"
    # fold 0 finished in the first call: its metrics and predictions were read back
    assert len(second.fold_metrics) == 2 and "cv_roc_auc_mean" in second.summary
    parent = MlflowClient().get_run(first.run_id)
    assert parent.data.tags["isic.complete"] == "true" and "oof_roc_auc" in parent.data.metrics
    assert said.lines[0].startswith("fold 0: best val_roc_auc=")
    assert said.lines[1] == "1/2 folds finished; summary and registry when all are done"
    assert said.lines[2].startswith("fold 1: best val_roc_auc=")
    assert said.lines[3].startswith("registered isic-binary-timm-test_resnet versions [1, 2]")


def test_params_from_reads_the_best_params_of_new_and_older_search_runs(
    mlflow_tracking: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Now tags ``isic.best.*`` only; runs of older versions: params ``best.*`` (the first
    best) and tags ``best_*`` (the current best, which wins), read with a one-time warning
    until 2027-06-30."""
    from isic_tracking.stages.train.runner import apply_search_params
    from isic_tracking.tracking import tag

    with mlflow.start_run() as new:
        mlflow.set_tags(
            {tag.STAGE: "search", tag.best_param("lr"): "0.01", "isic.best.epochs": "7"}
        )
    with caplog.at_level("WARNING", logger="isic_tracking"):
        cfg = apply_search_params(TrainConfig(params_from=new.info.run_id))
    assert (cfg.lr, cfg.epochs, cfg.batch_size) == (0.01, 7, TrainConfig().batch_size)
    assert not caplog.records  # a current search run: nothing to warn about
    with mlflow.start_run() as old:
        mlflow.set_tags({tag.STAGE: "search", "best_lr": "0.002"})
        mlflow.log_params({"best.lr": "0.001", "best.batch_size": "8"})
    with caplog.at_level("WARNING", logger="isic_tracking"):
        cfg = apply_search_params(TrainConfig(params_from=old.info.run_id))
    assert (cfg.lr, cfg.batch_size) == (0.002, 8)
    (said,) = [r.getMessage() for r in caplog.records]
    assert "best.* / tags best_*" in said and said.endswith("read until 2027-06-30)")
