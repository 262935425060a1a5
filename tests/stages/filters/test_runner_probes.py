"""The filters stage's probes on a real MLflow store: a tiny model trained on the synthetic
set, its ablation table, verdicts, metrics, tags and figure, and the dissection of its units
against the set's concept masks; without masks one line and no dissection."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from isic_tracking.config import TrainConfig
from isic_tracking.data.manifest import read_manifest, write_manifest
from isic_tracking.data.synthetic.masks import MASK_CONCEPTS
from isic_tracking.interpret.ablation import ABLATION_COLUMNS
from isic_tracking.stages.filters.config import FiltersConfig
from isic_tracking.stages.filters.probes import NO_MASKS
from isic_tracking.stages.filters.runner import run_filters
from isic_tracking.stages.train.runner import run_training
from isic_tracking.tracking.runs import download_artifacts

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def model_uri(mlflow_tracking: str, binary_manifest: Path, tmp_path: Path) -> str:
    train = run_training(TrainConfig(manifest=str(binary_manifest), arch="smallcnn",
                                     image_size=32, epochs=1, folds=2, batch_size=16,
                                     device="cpu", work_dir=str(tmp_path / "work")))  # fmt: skip
    return f"models:/{train.model_name}@champion"


def test_filters_logs_ablation_and_dissection(model_uri: str, tmp_path: Path, caplog):
    cfg = FiltersConfig(model_uri=model_uri, split="all", exemplars=0, top_n=3, ablate_k=2,
                        ablate_draws=6, dissect_quantile=0.99, device="cpu")  # fmt: skip
    with caplog.at_level(logging.INFO, logger="isic_tracking"):
        out = run_filters(cfg)
    run = MlflowClient().get_run(out.run_id)
    layer = out.layers[-1]

    table = pd.read_csv(download_artifacts(out.run_id, "tables/ablation.csv", tmp_path))
    assert list(table.columns) == ABLATION_COLUMNS
    assert {"benign", "malignant"} <= set(table.loc[table["kind"] == "class", "name"])
    assert (table["kind"] == "artifact").any()  # malignant images carry artifacts
    assert (table["n_draws"] == 6).all() and (table["k"] == 2).all()
    # the logged top-k sets are the class's ranks 1 and 2
    top = out.report.class_top
    mal = top[(top["class"] == "malignant") & (top["rank"] <= 2)]["filter"]
    row = table[(table["name"] == "malignant") & (table["kind"] == "class")].iloc[0]
    assert row["filters"] == " ".join(map(str, sorted(mal)))
    for name in ("benign", "malignant"):
        assert run.data.tags[f"isic.ablation.{name}"].startswith(("pass", "fail"))
        for v in ("zero", "mean"):
            assert f"ablation_drop_{v}_{layer}/{name}" in run.data.metrics
    assert set(out.ablation["name"]) >= {"benign", "malignant"}
    assert download_artifacts(out.run_id, "figures/ablation.png", tmp_path).is_file()
    assert any(m.startswith("ablation malignant") or "ablation class 'malignant'" in m
               for m in caplog.messages)  # fmt: skip

    units = pd.read_csv(download_artifacts(out.run_id, "tables/dissection.csv", tmp_path))
    assert len(units) == len(out.report.liveness[layer])  # every unit of the layer
    assert {f"iou_{c}" for c in MASK_CONCEPTS} <= set(units.columns)
    assert units["iou"].between(0, 1).all()
    assert download_artifacts(out.run_id, "figures/dissection.png", tmp_path).is_file()
    assert f"dissection_labelled/{layer}" in run.data.metrics
    assert run.data.metrics["dissection_best_iou/lesion"] > 0
    assert all(k.count("/") <= 1 for k in run.data.metrics)


def test_without_masks_dissection_is_one_line_and_the_stage_goes_on(
    model_uri: str, binary_manifest: Path, tmp_path: Path, caplog
):
    rows = read_manifest(binary_manifest).drop(columns="mask")
    manifest = write_manifest(rows, tmp_path / "no_masks.csv")
    cfg = FiltersConfig(model_uri=model_uri, manifest=str(manifest), split="all", exemplars=0,
                        ablate_k=0, device="cpu")  # fmt: skip
    with caplog.at_level(logging.INFO, logger="isic_tracking"):
        out = run_filters(cfg)
    assert NO_MASKS in caplog.messages and out.dissection.empty and out.ablation.empty
    files = {f.path for f in MlflowClient().list_artifacts(out.run_id, "tables")}
    assert "tables/class_filters.csv" in files
    assert not {"tables/dissection.csv", "tables/ablation.csv"} & files
