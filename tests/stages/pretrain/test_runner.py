"""The pretrain stage end to end on a real MLflow store: logged, registered with a champion,
exported in the architecture's own format, and a base that train fine-tunes from."""

from __future__ import annotations

from pathlib import Path

import torch
from mlflow.tracking import MlflowClient

from isic_tracking.config import TrainConfig
from isic_tracking.models.init import build_initial
from isic_tracking.stages.pretrain.config import PretrainConfig
from isic_tracking.stages.pretrain.runner import export_weights, run_pretrain
from isic_tracking.tracking.init import with_init_file
from isic_tracking.tracking.registry import load_model
from isic_tracking.train.fold import build_model, checkpoint_config


def test_pretrain_registers_a_base_that_train_fine_tunes_from(mlflow_tracking, tmp_path: Path):
    cfg = PretrainConfig(n_classes=3, per_class=6, image_size=32, epochs=1, batch_size=8,
                         device="cpu", export=str(tmp_path / "base.pth"))  # fmt: skip
    uri = run_pretrain(cfg)
    assert uri == "models:/isic-pretrain-smallcnn@champion"
    version = MlflowClient().get_model_version_by_alias("isic-pretrain-smallcnn", "champion")
    assert "fractal categories" in version.description
    loaded = load_model(uri)
    assert loaded.config["task"] == "pretrain" and loaded.config["num_outputs"] == 3
    assert loaded.config["init"]["kind"] == "random"
    exported = torch.load(tmp_path / "base.pth", weights_only=True)
    assert torch.equal(exported["features.0.weight"], loaded.model.features[0].weight)

    train = with_init_file(TrainConfig(arch="smallcnn", init=uri, work_dir=str(tmp_path)), tmp_path)
    model = build_model(train, torch.device("cpu"))
    assert torch.equal(model.features[0].weight, loaded.model.features[0].weight)
    assert model.head[1].out_features == 1
    record = checkpoint_config(train, model, [0.5] * 3, [0.2] * 3)["init"]
    assert record["kind"] == "model" and record["source"] == uri and record["sha256"]
    again = build_initial("smallcnn", 1, str(tmp_path / "base.pth"), 0)
    assert torch.equal(again.features[0].weight, loaded.model.features[0].weight)


def test_torchvision_export_uses_torchvision_key_names(tmp_path: Path):
    from isic_tracking.models import create_model

    model = create_model("alexnet", 5)
    path = export_weights(model, tmp_path / "alexnet.safetensors")
    from safetensors.torch import load_file

    keys = set(load_file(str(path)))
    assert "classifier.6.weight" in keys and "classifier.6.1.weight" not in keys
