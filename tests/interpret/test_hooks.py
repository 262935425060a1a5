"""The one hook engine: early stop, the shared-module rule, the cloning rule, missing layers,
and no hook left behind by any of its users (also when they raise)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.activations import activation_stats
from isic_tracking.interpret.featvis import Objective, channel, check_request, evaluate, render
from isic_tracking.interpret.featvis.dreams import render_torch_dreams
from isic_tracking.interpret.featvis.render import layer_channels, probe
from isic_tracking.interpret.hooks import LayerRecorder, StopForward, eval_mode, frozen_eval
from isic_tracking.interpret.sanity import activation_vectors, path_similarity_analysis
from tests.interpret.featvis.conftest import make_tiny_cnn
from tests.interpret.nets import Counter, no_hooks

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),  # "0"
        nn.ReLU(inplace=True),  # "1": overwrites "0"'s output in place
        nn.Conv2d(4, 6, 3, padding=1),  # "2"
        Counter(),  # "3"
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 2),  # "6"
    )


def test_records_each_layer_and_stops_after_the_deepest():
    model = net()
    x = torch.randn(2, 3, 8, 8)
    with LayerRecorder(model, ["2", "0"]) as rec:
        acts = rec(x)
    assert list(acts) == ["2", "0"]  # the order asked for
    assert model[3].calls == 0  # nothing after the last layer to fire ran
    with torch.no_grad():
        pre = model[0](x)
        torch.testing.assert_close(acts["0"], pre)  # cloned: the inplace ReLU did not touch it
        torch.testing.assert_close(acts["2"], model[2](torch.relu(pre)))
    assert no_hooks(model)


def test_cloning_rule_copies_shared_memory_unless_last_and_never_reductions():
    model = net()
    seen: dict[str, torch.Tensor] = {}

    def keep(name, out):
        seen[name] = out
        return out if name != "2" else out.amax(dim=(2, 3))

    with LayerRecorder(model, ["0", "1", "2"], keep) as rec:
        acts = rec(torch.randn(1, 3, 8, 8))
    ptr = lambda t: t.untyped_storage().data_ptr()  # noqa: E731
    assert ptr(acts["0"]) != ptr(seen["0"])  # fired first: a copy
    assert ptr(acts["1"]) != ptr(seen["1"])
    assert acts["2"].shape == (1, 6)  # a reduction: a new tensor, kept as is
    with LayerRecorder(model, ["1"], keep) as rec:
        last = rec(torch.randn(1, 3, 8, 8))["1"]
    assert ptr(last) == ptr(seen["1"])  # the last to fire: nothing runs after it, no copy


def test_a_module_that_runs_twice_before_the_stop_is_refused():
    conv = nn.Conv2d(3, 3, 1)

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.head = conv, nn.Conv2d(3, 2, 1)

        def forward(self, x):
            return self.head(self.conv(self.conv(x)))

    model = Twice()
    with pytest.raises(IsicInputError, match="'conv' runs more than once"):
        with LayerRecorder(model, ["conv", "head"]) as rec:
            rec(torch.randn(1, 3, 4, 4))
    assert no_hooks(model)
    with LayerRecorder(model, ["conv"]) as rec:  # deepest asked for: stopped before the 2nd call
        assert rec(torch.randn(1, 3, 4, 4))["conv"].shape == (1, 3, 4, 4)


def test_missing_layer_and_non_tensor_output_are_clear_errors():
    class Skips(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.unused = nn.Conv2d(3, 2, 1), nn.Conv2d(2, 2, 1)

        def forward(self, x):
            return self.used(x)

    with pytest.raises(IsicInputError, match=r"\['unused'\] did not run"):
        with LayerRecorder(Skips(), ["used", "unused"]) as rec:
            rec(torch.randn(1, 3, 4, 4))

    class Dict(nn.Module):
        def forward(self, x):
            return {"x": x}

    model = nn.Sequential(Dict())
    with pytest.raises(IsicInputError, match="does not output a tensor"):
        with LayerRecorder(model, ["0"]) as rec:
            rec(torch.randn(1, 3, 4, 4))
    with pytest.raises(IsicInputError, match="'nope' does not exist"):
        LayerRecorder(model, ["nope"])
    assert issubclass(StopForward, Exception) and not issubclass(StopForward, RuntimeError)


def test_eval_mode_and_frozen_eval_restore_the_model():
    model = net().train()
    model[0].weight.requires_grad_(False)
    flags = [p.requires_grad for p in model.parameters()]
    with eval_mode(model):
        assert not model.training and [p.requires_grad for p in model.parameters()] == flags
    assert model.training
    with pytest.raises(RuntimeError, match="boom"), frozen_eval(model):
        assert not model.training and not any(p.requires_grad for p in model.parameters())
        raise RuntimeError("boom")
    assert model.training and [p.requires_grad for p in model.parameters()] == flags


# --------------------------------------------------------------------------- no hook left behind


def _boom(acts):
    raise RuntimeError("objective failed")


BAD = torch.rand(2, 4, 16, 16)  # 4 channels into a 3-channel conv: the forward raises
USERS: dict[str, tuple[Callable[[nn.Module], object], Callable[[nn.Module], object]]] = {
    "activation_stats": (
        lambda m: activation_stats(m, [torch.rand(2, 3, 16, 16)], ["0", "3"]),
        lambda m: activation_stats(m, [BAD], ["0", "3"]),
    ),
    "activation_vectors": (
        lambda m: activation_vectors(m, torch.rand(2, 3, 16, 16), ["0", "6"], mean=MEAN, std=STD),
        lambda m: activation_vectors(m, BAD, ["0"], mean=(0,) * 4, std=(1,) * 4),
    ),
    "path_similarity_analysis": (
        lambda m: path_similarity_analysis(
            m,
            ["0", "6"],
            torch.rand(4, 3, 16, 16),
            torch.tensor([0, 0, 1, 1]),
            torch.rand(2, 3, 16, 16),
            torch.tensor([0, 1]),
            mean=MEAN,
            std=STD,
        ),  # fmt: skip
        lambda m: path_similarity_analysis(
            m,
            ["0"],
            BAD,
            torch.tensor([0, 1]),
            BAD,
            torch.tensor([0, 1]),
            mean=(0,) * 4,
            std=(1,) * 4,
        ),  # fmt: skip
    ),
    "render": (
        lambda m: render(m, channel("3", [0, 1]), size=32, steps=2),
        lambda m: render(m, Objective(_boom, "boom", ["3"]), size=32, steps=2),
    ),
    "evaluate": (
        lambda m: evaluate(m, channel("6", 0), torch.rand(1, 3, 32, 32)),
        lambda m: evaluate(m, channel("6", 0), BAD),
    ),
    "probe": (lambda m: probe(m, ["0", "6"], 32), lambda m: probe(m, ["6"], 2)),
    "check_request": (
        lambda m: check_request(m, channel("6", [1, 2]), 32),
        lambda m: check_request(m, channel("6", 99), 32),
    ),
    "layer_channels": (lambda m: layer_channels(m, "3", 32), lambda m: layer_channels(m, "6", 2)),
    "render_torch_dreams": (
        lambda m: render_torch_dreams(m, "3", [0], size=32, steps=1),
        lambda m: render_torch_dreams(m, "3", [99], size=32, steps=1),
    ),
}


@pytest.mark.parametrize("user", sorted(USERS))
def test_no_hook_left_behind(user: str):
    """After every call of every user of the engine, also one that raises, no module keeps a
    forward hook or pre-hook, and the model's mode is as it was."""
    ok, fails = USERS[user]
    model = make_tiny_cnn().train()
    ok(model)
    assert no_hooks(model) and model.training
    with pytest.raises((RuntimeError, IsicInputError)):
        fails(model)
    assert no_hooks(model) and model.training
