"""``smallcnn``: the demo's from-scratch CNN in the model factory, and that it learns."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from isic_tracking.config import TrainConfig
from isic_tracking.data.manifest import read_manifest
from isic_tracking.errors import IsicInputError
from isic_tracking.models import available_archs, conv_layers, create_model, resolve_layers
from isic_tracking.train.checkpoint import load_model_checkpoint, save_model_checkpoint
from isic_tracking.train.fold import train_fold


def test_factory_builds_it_with_the_usual_head_and_layer_names() -> None:
    assert "smallcnn" in available_archs()
    model = create_model("smallcnn", 8, dropout=0.3)
    head = model.get_submodule(model.isic_head)
    assert isinstance(head[0], nn.Dropout) and head[0].p == 0.3
    assert isinstance(head[1], nn.Linear) and head[1].out_features == 8
    assert conv_layers(model) == ["features.0", "features.4", "features.8", "features.12"]
    assert resolve_layers(model, "first,last") == ["features.0", "features.12"]
    assert model.eval()(torch.randn(2, 3, 64, 64)).shape == (2, 8)
    assert model.isic_config == {"arch": "smallcnn", "num_outputs": 8, "dropout": 0.3}


def test_pretrained_is_refused_but_a_weights_file_loads(tmp_path: Path) -> None:
    with pytest.raises(IsicInputError, match="no ImageNet weights"):
        create_model("smallcnn", 1, pretrained=True)
    ref = create_model("smallcnn", 1)
    torch.save(ref.state_dict(), tmp_path / "w.pth")
    again = create_model("smallcnn", 1, weights=tmp_path / "w.pth")
    assert torch.equal(again.features[0].weight, ref.features[0].weight)


def test_checkpoint_round_trip_and_feature_freeze(tmp_path: Path) -> None:
    model = create_model("smallcnn", 1).eval()
    save_model_checkpoint(tmp_path, model, model.isic_config)
    back, _ = load_model_checkpoint(tmp_path)
    x = torch.randn(3, 3, 48, 48)
    assert torch.allclose(model(x), back(x))
    frozen = create_model("smallcnn", 1, freeze="features")
    trainable = {n for n, p in frozen.named_parameters() if p.requires_grad}
    assert trainable == {"head.1.weight", "head.1.bias"}


def test_it_learns_the_planted_cues_in_a_few_epochs(binary_manifest: Path, tmp_path: Path) -> None:
    """Benign (small, round, brown) vs malignant (large, irregular, multi-coloured) from
    scratch: a few epochs at 32 px separate the validation images."""
    df = read_manifest(binary_manifest)
    df = df[df["split"] == "train"].sample(frac=1.0, random_state=0).reset_index(drop=True)
    cut = int(0.7 * len(df))
    train, val = df.iloc[:cut], df.iloc[cut:]
    assert set(pd.unique(val["label"])) == {0, 1}
    cfg = TrainConfig(
        arch="smallcnn", epochs=6, batch_size=16, lr=3e-3, image_size=32, augment="flips",
        device="cpu", min_best_epoch=3,
    )  # fmt: skip
    result = train_fold(cfg, train, val, 0, tmp_path / "state.pt")
    first, best = result.history[0], result.best_metrics
    assert result.best_epoch >= 3
    assert best["val_roc_auc"] >= 0.9
    assert best["train_loss"] < first["train_loss"]
