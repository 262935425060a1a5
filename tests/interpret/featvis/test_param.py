from __future__ import annotations

import pytest
import torch

from isic_tracking.interpret.featvis.param import (
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
