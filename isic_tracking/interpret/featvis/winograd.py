"""3x3 convolutions by Winograd's minimal filtering, F(4x4, 3x3), for the fp32 render on CPU
(and F(2x2, 5x5) on the same 6x6 tiles, measured but not used: see :func:`pays`).

A render's step is mostly the model's forward and input gradient, and on a CPU without native
bfloat16 oneDNN's direct fp32 kernels already run near the core's peak (VGG16 to
``features.28``, ~61 GFLOP forward + input gradient, in 0.61 s on an AVX2 core: ~100 GFLOP/s).
What is left is arithmetic: Winograd's F(4x4, 3x3) computes a 4x4 output tile from a 6x6
input tile with 36 multiplications per channel pair instead of 144, so a 3x3 conv becomes 36
matrix products ``[tiles, C_in] @ [C_in, C_out]`` between two cheap linear transforms of the
tiles (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural
Networks"). It pays where the products dominate the transforms' memory traffic: forward +
input gradient of VGG16's 512-channel convs at 28 px 70 -> 31 ms on a core capped at AVX2;
not on few channels, large maps or tiny ones (:func:`pays`, :data:`MAP_SIDES`).

The input gradient of a stride-1 conv padded to keep its size is the same conv of the output
gradient with the kernel flipped and its channel axes swapped, so the backward is one more Winograd conv.
The weights are taken frozen (a render optimizes the image, not the model): no weight gradient.
Rounding: outputs agree with the direct conv to about 1e-5 of their largest value (fp32), the
error of the points 0, +-1, +-2 that F(4, 3) uses; the activation a render reaches moves by
rounding only.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Input tile side: F(4x4, 3x3) and F(2x2, 5x5) both read 6x6 tiles, at the same points.
SPAN = 6
#: The finite interpolation points (infinity is the sixth): small integers keep the rounding low.
POINTS = (0, 1, -1, 2, -2)
#: Input transform B^T at those points: the same for every F(m, r) with m + r - 1 = 6.
_BT = (
    (4, 0, -5, 0, 1, 0),
    (0, -4, -4, 1, 1, 0),
    (0, 4, -4, -1, 1, 0),
    (0, -2, -1, 2, 1, 0),
    (0, 2, -1, -2, 1, 0),
    (0, 4, 0, -5, 0, 1),
)


def tile_side(kernel: int) -> int:
    """Output tile side m of F(m x m, r x r) on 6x6 input tiles: 4 for 3x3, 2 for 5x5."""
    return SPAN - kernel + 1


@functools.cache
def filter_matrix(kernel: int) -> tuple[tuple[float, ...], ...]:
    """G (6 x r) of the Toom-Cook construction at :data:`POINTS` and infinity: row ``p`` is
    ``p^k / prod_{q != p} (p - q)``, the last row picks the highest tap."""
    rows = []
    for p in POINTS:
        scale = math.prod(Fraction(p - q) for q in POINTS if q != p)
        rows.append(tuple(float(Fraction(p) ** k / scale) for k in range(kernel)))
    rows.append(tuple(float(k == kernel - 1) for k in range(kernel)))
    return tuple(rows)


@functools.cache
def output_matrix(kernel: int) -> tuple[tuple[float, ...], ...]:
    """A^T (m x 6): row ``i`` evaluates ``p^i`` at the points, infinity in the last row."""
    m = tile_side(kernel)
    return tuple(tuple([float(p**i) for p in POINTS] + [float(i == m - 1)]) for i in range(m))


#: Where F(4x4, 3x3) beat oneDNN's direct fp32 conv (forward + input gradient, one core with
#: oneDNN, ATen and MKL capped at AVX2, docs/benchmarks.md): at least 64 channels in and out
#: (32 -> 64: 0.63-1.07x; 64 -> 128 at 112 px 1.20x, 512 -> 512 at 28 px 2.24x) on maps of 13
#: to 112 px (64 -> 64 at 224 px 0.92x: the tiles' memory traffic outweighs the arithmetic
#: saved; 512 -> 512 at 7 px 0.76x: the padded tiles waste a third and the products are tiny).
MIN_CHANNELS = 64
MAP_SIDES = (13, 112)


def _kron(transform: tuple[tuple[float, ...], ...], like: Tensor) -> Tensor:
    """``T (x) T``: the 2-D transform ``T X T^T`` of every tile as one product with the
    tile's 36 values stacked (one wide matrix product per conv instead of ~100 small
    elementwise passes: VGG16's forward + input gradient 0.36 -> 0.29 s per image with the
    products on AVX-512)."""
    t = torch.tensor(transform, dtype=like.dtype, device=like.device)
    return torch.kron(t, t)


def filter_transform(weight: Tensor) -> Tensor:
    """``G w G^T`` of a ``[C_out, C_in, r, r]`` kernel (r = 3 or 5) as ``[36, C_in, C_out]``,
    in the weight's dtype: the right-hand sides of the 36 products.

    One product of ``G (x) G`` with the kernel's r*r taps stacked first, which leaves the result
    row-major (bmm would copy one that is not on every call): about 26 ms for one of VGG16's
    512x512 kernels on one core, where one tiny 6x3 product per channel pair took 100 ms.
    """
    k, c, r = weight.shape[:3]
    taps = weight.detach().permute(2, 3, 1, 0).reshape(r * r, c * k)
    return torch.mm(_kron(filter_matrix(r), weight), taps).view(SPAN * SPAN, c, k)


def _input_tiles(x: Tensor, th: int, tw: int, tile: int) -> Tensor:
    """``B^T d B`` of every 6x6 tile (``tile`` apart) of the zero-padded input:
    ``[36, N * th * tw, C]``."""
    n, c, h, w = x.shape
    pad = (SPAN - tile) // 2
    padded = x.new_zeros(n, th * tile + 2 * pad, tw * tile + 2 * pad, c)
    padded[:, pad : h + pad, pad : w + pad].copy_(x.permute(0, 2, 3, 1))
    tiles = padded.unfold(1, SPAN, tile).unfold(2, SPAN, tile)  # [N, th, tw, C, 6, 6]
    tiles = tiles.permute(4, 5, 0, 1, 2, 3).reshape(SPAN * SPAN, -1)
    return torch.mm(_kron(_BT, x), tiles).view(SPAN * SPAN, n * th * tw, c)


def _output_tiles(m: Tensor, shape: tuple[int, ...], kernel: int) -> Tensor:
    """``A^T M A`` of the products ``[36, N * th * tw, K]`` (``shape``: N, th, tw, h, w): the
    ``[N, K, h, w]`` output in channels-last memory (a tensor of its own, not a view: autograd
    lets a ReLU work on it in place)."""
    n, th, tw, h, w = shape
    k, tile = m.shape[-1], tile_side(kernel)
    y = torch.mm(_kron(output_matrix(kernel), m), m.view(SPAN * SPAN, -1))
    y = y.view(tile, tile, n, th, tw, k)
    full = torch.empty(
        n, k, th * tile, tw * tile, dtype=m.dtype, device=m.device,
        memory_format=torch.channels_last,
    )  # fmt: skip
    full.permute(0, 2, 3, 1).view(n, th, tile, tw, tile, k).copy_(y.permute(2, 3, 0, 4, 1, 5))
    if th * tile == h and tw * tile == w:
        return full
    return full[:, :, :h, :w].contiguous(memory_format=torch.channels_last)


def winograd_conv(x: Tensor, u: Tensor, bias: Tensor | None = None, kernel: int = 3) -> Tensor:
    """A ``kernel`` x ``kernel`` conv (3 or 5), stride 1, padding ``kernel // 2``, of ``x``
    ``[N, C, H, W]`` with the transformed kernel ``u`` (:func:`filter_transform`); the result
    is channels-last."""
    n, _, h, w = x.shape
    tile = tile_side(kernel)
    th, tw = -(-h // tile), -(-w // tile)
    products = torch.bmm(_input_tiles(x, th, tw, tile), u)
    y = _output_tiles(products, (n, th, tw, h, w), kernel)
    return y.add_(bias.view(1, -1, 1, 1)) if bias is not None else y


class _WinogradFn(torch.autograd.Function):
    """Forward and input gradient of a frozen 3x3 (or 5x5) conv, both by :func:`winograd_conv`."""

    @staticmethod
    def forward(x: Tensor, u: Tensor, u_grad: Tensor, bias: Tensor | None, kernel: int) -> Tensor:
        return winograd_conv(x, u, bias, kernel)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # noqa: ANN001 - autograd's signature
        ctx.u_grad, ctx.kernel = inputs[2], inputs[4]

    @staticmethod
    def backward(ctx, grad: Tensor):  # noqa: ANN001, ANN205 - autograd's signature
        return winograd_conv(grad, ctx.u_grad, None, ctx.kernel), None, None, None, None


class WinogradConv(nn.Module):
    """A frozen stride-1 3x3 (padding 1) or 5x5 (padding 2) ``Conv2d`` computed by Winograd's
    F(4x4, 3x3) or F(2x2, 5x5) on maps of :data:`MAP_SIDES` (the direct conv elsewhere): the
    same outputs up to rounding and the same input gradient; no weight gradient."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        w = conv.weight.detach()
        self.register_buffer("weight", w)
        self.register_buffer("u", filter_transform(w))
        self.register_buffer("u_grad", filter_transform(w.transpose(0, 1).flip(2, 3)))
        bias = conv.bias.detach() if conv.bias is not None else None
        self.register_buffer("bias", bias)
        self.kernel = int(conv.kernel_size[0])

    def forward(self, x: Tensor) -> Tensor:
        low, high = MAP_SIDES
        if not (low <= min(x.shape[-2:]) and max(x.shape[-2:]) <= high):
            return F.conv2d(x, self.weight, self.bias, padding=self.kernel // 2)
        return self.by_winograd(x)

    def by_winograd(self, x: Tensor) -> Tensor:
        """The Winograd conv whatever the map size (tests and benchmarks compare it there)."""
        return _WinogradFn.apply(x, self.u, self.u_grad, self.bias, self.kernel)


def pays(conv: nn.Module) -> bool:
    """A plain fp32 3x3 conv, stride 1, padding 1, frozen, with enough input channels that
    Winograd beats the direct kernel (:data:`MIN_CHANNELS`; the map size is checked per call,
    :class:`WinogradConv`).

    Not 5x5: F(2x2, 5x5) on AlexNet's only one (64 -> 192 at 27 px) was 1.05-1.30x the direct
    conv for one image (three runs) and 0.63x for eight, capped at AVX2 (its 2x2 output tiles make the
    transforms' traffic 9x the output's; docs/benchmarks.md), and no other model here has a
    5x5 conv."""
    return (
        type(conv) is nn.Conv2d and conv.kernel_size == (3, 3) and conv.stride == (1, 1)
        and conv.padding == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1
        and conv.padding_mode == "zeros" and conv.weight.dtype == torch.float32
        and not conv.weight.requires_grad
        and min(conv.in_channels, conv.out_channels) >= MIN_CHANNELS
    )  # fmt: skip
