from __future__ import annotations

import pytest
import torch

from isic_tracking.interpret.featvis.regularizers import (
    bilateral,
    bilateral_filter,
    blur,
    gaussian_blur,
    l1,
    total_variation,
)

REGS = [l1(), total_variation(), blur(), bilateral()]


def _noise(b=2, size=16, seed=0):
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("reg", REGS, ids=lambda r: r.name)
def test_penalty_is_per_image_and_lower_after_apply(reg):
    x = _noise()
    pen = reg.penalty(x)
    assert pen.shape == (2,)
    y = reg.apply(x)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    assert (reg.penalty(y) < pen).all()


def test_l1_and_tv_are_zero_for_a_flat_grey_image():
    grey = torch.full((1, 3, 8, 8), 0.5)
    assert l1().penalty(grey).item() == 0
    assert total_variation().penalty(grey).item() == 0
    assert l1(weight=0.05).penalty(torch.ones(1, 3, 8, 8)).item() == pytest.approx(0.05 * 0.5)


def test_bilateral_keeps_edges_blur_does_not():
    img = torch.zeros(1, 3, 16, 16)
    img[..., 8:] = 1.0  # a sharp vertical edge
    noisy = (img + 0.03 * torch.randn(img.shape, generator=torch.Generator().manual_seed(0))).clamp(
        0, 1
    )
    bil = bilateral_filter(noisy, sigma_color=75)
    blr = gaussian_blur(noisy, sigma=1.0)
    edge_step = lambda t: (t[..., 8] - t[..., 7]).mean()  # noqa: E731
    assert edge_step(bil) > 0.9  # edge kept
    assert edge_step(blr) < 0.6  # edge smeared
    flat = lambda t: t[..., :6].std()  # noqa: E731
    assert flat(bil) < flat(noisy) / 2  # noise inside the flat area reduced


def test_periodic_copy_and_names():
    reg = bilateral(every=0).periodic(5)
    assert reg.every == 5 and not reg.in_loss and reg.name == "bilateral(75)"
    assert l1().in_loss and l1().name == "l1(0.05)"


@pytest.mark.parametrize("reg", [l1(0.05), total_variation(0.05)], ids=lambda r: r.name)
def test_closed_form_penalty_gradient_is_autograds(reg):
    """L1 and TV enter the loss with their gradient in closed form: same values and gradients
    as autograd through the penalty's own formula, flat regions and ties included."""
    x = _noise(b=3, size=12)
    x[0, :, :4, :4] = 0.5  # flat grey patch: zero differences and zero distance to grey
    x[1, 0, 5, 5:8] = x[1, 0, 5, 4]  # ties between neighbours
    weights = torch.tensor([1.0, -2.0, 0.5])
    fast = x.clone().requires_grad_(True)
    (reg.penalty(fast) * weights).sum().backward()
    ref = x.clone().requires_grad_(True)
    value = reg.weight * reg.penalty_fn(ref)
    (value * weights).sum().backward()
    assert reg.value_and_grad is not None
    assert torch.allclose(reg.penalty(x), value.detach(), atol=1e-7)
    assert torch.allclose(fast.grad, ref.grad, atol=1e-9)
    assert fast.grad.abs().sum() > 0
