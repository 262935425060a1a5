from __future__ import annotations

import pytest
import torch
from torch import nn

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.featvis import (
    Objective,
    bilateral,
    channel,
    evaluate,
    pixel_image,
    render,
    total_variation,
)
from isic_tracking.interpret.featvis.metrics import pattern_correlation
from isic_tracking.interpret.featvis.presets import preset
from tests.interpret.featvis.conftest import make_tiny_cnn
from tests.interpret.nets import no_hooks


def test_result_shapes_and_labels(tiny_cnn):
    res = render(tiny_cnn, channel("6", [1, 4, 2]), size=32, steps=4, record_every=2)
    assert res.images.shape == (3, 3, 32, 32) and res.images.device.type == "cpu"
    assert 0 <= res.images.min() and res.images.max() <= 1
    assert res.activation.shape == (3,)
    assert res.history.shape == (2, 3) and res.history_steps.tolist() == [0, 2]
    assert res.labels == ["6:1", "6:4", "6:2"]
    assert res.settings["param"] == "fourier_image" and res.seconds > 0


def test_activation_is_the_objective_on_the_final_image(tiny_cnn):
    obj = channel("6", [1, 4])
    res = render(tiny_cnn, obj, size=32, steps=3)
    assert torch.allclose(res.activation, evaluate(tiny_cnn, obj, res.images), atol=1e-5)


def test_no_hook_remains_and_model_state_is_restored(tiny_cnn):
    tiny_cnn.train()
    tiny_cnn[0].weight.requires_grad_(False)  # a mix of flags, restored as they were
    before = {k: v.clone() for k, v in tiny_cnn.state_dict().items()}
    render(tiny_cnn, channel("3", 0), size=32, steps=3)
    assert no_hooks(tiny_cnn)
    assert tiny_cnn.training
    assert [p.requires_grad for p in tiny_cnn.parameters()] == [False] + [True] * 7
    assert all(torch.equal(v, tiny_cnn.state_dict()[k]) for k, v in before.items())
    assert all(p.grad is None for p in tiny_cnn.parameters())


def test_no_hook_remains_when_the_render_raises(tiny_cnn):
    def boom(acts):
        raise RuntimeError("objective failed")

    tiny_cnn.train()
    with pytest.raises(RuntimeError, match="objective failed"):
        render(tiny_cnn, Objective(boom, "boom", ["3"]), size=32, steps=3)
    assert no_hooks(tiny_cnn)
    assert tiny_cnn.training  # the mode it had before the render, restored despite the error
    tiny_cnn.eval()
    with pytest.raises(RuntimeError, match="objective failed"):
        render(tiny_cnn, Objective(boom, "boom", ["3"]), size=32, steps=3)
    assert no_hooks(tiny_cnn) and not tiny_cnn.training
    with pytest.raises(IsicInputError):
        render(tiny_cnn, channel("3", 99), size=32, steps=3)
    assert no_hooks(tiny_cnn)
    assert all(p.requires_grad for p in tiny_cnn.parameters())


def test_same_seed_same_image_other_seed_other_image(tiny_cnn):
    kw = dict(size=32, steps=5, regularizers=[total_variation(), bilateral(every=2)])
    a = render(tiny_cnn, channel("3", [0, 1]), seed=7, **kw)
    b = render(tiny_cnn, channel("3", [0, 1]), seed=7, **kw)
    c = render(tiny_cnn, channel("3", [0, 1]), seed=8, **kw)
    assert torch.equal(a.images, b.images)
    assert not torch.allclose(a.images, c.images)


def test_global_rng_state_is_untouched(tiny_cnn):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    render(tiny_cnn, channel("3", 0), size=32, steps=2)
    assert torch.equal(torch.rand(3), expected)


def test_forward_stops_at_the_deepest_hooked_layer(tiny_cnn):
    class Explode(nn.Module):
        def forward(self, x):
            raise AssertionError("the forward ran past the objective's layer")

    model = nn.Sequential(*list(tiny_cnn)[:4], Explode())
    res = render(model, channel("3", 1), size=32, steps=2)
    assert res.activation.shape == (1,)


def test_unknown_layer_lists_the_conv_layers(tiny_cnn):
    with pytest.raises(IsicInputError, match=r"'features\.99'.* conv layers are: 0, 3, 6"):
        render(tiny_cnn, channel("features.99", 0), size=32, steps=1)
    assert no_hooks(tiny_cnn)


def test_image_too_small_says_the_minimum():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3), nn.MaxPool2d(2), nn.Conv2d(4, 2, 3)
    )
    # 3x3 conv -2, pool /2, conv -2, pool /2, conv -2: needs ((3 * 2) + 2) * 2 + 2 = 18 px
    with pytest.raises(IsicInputError, match=r"image size 12 is too small .* 18 px"):
        render(model, channel("4", 0), size=12, steps=2)
    assert no_hooks(model)


def test_periodic_regularizer_smooths_the_image(tiny_cnn):
    kw = dict(size=32, steps=6, param_fn=pixel_image, transforms=[], lr=0.3)
    plain = render(tiny_cnn, channel("0", [0, 1]), **kw)
    smooth = render(tiny_cnn, channel("0", [0, 1]), regularizers=[bilateral(every=3)], **kw)
    tv = total_variation()
    assert (tv.penalty(smooth.images) < tv.penalty(plain.images)).all()


def test_loss_regularizer_lowers_its_penalty(tiny_cnn):
    kw = dict(size=32, steps=8, param_fn=pixel_image, transforms=[], lr=0.2)
    plain = render(tiny_cnn, channel("3", [0, 1]), **kw)
    reg = render(tiny_cnn, channel("3", [0, 1]), regularizers=[total_variation(weight=5.0)], **kw)
    tv = total_variation()
    assert (tv.penalty(reg.images) < tv.penalty(plain.images)).all()


def edge_pattern(k: int = 5) -> torch.Tensor:
    """Red-left / green-right vertical edge, ``[3, k, k]``."""
    p = torch.zeros(3, k, k)
    p[0, :, : k // 2], p[0, :, k // 2 + 1 :] = 1.0, -1.0
    p[1, :, : k // 2], p[1, :, k // 2 + 1 :] = -1.0, 1.0
    return p


def test_planted_filter_is_recovered():
    """A red/green edge detector hand-set in the first conv shows up in its visualization,
    far more than in the same render of a random model's filter."""
    planted, random_model = make_tiny_cnn(seed=1), make_tiny_cnn(seed=1)
    with torch.no_grad():
        planted[0].weight[0] = 0.3 * edge_pattern()
        planted[0].bias[0] = 0.0
    kw = dict(batch=2, size=32, steps=30, seed=0, **preset("none"))
    scores = {}
    for name, model in {"planted": planted, "random": random_model}.items():
        res = render(model, channel("1", 0), **kw)  # the ReLU after the first conv
        scores[name] = min(pattern_correlation(im, edge_pattern()) for im in res.images)
    print(f"pattern correlation: {scores}")
    assert scores["planted"] > 0.9
    assert scores["planted"] > scores["random"] + 0.4
