"""The layers stage on a real MLflow store: a model fine-tuned from the pretrain stage's base
is compared with exactly that base; metrics per layer with the depth as step, the table, the
layer-profile figure and a description that names the base."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from isic_tracking.config import TrainConfig
from isic_tracking.stages.layers.config import LayersConfig
from isic_tracking.stages.layers.runner import MEASURES, run_layers
from isic_tracking.stages.pretrain.config import PretrainConfig
from isic_tracking.stages.pretrain.runner import run_pretrain
from isic_tracking.stages.train.runner import run_training
from isic_tracking.tracking import tag
from isic_tracking.tracking.runs import download_artifacts
from tests.helpers import count_reads

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_layers_compares_a_fine_tuned_model_with_its_recorded_base(
    mlflow_tracking: str, search_manifest: str, tmp_path: Path, monkeypatch
):
    base_uri = run_pretrain(PretrainConfig(n_classes=3, per_class=6, image_size=32, epochs=1,
                                           batch_size=8, device="cpu"))  # fmt: skip
    train = run_training(TrainConfig(manifest=search_manifest, arch="smallcnn", image_size=32,
                                     epochs=1, folds=2, init=base_uri, device="cpu",
                                     work_dir=str(tmp_path / "work")))  # fmt: skip
    assert not list((tmp_path / "work").rglob("*.safetensors"))  # the fetched init is gone
    client = MlflowClient()
    champion = client.get_model_version_by_alias(train.model_name, "champion")
    assert champion.tags[tag.INIT_KIND] == "model" and champion.tags[tag.INIT_SOURCE] == base_uri
    assert f"Initialized from model: `{base_uri}`" in champion.description

    uri = f"models:/{train.model_name}@champion"
    reads = count_reads(monkeypatch)
    result = run_layers(LayersConfig(model_uri=uri, n_boot=20, fv_steps=2, device="cpu"))
    assert [r.layer for r in result.rows] == ["features.0", "features.4", "features.8",
                                              "features.12"]  # fmt: skip
    run = client.search_runs(
        [client.get_experiment_by_name("tests").experiment_id],
        filter_string=f"tags.`{tag.STAGE}` = 'layers'",
    )[0]
    assert run.data.tags[tag.BASE].startswith(f"model `{base_uri}`")
    assert base_uri in run.data.tags["mlflow.note.content"]
    assert run.data.params["batch_size"] == "0"  # fitted: small maps, the usual batch
    assert run.data.params["batch_size_resolved"] == "64"
    history = client.get_metric_history(run.info.run_id, "cka")
    assert [m.step for m in history] == [0, 1, 2, 3]
    for measure in MEASURES:
        assert f"{measure}/features.12" in run.data.metrics
    table = pd.read_csv(download_artifacts(run.info.run_id, "tables/layers.csv", tmp_path))
    assert list(table["layer"]) == [r.layer for r in result.rows]
    assert table["cka"].between(0, 1.0 + 1e-9).all()
    assert download_artifacts(run.info.run_id, "figures/layer_profile.png", tmp_path).is_file()
    # one pass of both models, then two per layer: each analysed image decoded once
    assert len(reads) == result.n_images and set(reads.values()) == {1}
