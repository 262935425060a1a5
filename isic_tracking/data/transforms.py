"""Train and eval transforms: the augmentation recipe of Perez et al. 2018, used in the thesis.

Perez, Vasconcelos, Avila, Valle, "Data Augmentation for Skin Lesion Analysis" (ISIC Skin
Image Analysis Workshop, MICCAI 2018), scenario J: random resized crop (area 0.4-1.0, ratio
3/4-4/3), affine (rotation up to 90 deg, shear up to 20 deg, scale 0.8-1.2, symmetric fill),
horizontal and vertical flips, colour jitter (brightness, contrast, saturation 0.7-1.3, hue
+-0.1).

The transforms work on uint8 ``CHW`` tensors (what :mod:`torchvision.io` decodes) or PIL
images, do the geometric resampling that shrinks the image first, convert to float once and
return a float32 tensor, normalized with ``mean``/``std`` unless ``mean`` is None.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from isic_tracking.errors import IsicInputError

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
AUGMENTATIONS: tuple[str, ...] = ("perez", "flips", "none")


def _affine_grid(theta: Tensor, height: int, width: int) -> Tensor:
    """``F.affine_grid(theta, ..., align_corners=False)`` as three broadcast ops (~5x faster).

    Pixel centres in normalized coordinates are ``(2i + 1) / n - 1``; each output location
    maps to ``theta @ (x, y, 1)``.
    """
    kw = {"dtype": theta.dtype, "device": theta.device}
    xs = ((torch.arange(width, **kw) * 2 + 1) / width - 1).view(1, 1, width, 1)
    ys = ((torch.arange(height, **kw) * 2 + 1) / height - 1).view(1, height, 1, 1)
    t = theta.transpose(1, 2)[:, None, None]  # [B, 1, 1, 3, 2]
    return xs * t[..., 0, :] + ys * t[..., 1, :] + t[..., 2, :]


def _affine_theta(angle: float, shear: float, zoom: float, height: int, width: int) -> list:
    """``grid_sample`` matrix (output -> input, normalized coordinates) of one affine map.

    Forward map in pixel coordinates about the centre, y pointing down (so a positive angle
    turns counter-clockwise on screen): ``zoom * R @ Sh`` with ``R = [[c, s], [-s, c]]`` and
    ``Sh = [[1, t], [0, 1]]``. Its inverse is ``Sh^-1 @ R^T / zoom``; dividing by the half
    sizes turns pixel into normalized coordinates. Plain floats: for one 2x2 matrix, Python
    arithmetic is far cheaper than a dozen tiny tensor ops.
    """
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    t = math.tan(math.radians(shear))
    a, b = (c - t * s) / zoom, (-s - t * c) / zoom
    d, e = s / zoom, c / zoom
    return [[a, b * height / width, 0.0], [d * width / height, e, 0.0]]


def affine_symmetric(
    img: Tensor,
    angle: float | Sequence[float],
    shear: float | Sequence[float],
    zoom: float | Sequence[float],
) -> Tensor:
    """Rotate, shear and zoom images about their centre, filling with the mirrored image.

    Perez et al. pad symmetrically where torchvision's affine fills a constant (after a 45 deg
    rotation a fifth of the image would be black, a cue dermoscopy's real dark corners make
    harmful). The output-to-input map is sampled by ``grid_sample(padding_mode="reflection")``,
    which with ``align_corners=False`` mirrors about the image border: symmetric padding of
    any width, in one resampling pass, without padding the image first.

    Args:
        img: ``[C, H, W]`` or ``[B, C, H, W]``; uint8 is returned as uint8.
        angle: degrees, counter-clockwise as ``torchvision...rotate`` (one value, or one
            per image).
        shear: x-shear angle in degrees (one value, or one per image).
        zoom: scale factor, > 1 enlarges (one value, or one per image).
    """
    batched = img.ndim == 4
    x = img if batched else img.unsqueeze(0)
    n, height, width = x.shape[0], x.shape[-2], x.shape[-1]
    dtype = x.dtype
    if not x.is_floating_point():
        x = x.float()

    def per_image(v: float | Sequence[float]) -> list[float]:
        return [float(u) for u in v] if isinstance(v, Sequence) else [float(v)] * n

    params = zip(per_image(angle), per_image(shear), per_image(zoom))
    theta = torch.tensor([_affine_theta(*p, height, width) for p in params], dtype=x.dtype)
    grid = _affine_grid(theta.to(x.device), height, width)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    if not dtype.is_floating_point:
        x = x.round_().clamp_(0, torch.iinfo(dtype).max).to(dtype)
    return x if batched else x.squeeze(0)


class RandomAffineSymmetric(torch.nn.Module):
    """Random rotation, x-shear and zoom with symmetric fill (see :func:`affine_symmetric`).

    Args:
        degrees (float, default 90): rotation angle drawn from [-degrees, degrees].
        shear (float, default 20): x-shear angle drawn from [-shear, shear], in degrees.
        scale (tuple, default (0.8, 1.2)): zoom factor range.

    Each image of a ``[B, C, H, W]`` batch gets its own parameters (drawn from torch's RNG).
    """

    def __init__(
        self,
        degrees: float = 90.0,
        shear: float = 20.0,
        scale: tuple[float, float] = (0.8, 1.2),
    ) -> None:
        super().__init__()
        self.degrees, self.shear, self.scale = float(degrees), float(shear), tuple(scale)

    def forward(self, img: Tensor) -> Tensor:
        u = torch.rand(img.shape[0] if img.ndim == 4 else 1, 3, dtype=torch.float64).tolist()
        lo, hi = self.scale
        angle = [(2 * a - 1) * self.degrees for a, _, _ in u]
        shear = [(2 * b - 1) * self.shear for _, b, _ in u]
        zoom = [lo + (hi - lo) * c for _, _, c in u]
        return affine_symmetric(img, angle, shear, zoom)

    def extra_repr(self) -> str:
        return f"degrees={self.degrees}, shear={self.shear}, scale={self.scale}, fill=symmetric"


def adjust_hue(img: Tensor, hue_factor: float) -> Tensor:
    """Shift the hue of float RGB images in [0, 1] by ``hue_factor`` (fraction of a turn).

    Same result as ``torchvision.transforms.v2.functional.adjust_hue`` (to 1e-5) at about a
    third of its cost: a hue shift keeps each pixel's max and min channel, so the image is
    rebuilt from (max, chroma, hue) with the closed-form HSV->RGB map
    ``c_n = max - chroma * clamp(min(k, 4 - k), 0, 1)``, ``k = (n + 6 h) mod 6``,
    ``n = 5, 3, 1`` for R, G, B.
    """
    r, g, b = img.unbind(-3)
    maxc = img.amax(dim=-3)
    chroma = maxc - img.amin(dim=-3)
    # hue in sextants [0, 6): which channel is the max picks the formula (red wins ties, then
    # green, as in torchvision); masks as 0/1 factors are cheaper than nested torch.where.
    is_r = r == maxc
    is_g = (g == maxc) & ~is_r
    is_b = ~(is_r | is_g)
    hue6 = (g - b) * is_r + (b - r + 2 * chroma) * is_g + (r - g + 4 * chroma) * is_b
    hue6 = hue6 * chroma.clamp(min=1e-12).reciprocal_()  # gray pixels: 0 * huge = 0
    n = torch.tensor([5.0, 3.0, 1.0], dtype=img.dtype, device=img.device).view(3, 1, 1)
    k = (hue6.unsqueeze(-3) + (n + 6 * hue_factor)).remainder_(6)
    return maxc.unsqueeze(-3) - chroma.unsqueeze(-3) * torch.minimum(k, 4 - k).clamp_(0, 1)


class ColorJitter(torch.nn.Module):
    """``v2.ColorJitter`` for float tensors with the fast :func:`adjust_hue`.

    Like torchvision: factors drawn uniformly from ``[1 - x, 1 + x]`` (hue from
    ``[-hue, hue]``), the four adjustments applied in a random order.
    """

    def __init__(
        self,
        brightness: float = 0.0,
        contrast: float = 0.0,
        saturation: float = 0.0,
        hue: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= hue <= 0.5:
            raise IsicInputError(f"hue={hue} must lie in [0, 0.5]")
        self.brightness, self.contrast, self.saturation, self.hue = (
            brightness,
            contrast,
            saturation,
            hue,
        )

    def forward(self, img: Tensor) -> Tensor:
        ops = [
            (TF.adjust_brightness, self.brightness, 1.0),
            (TF.adjust_contrast, self.contrast, 1.0),
            (TF.adjust_saturation, self.saturation, 1.0),
            (adjust_hue, self.hue, 0.0),
        ]
        u = torch.rand(4)
        for i in torch.randperm(4).tolist():
            fn, amount, centre = ops[i]
            if amount > 0:
                img = fn(img, centre + amount * (2 * float(u[i]) - 1))
        return img

    def extra_repr(self) -> str:
        return (
            f"brightness={self.brightness}, contrast={self.contrast}, "
            f"saturation={self.saturation}, hue={self.hue}"
        )


def build_transforms(
    image_size: int,
    train: bool,
    mean: Sequence[float] | None = IMAGENET_MEAN,
    std: Sequence[float] | None = IMAGENET_STD,
    augment: str = "perez",
) -> v2.Compose:
    """Image transforms for training (augmented) or evaluation.

    Args:
        image_size (int): output height and width.
        train (bool): random augmentation when True; resize + centre crop when False.
        mean, std (sequence of 3 floats, default ImageNet): normalization; ``mean=None``
            returns float images in [0, 1].
        augment (str, default "perez"): "perez" (the full recipe of Perez et al. 2018),
            "flips" (random resized crop and flips only) or "none" (the eval transform).

    Returns:
        A ``v2.Compose`` mapping a uint8 ``[3, H, W]`` tensor or PIL image to float32
        ``[3, image_size, image_size]``.
    """
    if augment not in AUGMENTATIONS:
        raise IsicInputError(f"unknown augment {augment!r}; choose one of {list(AUGMENTATIONS)}")
    if image_size < 8:
        raise IsicInputError(f"image_size={image_size} is too small; use e.g. 224")
    ops: list[torch.nn.Module] = [v2.ToImage()]
    if train and augment != "none":
        # Crop and flips on uint8 (cheap, shrinks the image); the affine and colour ops on float.
        # Flips before the affine are equivalent to after it: angle and shear are symmetric.
        ops += [
            v2.RandomResizedCrop(
                image_size, scale=(0.4, 1.0), ratio=(3 / 4, 4 / 3), antialias=True
            ),
            v2.RandomHorizontalFlip(),
            v2.RandomVerticalFlip(),
            v2.ToDtype(torch.float32, scale=True),
        ]
        if augment == "perez":
            ops += [
                RandomAffineSymmetric(degrees=90, shear=20, scale=(0.8, 1.2)),
                ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.1),
            ]
    else:
        ops += [
            v2.Resize(image_size, antialias=True),
            v2.CenterCrop(image_size),
            v2.ToDtype(torch.float32, scale=True),
        ]
    if mean is not None:
        if std is None or len(mean) != 3 or len(std) != 3:
            raise IsicInputError(f"mean and std need 3 values each, got {mean} and {std}")
        ops.append(v2.Normalize(mean=list(mean), std=list(std)))
    ops.append(v2.ToPureTensor())
    return v2.Compose(ops)


def denormalize(
    images: Tensor,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Tensor:
    """Undo :class:`v2.Normalize` on ``[..., 3, H, W]`` (for plots); values clamped to [0, 1]."""
    m = torch.as_tensor(mean, dtype=images.dtype, device=images.device)[:, None, None]
    s = torch.as_tensor(std, dtype=images.dtype, device=images.device)[:, None, None]
    return (images * s + m).clamp(0, 1)


def normalize(
    images: Tensor, mean: Sequence[float] | Tensor, std: Sequence[float] | Tensor
) -> Tensor:
    """Per-channel ``(x - mean) / std`` of ``[B, C, H, W]`` images: the model-input normalization
    (and the z-scores of the artifact detector). ``std`` is floored at 1e-12 so that a constant
    channel gives large values instead of inf; the inverse is :func:`denormalize`."""
    m = torch.as_tensor(mean, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    return (images - m) / s.clamp_min(1e-12)
