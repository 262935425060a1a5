"""Winograd's F(4x4, 3x3) and F(2x2, 5x5) for the fp32 render: the direct conv's outputs and
input gradients, only where it pays, and the render's fast path using it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from isic_tracking.interpret.featvis import channel, render
from isic_tracking.interpret.featvis.fastpath import plan, winograd_convs
from isic_tracking.interpret.featvis.presets import preset
from isic_tracking.interpret.featvis.winograd import (
    MAP_SIDES,
    WinogradConv,
    filter_matrix,
    filter_transform,
    output_matrix,
    pays,
    winograd_conv,
)

CPU = torch.device("cpu")


def _frozen_conv(c_in: int, c_out: int, kernel: int = 3, **kwargs) -> nn.Conv2d:
    torch.manual_seed(0)
    return nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, **kwargs).requires_grad_(False)


def _relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got - want).abs().max() / want.abs().max()).item()


#: Lavin & Gray's G and A^T of F(4x4, 3x3) at 0, +-1, +-2 and infinity, as published
LAVIN_G = ((1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6),
           (1 / 24, 1 / 12, 1 / 6), (1 / 24, -1 / 12, 1 / 6), (0, 0, 1))  # fmt: skip
LAVIN_AT = ((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1))


def test_the_derived_matrices_are_the_published_ones_for_3x3():
    assert torch.allclose(torch.tensor(filter_matrix(3)), torch.tensor(LAVIN_G).float())
    assert torch.equal(torch.tensor(output_matrix(3)), torch.tensor(LAVIN_AT).float())
    assert len(filter_matrix(5)) == 6 and len(output_matrix(5)) == 2  # F(2x2, 5x5)


@pytest.mark.parametrize("kernel", [3, 5])
def test_filter_transform_is_g_w_gt_with_the_tile_positions_first(kernel: int):
    w = torch.randn(5, 7, kernel, kernel)
    g = torch.tensor(filter_matrix(kernel), dtype=torch.float64)
    want = (g @ w.double() @ g.T).permute(2, 3, 1, 0).reshape(36, 7, 5)
    got = filter_transform(w)
    assert got.shape == (36, 7, 5) and got.is_contiguous()  # bmm copies a strided one
    assert torch.allclose(got.double(), want, atol=1e-6)


@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("size", [28, 13, 14, 27, 3])
@pytest.mark.parametrize("channels_last", [True, False])
def test_winograd_conv_gives_the_direct_convs_outputs_and_input_gradient(
    kernel: int, size: int, channels_last: bool
):
    """Either kernel, any map size (whole tiles or not, smaller than one tile) and either
    memory layout."""
    conv = _frozen_conv(64, 80, kernel)
    fast = WinogradConv(conv)
    x = torch.randn(2, 64, size, size)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    upstream = torch.randn(2, 80, size, size)
    results = []
    for run in (conv, fast.by_winograd):
        xi = x.clone().requires_grad_(True)
        out = run(xi)
        (out * upstream).sum().backward()
        results.append((out.detach(), xi.grad))
    (y_direct, g_direct), (y_fast, g_fast) = results
    assert y_fast.shape == y_direct.shape
    assert _relative_error(y_fast, y_direct) < 1e-4
    assert _relative_error(g_fast, g_direct) < 1e-4
    assert y_fast.is_contiguous(memory_format=torch.channels_last)


def test_a_relu_may_work_in_place_on_its_output():
    """The output is a tensor of its own, not a view autograd forbids changing in place."""
    fast = WinogradConv(_frozen_conv(64, 64))
    x = torch.randn(1, 64, 16, 16, requires_grad=True)
    out = fast(x)
    assert out.grad_fn.name() == "_WinogradFnBackward"
    F.relu(out, inplace=True).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_winograd_conv_without_bias_matches_too():
    conv = _frozen_conv(16, 32, bias=False)
    x = torch.randn(1, 16, 9, 9)
    got = winograd_conv(x, filter_transform(conv.weight))
    assert _relative_error(got, conv(x)) < 1e-4


def test_it_is_used_only_where_it_pays_and_the_weights_are_frozen():
    assert pays(_frozen_conv(64, 128)) and pays(_frozen_conv(512, 512))
    assert not pays(_frozen_conv(32, 64))  # slower than the direct kernel (docs/benchmarks.md)
    assert not pays(_frozen_conv(3, 64)) and not pays(_frozen_conv(128, 32))
    assert not pays(nn.Conv2d(128, 128, 3, padding=1))  # trainable: no weight gradient here
    assert not pays(_frozen_conv(128, 128, stride=2))
    assert not pays(_frozen_conv(128, 128, dilation=2))
    assert not pays(_frozen_conv(128, 128, groups=2))
    assert not pays(nn.Conv2d(128, 128, 5, padding=2).requires_grad_(False))
    assert not pays(_frozen_conv(128, 128).double())


@pytest.mark.parametrize(("side", "winograd"), [(7, False), (13, True), (112, True), (120, False)])
def test_maps_outside_the_sides_where_it_pays_take_the_direct_conv(side: int, winograd: bool):
    """Same outputs either way; only on maps of MAP_SIDES does the Winograd function run."""
    conv = _frozen_conv(64, 64)
    x = torch.randn(1, 64, side, side, requires_grad=True)
    out = WinogradConv(conv)(x)
    assert (out.grad_fn.name() == "_WinogradFnBackward") == winograd
    assert _relative_error(out.detach(), conv(x).detach()) < 1e-4
    assert MAP_SIDES == (13, 112)


def _wide_cnn() -> nn.Sequential:
    """VGG's shape in small: a narrow stem, then 3x3 convs wide enough for Winograd."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(128, 128, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(128, 96, 3, padding=1),
    ).eval()


