from __future__ import annotations

import pytest
import torch
from PIL import Image
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from isic_tracking.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ColorJitter,
    RandomAffineSymmetric,
    adjust_hue,
    affine_symmetric,
    build_transforms,
    denormalize,
)
from isic_tracking.errors import IsicInputError


def gradient_image(h: int = 40, w: int = 56) -> torch.Tensor:
    """A smooth uint8 image whose every pixel is distinct enough to track geometry."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    return (torch.stack([xx, yy, 0.5 * (xx + yy)]) * 200 + 30).round().to(torch.uint8)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("augment", ["perez", "flips", "none"])
def test_output_shape_dtype_and_type(train, augment):
    out = build_transforms(32, train=train, augment=augment)(gradient_image())
    assert type(out) is torch.Tensor  # plain tensor, not a tv_tensors.Image
    assert out.shape == (3, 32, 32) and out.dtype == torch.float32


def test_accepts_pil_images():
    pil = Image.fromarray(gradient_image().permute(1, 2, 0).numpy())
    assert build_transforms(24, train=True)(pil).shape == (3, 24, 24)


def test_normalization_default_imagenet_and_disabled():
    mean_img = torch.tensor(IMAGENET_MEAN).view(3, 1, 1).expand(3, 40, 40)
    img = (mean_img * 255).round().to(torch.uint8)
    normed = build_transforms(32, train=False)(img)
    assert normed.abs().max() < 0.02  # the ImageNet mean colour maps to ~0
    raw = build_transforms(32, train=False, mean=None)(img)
    assert torch.allclose(raw, mean_img[:, :32, :32], atol=1 / 255)
    custom = build_transforms(32, train=False, mean=(0.0, 0.0, 0.0), std=(0.5, 0.5, 0.5))(img)
    assert torch.allclose(custom, raw / 0.5, atol=1e-5)


def test_eval_is_resize_and_centre_crop():
    img = gradient_image(40, 80)
    out = build_transforms(20, train=False, mean=None)(img)
    expected = TF.center_crop(TF.resize(img, 20, antialias=True), [20, 20]).float() / 255
    assert torch.allclose(out, expected)
    assert torch.equal(out, build_transforms(20, train=False, mean=None)(img))  # deterministic


def test_train_is_random_and_seedable():
    tf = build_transforms(32, train=True)
    img = gradient_image()
    torch.manual_seed(3)
    a = tf(img)
    b = tf(img)
    torch.manual_seed(3)
    c = tf(img)
    assert not torch.allclose(a, b)
    assert torch.equal(a, c)


def test_augment_none_equals_eval():
    img = gradient_image()
    assert torch.equal(
        build_transforms(32, train=True, augment="none")(img),
        build_transforms(32, train=False)(img),
    )


def test_perez_recipe_parameters():
    ops = build_transforms(64, train=True).transforms
    rrc = next(t for t in ops if isinstance(t, v2.RandomResizedCrop))
    assert rrc.scale == (0.4, 1.0) and rrc.ratio == pytest.approx((3 / 4, 4 / 3))
    aff = next(t for t in ops if isinstance(t, RandomAffineSymmetric))
    assert (aff.degrees, aff.shear, aff.scale) == (90.0, 20.0, (0.8, 1.2))
    cj = next(t for t in ops if isinstance(t, ColorJitter))
    assert (cj.brightness, cj.contrast, cj.saturation, cj.hue) == (0.3, 0.3, 0.3, 0.1)
    assert any(isinstance(t, v2.RandomHorizontalFlip) for t in ops)
    assert any(isinstance(t, v2.RandomVerticalFlip) for t in ops)


def test_bad_arguments_raise():
    with pytest.raises(IsicInputError, match="unknown augment"):
        build_transforms(32, train=True, augment="heavy")
    with pytest.raises(IsicInputError, match="3 values"):
        build_transforms(32, train=False, mean=(0.5, 0.5), std=(0.2, 0.2))
    with pytest.raises(IsicInputError, match="hue"):
        ColorJitter(hue=0.7)


def test_affine_geometry_matches_rotation_and_identity():
    x = torch.rand(3, 10, 10)
    assert torch.allclose(affine_symmetric(x, 0, 0, 1.0), x, atol=1e-5)
    assert torch.allclose(affine_symmetric(x, 90, 0, 1.0), TF.rotate(x, 90), atol=1e-5)
    smooth = gradient_image(32, 32).float() / 255
    inner = (slice(None), slice(10, 22), slice(10, 22))  # away from any fill
    rotated = TF.rotate(smooth, 30, interpolation=v2.InterpolationMode.BILINEAR)
    assert torch.allclose(affine_symmetric(smooth, 30, 0, 1.0)[inner], rotated[inner], atol=1e-4)
    bilinear = v2.InterpolationMode.BILINEAR
    zoomed = TF.affine(
        smooth, angle=0.0, translate=[0, 0], scale=1.5, shear=[0.0, 0.0], interpolation=bilinear
    )
    assert torch.allclose(affine_symmetric(smooth, 0, 0, 1.5)[inner], zoomed[inner], atol=1e-4)
    # TF.affine's angles turn clockwise, so its shear has the opposite sign (the recipe draws
    # symmetric ranges, so the convention does not matter for augmentation)
    sheared = TF.affine(
        smooth, angle=0.0, translate=[0, 0], scale=1.0, shear=[15.0, 0.0], interpolation=bilinear
    )
    assert torch.allclose(affine_symmetric(smooth, 0, -15, 1.0)[inner], sheared[inner], atol=1e-4)


def test_affine_fill_is_symmetric_not_constant():
    # A constant image stays constant under any affine map with mirrored fill; torchvision's
    # constant fill would put zeros in the corners.
    flat = torch.full((3, 24, 24), 0.5)
    torch.manual_seed(0)
    aff = RandomAffineSymmetric()
    for _ in range(5):
        assert torch.allclose(aff(flat), flat, atol=1e-6)
    out = affine_symmetric(gradient_image(24, 24).float() / 255, 45, 20, 0.8)
    assert out.min() >= 30 / 255 - 1e-4  # every output pixel comes from the image
    # The whole recipe never produces black corners on an image without dark pixels.
    torch.manual_seed(1)
    img = (torch.rand(3, 40, 40) * 0.2 + 0.4).mul(255).to(torch.uint8)
    tf = build_transforms(32, train=True, mean=None)
    assert min(float(tf(img).min()) for _ in range(10)) > 0.1


def test_affine_batch_params_and_uint8():
    torch.manual_seed(0)
    batch = gradient_image(24, 24).expand(4, 3, 24, 24).clone()
    out = RandomAffineSymmetric()(batch)
    assert out.dtype == torch.uint8 and out.shape == batch.shape
    assert not torch.equal(out[0], out[1])  # each image its own draw


@pytest.mark.parametrize("factor", [-0.5, -0.1, 0.0, 0.05, 0.1, 0.33])
def test_fast_hue_matches_torchvision(factor):
    torch.manual_seed(0)
    x = torch.rand(2, 3, 16, 16)
    x[:, :, :4, :4] = 0.5  # gray pixels: no hue
    x[:, 1, 4:8, :4] = x[:, 0, 4:8, :4]  # ties between channels
    assert torch.allclose(adjust_hue(x, factor), TF.adjust_hue(x, factor), atol=1e-5)


def test_color_jitter_ranges():
    torch.manual_seed(0)
    x = torch.full((3, 8, 8), 0.5)
    cj = ColorJitter(brightness=0.3)
    ratios = torch.stack([cj(x).mean() / 0.5 for _ in range(200)])
    assert ratios.min() >= 0.7 - 1e-6 and ratios.max() <= 1.3 + 1e-6
    assert ratios.max() - ratios.min() > 0.4  # spans most of [0.7, 1.3]
    assert torch.equal(ColorJitter()(x), x)  # all amounts 0: identity


def test_denormalize_inverts_normalize():
    x = torch.rand(2, 3, 8, 8)
    normed = TF.normalize(x, list(IMAGENET_MEAN), list(IMAGENET_STD))
    assert torch.allclose(denormalize(normed), x, atol=1e-6)
