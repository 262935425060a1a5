from __future__ import annotations

import torch

from isic_tracking.interpret.featvis.transforms import (
    compose,
    jitter,
    random_affine,
    rotate,
    scale,
    thesis_transforms,
)


def _images(b=4, size=32, seed=0):
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_zero_ranges_are_the_identity():
    x = _images()
    assert torch.allclose(random_affine()(x), x, atol=1e-5)
    assert torch.allclose(compose([])(x), x)


def test_shape_is_constant_for_every_transform():
    x = _images(size=24)
    for t in [thesis_transforms(), jitter(3), rotate(15), scale(0.5, 1.2)]:
        assert t(x).shape == x.shape


def test_each_batch_element_gets_its_own_draw():
    x = _images(1).expand(6, -1, -1, -1).contiguous()  # six copies of one image
    torch.manual_seed(0)
    out = thesis_transforms()(x)
    diffs = [(out[0] - out[i]).abs().mean() for i in range(1, 6)]
    assert min(diffs) > 1e-3


def test_jitter_shifts_by_whole_pixels():
    x = _images(1, 16)
    torch.manual_seed(0)
    out = jitter(2)(x)
    # some integer shift (dx, dy) in [-2, 2] reproduces the output away from the borders
    errs = [
        (out[..., 3:-3, 3:-3] - torch.roll(x, (dy, dx), (2, 3))[..., 3:-3, 3:-3]).abs().max()
        for dx in range(-2, 3)
        for dy in range(-2, 3)
    ]
    assert min(errs) < 1e-5


def test_compose_applies_left_to_right():
    add = lambda x: x + 1  # noqa: E731
    double = lambda x: x * 2  # noqa: E731
    assert compose([add, double])(torch.zeros(1)).item() == 2.0


def test_seeded_draws_repeat():
    x = _images()
    torch.manual_seed(3)
    a = thesis_transforms()(x)
    torch.manual_seed(3)
    b = thesis_transforms()(x)
    assert torch.equal(a, b)
