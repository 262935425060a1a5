from __future__ import annotations

import pytest
import torch

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.featvis import render
from isic_tracking.interpret.featvis.objectives import (
    LOGITS,
    channel,
    channels,
    class_logit,
    layer,
    neuron,
)


def _acts():
    g = torch.Generator().manual_seed(0)
    return {"a": torch.randn(3, 5, 4, 4, generator=g), LOGITS: torch.randn(3, 2, generator=g)}


def test_channel_shared_and_per_element_gather():
    acts = _acts()
    a = acts["a"]
    assert torch.allclose(channel("a", 2)(acts), a[:, 2].mean((-1, -2)))
    per = channels("a", torch.tensor([4, 0, 1]))(acts)
    assert torch.allclose(per, torch.stack([a[0, 4], a[1, 0], a[2, 1]]).mean((-1, -2)))
    assert channel("a", [4, 0, 1]).batch == 3
    assert channel("a", [4, 0, 1]).labels == ["a:4", "a:0", "a:1"]


def test_neuron_layer_and_logit_values():
    acts = _acts()
    a = acts["a"]
    assert torch.allclose(neuron("a", 1)(acts), a[:, 1, 2, 2])
    assert torch.allclose(neuron("a", 1, x=0, y=3)(acts), a[:, 1, 3, 0])
    assert torch.allclose(layer("a")(acts), (a**2).mean((1, 2, 3)))
    assert torch.allclose(class_logit(1)(acts), acts[LOGITS][:, 1])


def test_arithmetic_values_and_names():
    acts = _acts()
    a, b = channel("a", 0), neuron("a", 3)
    assert torch.allclose((a + b)(acts), a(acts) + b(acts))
    assert torch.allclose((a - 0.5 * b)(acts), a(acts) - 0.5 * b(acts))
    assert torch.allclose((-a)(acts), -a(acts))
    assert torch.allclose(sum([a, b])(acts), a(acts) + b(acts))
    assert (a - 2 * b).name == "channel(a, 0) - 2*(neuron(a, 3, centre))"
    assert (a + class_logit(1)).layers == ("a", LOGITS)


def test_combining_different_target_counts_fails():
    with pytest.raises(ValueError, match="2 targets"):
        channel("a", [0, 1]) + channel("a", [0, 1, 2])


def test_out_of_range_message_gives_the_valid_range():
    with pytest.raises(IsicInputError, match=r"channel 7 .* 5 channels: use 0\.\.4"):
        channel("a", [0, 7, 1])(_acts())
    with pytest.raises(IsicInputError, match=r"logit 2 .*'logits'.* use 0\.\.1"):
        class_logit(2)(_acts())


OBJECTIVES = {
    "channel": channel("3", 2),
    "channels": channels("6", [0, 5, 7]),
    "neuron": neuron("3", 1),
    "layer": layer("3"),
    "class_logit": class_logit([0, 2]),
    "combination": channel("3", 1) - 0.5 * channel("6", 2),
}


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_each_objective_improves_within_a_few_steps(tiny_cnn, name):
    obj = OBJECTIVES[name]
    res = render(tiny_cnn, obj, batch=obj.batch or 2, size=32, steps=8, transforms=[], seed=0)
    assert (res.activation > res.history[0]).all(), (res.history[0], res.activation)


def test_a_channel_objective_says_which_channels_it_reads():
    """``reads`` lets the render compute only those channels: set by ``channel``, dropped by
    anything that may read more (sums, scaling, whole layers, logits)."""
    assert channel("a", [4, 0, 1]).reads == {"a": [4, 0, 1]}
    assert channel("a", 2).reads == {"a": [2]}
    assert channels("a", torch.tensor([1, 3])).reads == {"a": [1, 3]}
    for other in (channel("a", 1) + channel("a", 2), 2.0 * channel("a", 1), layer("a"),
                  class_logit(0), neuron("a", 1)):  # fmt: skip
        assert other.reads is None, other.name
