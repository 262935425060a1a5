from __future__ import annotations

import pytest
import torch

from isic_tracking.interpret.featvis.param import (
    COLOR_CORRELATION,
    data_colour_basis,
    fourier_image,
    image_magnitude,
    maco_image,
    pixel_image,
)

PARAMS = [pixel_image, fourier_image, maco_image]


@pytest.mark.parametrize("param_fn", PARAMS)
def test_image_shape_range_and_leaf_params(param_fn):
    params, image_fn = param_fn(3, 32, generator=torch.Generator().manual_seed(0))
    img = image_fn()
    assert img.shape == (3, 3, 32, 32)
    assert img.min() >= 0 and img.max() <= 1
    assert all(p.is_leaf and p.requires_grad for p in params)
    img.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in params)


@pytest.mark.parametrize("param_fn", PARAMS)
def test_same_generator_seed_same_image(param_fn):
    a = param_fn(2, 16, generator=torch.Generator().manual_seed(5))[1]()
    b = param_fn(2, 16, generator=torch.Generator().manual_seed(5))[1]()
    c = param_fn(2, 16, generator=torch.Generator().manual_seed(6))[1]()
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize("param_fn", [pixel_image, fourier_image])
def test_assign_is_the_inverse(param_fn):
    _, image_fn = param_fn(2, 16, generator=torch.Generator().manual_seed(0))
    target = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 0.9 + 0.05
    image_fn.assign(target)
    assert torch.allclose(image_fn(), target, atol=1e-4)


def test_fourier_batch_elements_are_independent():
    params, image_fn = fourier_image(2, 16, generator=torch.Generator().manual_seed(0))
    image_fn()[0].sum().backward()
    assert params[0].grad[0].abs().sum() > 0
    assert params[0].grad[1].abs().sum() == 0


def test_maco_optimizes_phase_only_with_fixed_magnitude():
    params, image_fn = maco_image(2, 16, generator=torch.Generator().manual_seed(0))
    assert len(params) == 1 and params[0].shape == (2, 3, 16, 9)  # phase of the rfft2
    mag = image_fn.magnitude.clone()
    opt = torch.optim.Adam(params, lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        (-image_fn()[:, 0].mean()).backward()
        opt.step()
    assert torch.equal(image_fn.magnitude, mag)


def test_maco_with_image_magnitude_and_shape_check():
    images = torch.rand(4, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    mag = image_magnitude(images, 16)
    assert mag.shape == (3, 16, 9)
    _, image_fn = maco_image(1, 16, magnitude=mag)
    assert image_fn().shape == (1, 3, 16, 16)
    with pytest.raises(ValueError, match="magnitude must have shape"):
        maco_image(1, 32, magnitude=mag)


def _skin_images(n: int = 4, size: int = 24) -> torch.Tensor:
    """Images of one colour family: a skin tone scaled in lightness and shifted towards brown."""
    g = torch.Generator().manual_seed(0)
    skin, brown = torch.tensor([0.85, 0.63, 0.55]), torch.tensor([0.45, 0.29, 0.19])
    t = torch.rand(n, 1, size, size, generator=g)
    return (skin[None, :, None, None] * (1 - t) + brown[None, :, None, None] * t).clamp(0, 1)


def test_data_colour_basis_starts_at_the_data_colour_along_its_main_axis():
    images = _skin_images()
    basis = data_colour_basis([images[:2], images[2:]], "skin")  # batches accumulate
    assert basis.source == "skin"
    mean_rgb = torch.sigmoid(basis.offset)
    assert torch.allclose(mean_rgb, images.mean((0, 2, 3)), atol=0.05)
    # the first axis is the skin-to-brown direction; the others carry little (a straight line
    # in RGB is slightly curved in logit space)
    norms = basis.matrix.norm(dim=0)
    assert norms[0] == pytest.approx(float(COLOR_CORRELATION.norm(dim=0).max()), rel=1e-5)
    assert norms[1:].max() < 0.1 * norms[0]
    # a zero spectrum is the data's mean colour (ImageNet's basis starts at grey)
    for param_fn in (fourier_image, pixel_image):
        kw = {"decorrelate": True} if param_fn is pixel_image else {}
        params, image_fn = param_fn(1, 8, colour=basis, **kw)
        with torch.no_grad():
            params[0].zero_()
        assert torch.allclose(image_fn()[0, :, 0, 0], mean_rgb, atol=1e-5)
        _, grey = param_fn(1, 8, **kw)
        with torch.no_grad():
            grey.params[0].zero_()
        assert torch.allclose(grey(), torch.full_like(grey(), 0.5))
    with pytest.raises(ValueError, match="no pixels"):
        data_colour_basis([])


@pytest.mark.parametrize("param_fn", [pixel_image, fourier_image])
def test_assign_inverts_a_data_colour_basis_too(param_fn):
    g = torch.Generator().manual_seed(3)
    basis = data_colour_basis([torch.rand(2, 3, 16, 16, generator=g)])
    kw = {"decorrelate": True} if param_fn is pixel_image else {}
    _, image_fn = param_fn(2, 16, colour=basis, **kw)
    target = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 0.9 + 0.05
    image_fn.assign(target)
    assert torch.allclose(image_fn(), target, atol=1e-4)
