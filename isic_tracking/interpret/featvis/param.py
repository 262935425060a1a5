"""Image parameterizations: what the optimizer actually changes, and how it becomes an image.

Each function returns ``(params, image_fn)`` in lucent's style: ``params`` are the leaf tensors to
optimize and ``image_fn()`` gives a ``[B, 3, H, W]`` batch in ``[0, 1]``. ``image_fn`` is an
:class:`ImageParam`, which can also ``assign(images)`` (the inverse map), so that a periodic
pixel-space operation such as a bilateral filter can be applied whatever the parameterization.

Every function takes a ``torch.Generator`` for its random start and a ``device``; nothing here
keeps module-level state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

#: Square root of the colour correlation of ImageNet (Olah et al. 2017, lucid), columns normalized.
_COLOR_CORRELATION_SVD_SQRT = torch.tensor(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]]
)
COLOR_CORRELATION = _COLOR_CORRELATION_SVD_SQRT / _COLOR_CORRELATION_SVD_SQRT.norm(dim=0).max()

#: lucid's constant: the raw inverse FFT is divided by it before the sigmoid (less saturation).
_FFT_MAGIC = 4.0
_EPS = 1e-4

ParamFn = Callable[..., "tuple[list[Tensor], ImageParam]"]


@dataclass(frozen=True)
class ColourBasis:
    """The colour space a parameterization optimizes in: ``rgb_logit = matrix @ t + offset``
    before the sigmoid. :data:`IMAGENET` is lucid's (ImageNet's colour correlation, mid-grey
    start); :func:`data_colour_basis` fits one to the analysed images."""

    matrix: Tensor  # [3, 3]
    offset: Tensor  # [3]
    source: str = "imagenet"


IMAGENET = ColourBasis(COLOR_CORRELATION, torch.zeros(3))
#: Pixels are clamped to this margin before the logit (a pure black/white pixel has none).
_BASIS_EPS = 0.02


def data_colour_basis(images: Iterable[Tensor], source: str = "data") -> ColourBasis:
    """The colour basis of a set of images (``[B, 3, H, W]`` batches in ``[0, 1]``): the
    square root of their pixels' colour covariance in logit space (as lucid's ImageNet
    matrix, columns normalized the same way) and their mean colour as the offset.

    Optimizing in it, the first steps move the picture along the data's own colour axes (for
    skin images: lightness and the skin-to-brown axis) from the data's mean colour, instead of
    ImageNet's from grey: the pictures stay in the lesions' gamut unless the unit asks for
    more (the multiclass class-logit pictures then carry their class colours)."""
    stats = ColourStats()
    for batch in images:
        stats.add(batch)
    return stats.basis(source)


class ColourStats:
    """:func:`data_colour_basis` batch by batch, so that one pass over the images can feed it
    and other consumers (each image decoded once)."""

    def __init__(self) -> None:
        self.n = 0
        self.total = torch.zeros(3, dtype=torch.float64)
        self.outer = torch.zeros(3, 3, dtype=torch.float64)

    def add(self, batch: Tensor) -> None:
        """Count the pixels of ``batch`` (``[B, 3, H, W]`` in ``[0, 1]``)."""
        x = torch.logit(batch.double().clamp(_BASIS_EPS, 1 - _BASIS_EPS))
        x = x.permute(1, 0, 2, 3).reshape(3, -1)
        self.n += x.shape[1]
        self.total += x.sum(1)
        self.outer += x @ x.T

    def basis(self, source: str = "data") -> ColourBasis:
        """The basis of every pixel counted so far."""
        if self.n < 2:
            raise ValueError("data_colour_basis got no pixels")
        mean = self.total / self.n
        cov = (self.outer - self.n * torch.outer(mean, mean)) / (self.n - 1)
        u, sv, _ = torch.linalg.svd(cov)
        sqrt = u @ torch.diag(sv.clamp(min=0).sqrt())
        matrix = sqrt / sqrt.norm(dim=0).max() * COLOR_CORRELATION.norm(dim=0).max()
        return ColourBasis(matrix.float(), mean.float(), source)


def _randn(shape: tuple[int, ...], sd: float, generator: torch.Generator | None, device) -> Tensor:
    """Normal noise drawn on the CPU (same numbers on every device), then moved."""
    return (torch.randn(shape, generator=generator) * sd).to(device)


def decorrelate(t: Tensor, matrix: Tensor | None = None) -> Tensor:
    """Map decorrelated colour coordinates to RGB (``[B, 3, H, W]``).

    ``matrix`` is :data:`COLOR_CORRELATION` already on ``t``'s device (saves a copy per step).
    """
    m = COLOR_CORRELATION.to(t.device, t.dtype) if matrix is None else matrix
    return torch.einsum("ij,bjhw->bihw", m, t)


def correlate(t: Tensor, matrix: Tensor | None = None) -> Tensor:
    """Inverse of :func:`decorrelate` (``matrix``: the same one, default
    :data:`COLOR_CORRELATION`)."""
    m = COLOR_CORRELATION if matrix is None else matrix
    inv = torch.linalg.inv(m).to(t.device, t.dtype)
    return torch.einsum("ij,bjhw->bihw", inv, t)


def _logit(img: Tensor) -> Tensor:
    return torch.logit(img.clamp(_EPS, 1 - _EPS))


def fft_frequencies(height: int, width: int, device=None) -> Tensor:
    """Radial frequency of every ``rfft2`` coefficient, shape ``[H, W // 2 + 1]``."""
    fy = torch.fft.fftfreq(height, device=device)[:, None]
    fx = torch.fft.rfftfreq(width, device=device)[None, :]
    return torch.sqrt(fx * fx + fy * fy)


def spectrum_scale(height: int, width: int, decay_power: float = 1.0, device=None) -> Tensor:
    """1/f^decay scaling of each frequency, so every frequency band gets a similar gradient."""
    freqs = fft_frequencies(height, width, device)
    return 1.0 / freqs.clamp(min=1.0 / max(height, width)) ** decay_power


class ImageParam:
    """A batch of images defined by ``params``; call it to get ``[B, 3, H, W]`` in ``[0, 1]``.

    Subclasses implement :meth:`__call__` and :meth:`assign` (set the params so that the image
    becomes ``images``, as far as the parameterization can express it).
    """

    def __init__(
        self, params: list[Tensor], batch: int, size: int, colour: ColourBasis = IMAGENET
    ) -> None:
        self.params = params
        self.batch = batch
        self.size = size
        self.color = colour.matrix.to(params[0].device)
        self.offset = colour.offset.to(params[0].device)[None, :, None, None]

    def to_rgb(self, t: Tensor) -> Tensor:
        """Decorrelated colour coordinates -> image in ``[0, 1]`` (the basis's matrix and
        offset, then the sigmoid)."""
        return torch.sigmoid(decorrelate(t, self.color) + self.offset)

    def from_rgb(self, images: Tensor) -> Tensor:
        """Inverse of :meth:`to_rgb`."""
        return correlate(_logit(images) - self.offset, self.color)

    def __call__(self) -> Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def assign(self, images: Tensor) -> None:
        raise NotImplementedError


class PixelImage(ImageParam):
    """Pixels behind a sigmoid, optionally in decorrelated colour space."""

    def __init__(self, tensor: Tensor, decorrelate: bool, colour: ColourBasis = IMAGENET):
        super().__init__([tensor], tensor.shape[0], tensor.shape[-1], colour)
        self.decorrelate = decorrelate

    def __call__(self) -> Tensor:
        t = self.params[0]
        return self.to_rgb(t) if self.decorrelate else torch.sigmoid(t)

    @torch.no_grad()
    def assign(self, images: Tensor) -> None:
        self.params[0].copy_(self.from_rgb(images) if self.decorrelate else _logit(images))


class FourierImage(ImageParam):
    """Real/imaginary parts of the spectrum, scaled by 1/f, in decorrelated colour space."""

    def __init__(
        self,
        spectrum: Tensor,
        size: int,
        decay_power: float,
        decorrelate: bool,
        colour: ColourBasis = IMAGENET,
    ) -> None:
        super().__init__([spectrum], spectrum.shape[0], size, colour)
        self.scale = spectrum_scale(size, size, decay_power, spectrum.device)[..., None]
        self.decorrelate = decorrelate

    def __call__(self) -> Tensor:
        spec = torch.view_as_complex(self.params[0] * self.scale)
        t = torch.fft.irfft2(spec, s=(self.size, self.size), norm="ortho") / _FFT_MAGIC
        return self.to_rgb(t) if self.decorrelate else torch.sigmoid(t)

    @torch.no_grad()
    def assign(self, images: Tensor) -> None:
        t = (self.from_rgb(images) if self.decorrelate else _logit(images)) * _FFT_MAGIC
        spec = torch.view_as_real(torch.fft.rfft2(t, norm="ortho")) / self.scale
        self.params[0].copy_(spec)


class MacoImage(ImageParam):
    """Phase-only spectrum with a fixed magnitude (MACO, Fel et al. 2023)."""

    def __init__(self, phase: Tensor, magnitude: Tensor, size: int) -> None:
        super().__init__([phase], phase.shape[0], size)
        self.magnitude = magnitude

    @staticmethod
    def _standardize(t: Tensor) -> Tensor:
        dims = tuple(range(1, t.ndim))
        return (t - t.mean(dims, keepdim=True)) / (t.std(dims, keepdim=True) + 1e-5)

    def __call__(self) -> Tensor:
        phase = self._standardize(self.params[0])
        spec = torch.polar(self.magnitude.expand_as(phase), phase)
        t = torch.fft.irfft2(spec, s=(self.size, self.size), norm="ortho")
        return torch.sigmoid(decorrelate(self._standardize(t), self.color))

    @torch.no_grad()
    def assign(self, images: Tensor) -> None:
        # Only the phase is free: keep the fixed magnitude, take the phase of the new image.
        spec = torch.fft.rfft2(correlate(_logit(images)), norm="ortho")
        self.params[0].copy_(self._standardize(torch.angle(spec)))


def pixel_image(
    batch: int,
    size: int,
    sd: float = 0.01,
    decorrelate: bool = False,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    colour: ColourBasis = IMAGENET,
) -> tuple[list[Tensor], ImageParam]:
    """Plain pixels (through a sigmoid): the unregularized baseline.

    Args:
        batch: number of images B.
        size: height = width in pixels.
        sd: standard deviation of the start noise (default 0.01: a grey start).
        decorrelate: optimize in a decorrelated colour space (default False).
        generator: CPU generator for the start noise (seeded by the caller).
        device: where the parameters live.
        colour: the colour basis with ``decorrelate`` (default lucid's ImageNet one).
    """
    t = _randn((batch, 3, size, size), sd, generator, device).requires_grad_(True)
    image = PixelImage(t, decorrelate, colour)
    return image.params, image


def fourier_image(
    batch: int,
    size: int,
    sd: float = 0.01,
    decay_power: float = 1.0,
    decorrelate: bool = True,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    colour: ColourBasis = IMAGENET,
) -> tuple[list[Tensor], ImageParam]:
    """Fourier parameterization with 1/f scaling and colour decorrelation (Olah et al. 2017).

    Args:
        batch: number of images B.
        size: height = width in pixels.
        sd: standard deviation of the start spectrum (default 0.01).
        decay_power: exponent of the 1/f scaling (default 1.0, as lucent).
        decorrelate: optimize in a decorrelated colour space (default True).
        generator: CPU generator for the start spectrum.
        device: where the parameters live.
        colour: the colour basis (default lucid's ImageNet one; :func:`data_colour_basis`).
    """
    shape = (batch, 3, size, size // 2 + 1, 2)
    spectrum = _randn(shape, sd, generator, device).requires_grad_(True)
    image = FourierImage(spectrum, size, decay_power, decorrelate, colour)
    return image.params, image


def natural_magnitude(size: int, decay_power: float = 1.0, device=None) -> Tensor:
    """A 1/f magnitude spectrum ``[3, H, W // 2 + 1]``: MACO's default when no images are given."""
    scale = spectrum_scale(size, size, decay_power, device)
    scale[0, 0] = 0.0  # no DC: the image is re-standardized anyway
    return scale.expand(3, -1, -1).clone()


def image_magnitude(images: Tensor, size: int) -> Tensor:
    """Mean magnitude spectrum of real images (``[N, 3, h, w]`` in ``[0, 1]``), in the
    decorrelated colour space MACO uses, resized to ``size`` (Fel et al. 2023 use ImageNet's)."""
    x = torch.nn.functional.interpolate(images.float(), size=(size, size), mode="bilinear")
    mag = torch.fft.rfft2(correlate(x - x.mean((2, 3), keepdim=True)), norm="ortho").abs()
    return mag.mean(0)


def maco_image(
    batch: int,
    size: int,
    magnitude: Tensor | None = None,
    sd: float = 1.0,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> tuple[list[Tensor], ImageParam]:
    """MACO: optimize only the phase of the spectrum, its magnitude stays fixed.

    Fel et al. 2023, "Unlocking Feature Visualization for Deeper Networks with MAgnitude
    Constrained Optimization". Fixing the magnitude keeps natural-image statistics without
    extra regularizers.

    Args:
        batch: number of images B.
        size: height = width in pixels.
        magnitude: ``[3, size, size // 2 + 1]`` magnitude spectrum, e.g. from
            :func:`image_magnitude` over training images; default :func:`natural_magnitude`.
        sd: standard deviation of the random start phase (default 1.0).
        generator: CPU generator for the start phase.
        device: where the parameters live.
    """
    mag = natural_magnitude(size) if magnitude is None else magnitude
    expected = (3, size, size // 2 + 1)
    if tuple(mag.shape) != expected:
        raise ValueError(f"magnitude must have shape {expected}, got {tuple(mag.shape)}")
    phase = _randn((batch, *expected), sd, generator, device).requires_grad_(True)
    image = MacoImage(phase, mag.to(device), size)
    return image.params, image
