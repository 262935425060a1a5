"""Model factory: heads, dropout, freezing, offline weights, layer names and errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from isic_tracking.errors import IsicInputError
from isic_tracking.models import conv_layers, create_model, get_layer, resolve_layers


@pytest.mark.parametrize(
    ("arch", "first", "last"),
    [
        ("alexnet", "features.0", "features.10"),
        ("resnet18", "conv1", "layer4.1.conv2"),
        ("mobilenet_v3_small", "features.0.0", "features.12.0"),
    ],
)
def test_head_replaced_and_layers_named(arch: str, first: str, last: str) -> None:
    model = create_model(arch, 1, dropout=0.3)
    head = model.get_submodule(model.isic_head)
    assert isinstance(head[0], nn.Dropout) and head[0].p == 0.3
    assert isinstance(head[1], nn.Linear) and head[1].out_features == 1
    convs = conv_layers(model)
    assert convs[0] == first and convs[-1] == last
    out = model.eval()(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 1)


def test_multiclass_outputs_and_timm_model() -> None:
    model = create_model("timm:resnet10t", 8)
    assert model.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 8)
    assert model.isic_config == {"arch": "timm:resnet10t", "num_outputs": 8, "dropout": 0.1}


def test_unknown_arch_lists_close_names() -> None:
    with pytest.raises(IsicInputError, match="resnet50"):
        create_model("resnet5O", 1)


def test_missing_weights_file_says_where(tmp_path: Path) -> None:
    missing = tmp_path / "resnet18.pth"
    with pytest.raises(IsicInputError, match=str(missing)):
        create_model("resnet18", 1, weights=missing)


def test_pretrained_without_cache_names_cache_path(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(IsicInputError, match="checkpoints"):
        create_model("resnet18", 1, pretrained=True)


def test_local_weights_file_is_loaded(tmp_path: Path) -> None:
    ref = create_model("resnet18", 1)
    import torchvision

    imagenet = torchvision.models.resnet18()
    torch.save(imagenet.state_dict(), tmp_path / "r18.pth")
    model = create_model("resnet18", 1, weights=tmp_path / "r18.pth")
    assert torch.equal(model.conv1.weight, imagenet.conv1.weight)
    assert not torch.equal(model.conv1.weight, ref.conv1.weight)


def test_weights_for_another_arch_is_rejected(tmp_path: Path) -> None:
    import torchvision

    torch.save(torchvision.models.alexnet().state_dict(), tmp_path / "a.pth")
    with pytest.raises(IsicInputError, match="does not fit"):
        create_model("resnet18", 1, weights=tmp_path / "a.pth")


@pytest.mark.parametrize("mode", ["features", "all_but_head"])
def test_freeze_modes_keep_head_trainable(mode: str) -> None:
    model = create_model("alexnet", 1, freeze=mode)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "classifier.6.1.weight" in trainable
    assert "features.0.weight" not in trainable
    assert ("classifier.1.weight" in trainable) == (mode == "features")


def test_resolve_layers_keywords_and_errors() -> None:
    model = create_model("alexnet", 1)
    assert resolve_layers(model, "first,last") == ["features.0", "features.10"]
    assert resolve_layers(model, "all") == conv_layers(model)
    assert resolve_layers(model, None) == ["features.10"]
    with pytest.raises(IsicInputError, match="features.0, features.3"):
        resolve_layers(model, "features.99")
    with pytest.raises(IsicInputError, match="conv layers are"):
        get_layer(model, "nope")


def test_timm_pretrained_without_cache_fails_offline_and_fast(tmp_path: Path, monkeypatch) -> None:
    import time

    monkeypatch.setenv("HF_HOME", str(tmp_path))
    t0 = time.perf_counter()
    with pytest.raises(IsicInputError, match="local Hugging Face cache"):
        create_model("timm:resnet10t", 1, pretrained=True)
    assert time.perf_counter() - t0 < 30  # no network retries
