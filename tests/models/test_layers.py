"""Layer names and lookup on real torchvision models."""

from __future__ import annotations

import pytest
from torch import nn
from torchvision.models import alexnet, resnet18

from isic_tracking.errors import IsicInputError
from isic_tracking.models.layers import conv_layers, get_layer, resolve_layers


@pytest.fixture(scope="module")
def resnet() -> nn.Module:
    return resnet18(weights=None)


@pytest.fixture(scope="module")
def alex() -> nn.Module:
    return alexnet(weights=None)


def test_conv_layers_in_definition_order(resnet: nn.Module, alex: nn.Module) -> None:
    """Every Conv2d, first to last, downsample convs included."""
    assert conv_layers(alex) == [
        "features.0",
        "features.3",
        "features.6",
        "features.8",
        "features.10",
    ]
    convs = conv_layers(resnet)
    assert len(convs) == 20  # stem + 8 blocks x 2 + 3 downsample
    assert convs[0] == "conv1" and convs[-1] == "layer4.1.conv2"
    assert "layer2.0.downsample.0" in convs
    assert (
        convs.index("layer1.0.conv1")
        < convs.index("layer1.0.conv2")
        < convs.index("layer2.0.conv1")
    )


def test_get_layer_returns_the_module(resnet: nn.Module, alex: nn.Module) -> None:
    """Dotted and indexed names give the very submodule."""
    assert get_layer(alex, "features.3") is alex.features[3]
    assert get_layer(resnet, "layer4.1.conv2") is resnet.layer4[1].conv2
    assert get_layer(resnet, "fc") is resnet.fc


@pytest.mark.parametrize("name", ["layer9.conv1", "features.0", "conv1.weight"])
def test_get_layer_unknown_name_lists_conv_layers(resnet: nn.Module, name: str) -> None:
    """An unknown name (or a parameter, not a module) names the model and its convs."""
    with pytest.raises(IsicInputError) as err:
        get_layer(resnet, name)
    msg = str(err.value)
    assert repr(name) in msg and "ResNet" in msg
    assert "conv1" in msg and "layer4.1.conv2" in msg


def test_resolve_keywords(resnet: nn.Module) -> None:
    """first / last / all, and the default when nothing is given."""
    assert resolve_layers(resnet, "first") == ["conv1"]
    assert resolve_layers(resnet, "last") == ["layer4.1.conv2"]
    assert resolve_layers(resnet, "all") == conv_layers(resnet)
    for empty in (None, "", []):
        assert resolve_layers(resnet, empty) == ["layer4.1.conv2"]
    assert resolve_layers(resnet, None, default="first") == ["conv1"]


def test_resolve_mixed_list_is_deduplicated_in_order(resnet: nn.Module) -> None:
    """A comma list mixing keywords and names keeps first occurrences, whitespace ignored."""
    spec = " last , layer1.0.conv1,first, layer4.1.conv2 ,"
    assert resolve_layers(resnet, spec) == ["layer4.1.conv2", "layer1.0.conv1", "conv1"]
    assert resolve_layers(resnet, ["fc", "first", "fc"]) == ["fc", "conv1"]


def test_resolve_named_gives_leaf_modules(alex: nn.Module) -> None:
    """``named``: every leaf module (convs, activations, pools, linears), no containers."""
    named = resolve_layers(alex, "named")
    assert "features.0" in named and "features.1" in named and "classifier.6" in named
    assert "features" not in named and "classifier" not in named and "" not in named
    assert set(conv_layers(alex)) <= set(named)


def test_resolve_unknown_name_and_convless_model(resnet: nn.Module) -> None:
    """An unknown name in the spec and a model without Conv2d are input errors."""
    with pytest.raises(IsicInputError, match="'layer5'"):
        resolve_layers(resnet, "first,layer5")
    mlp = nn.Sequential(nn.Linear(4, 2))
    with pytest.raises(IsicInputError, match="Sequential has no Conv2d"):
        resolve_layers(mlp, "last")