def test_winograd_convs_swap_the_wide_convs_keep_hooked_ones_and_restore_them():
    model = _wide_cnn().requires_grad_(False)
    originals = list(model)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
        with winograd_convs(model, keep={"5"}) as n:
            assert n == 2  # "3" and "7"; the stem is too narrow, "5" is hooked
            assert isinstance(model[3], WinogradConv) and isinstance(model[7], WinogradConv)
            assert type(model[5]) is nn.Conv2d and type(model[0]) is nn.Conv2d
            after = model(x)
    assert list(model) == originals
    assert _relative_error(after, before) < 1e-4


def test_the_fp32_cpu_path_uses_winograd_and_the_bf16_and_gpu_paths_do_not():
    fp32 = plan(CPU, 224, 100, native_bf16=False)
    assert fp32.winograd and fp32.settings()["winograd"]
    assert not plan(CPU, 224, 100, native_bf16=True).winograd  # bf16: the direct kernels
    assert not plan(torch.device("cuda"), 224, 100, native_bf16=True).winograd
    assert not plan(CPU, 224, 100, native_bf16=False, winograd=False).winograd


def test_the_fp32_render_uses_it_beside_the_target_channel_and_reaches_the_same_images():
    """The read conv is computed for its target channel only; the wide convs before it by
    Winograd (the target channel's own conv stays a Conv2d inside it). The images and the
    activation reached are the direct render's up to rounding."""
    model = _wide_cnn()
    obj = channel("7", [3, 50])
    kwargs = {"size": 32, "steps": 4, "amp": False, **preset("tuned")}
    fast = render(model, obj, **kwargs)
    direct = render(model, obj, winograd=False, **kwargs)
    assert fast.settings["winograd"] and fast.settings["winograd_convs"] == 2
    assert fast.settings["target_channel_convs"] == 1
    assert not direct.settings["winograd"] and direct.settings["winograd_convs"] == 0
    assert type(model[3]) is nn.Conv2d and type(model[7]) is nn.Conv2d  # restored
    assert torch.allclose(fast.images, direct.images, atol=1e-3)
    assert torch.allclose(fast.activation, direct.activation, rtol=1e-3)
