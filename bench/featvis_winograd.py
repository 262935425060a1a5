"""Winograd's F(4x4, 3x3) and F(2x2, 5x5) against oneDNN's direct conv, per conv shape and for
the model part of a VGG16 and an AlexNet render step.

What the fp32 render's ``winograd`` rewrite (isic_tracking/interpret/featvis/winograd.py)
gains per 3x3 conv: forward + input gradient of one image (weights frozen, channels-last input,
as in a render), direct then Winograd, medians of ``--repeats``, CPU time of this
process on ``--threads`` threads. The shapes are those of VGG16, ResNet50's stride-1 3x3 convs,
AlexNet's 13 px 3x3 convs and its 27 px 5x5 one, and small ones, so the rule (``winograd.pays``,
``MAP_SIDES``) can be read off. Then the model part of a render step (VGG16 to ``features.28``,
AlexNet to ``features.10``; one channel's mean, max-pool before ReLU as the fast path does)
with and without the rewrite, and on AlexNet with its 5x5 conv left direct.

    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 \
        python -m bench.featvis_winograd
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from torch import nn

from bench.featvis_compile import timed
from isic_tracking.interpret.featvis.fastpath import pool_before_relu, winograd_convs
from isic_tracking.interpret.featvis.winograd import MAP_SIDES, WinogradConv, pays
from isic_tracking.models import create_model

#: (C_in, C_out, map side, kernel): VGG16 at 224 px, ResNet50's stride-1 3x3 convs, AlexNet's
#: 3x3 and 5x5 convs, small ones
SHAPES = (
    (3, 64, 224, 3), (16, 64, 112, 3), (32, 64, 224, 3), (32, 64, 112, 3), (64, 64, 224, 3),
    (64, 128, 112, 3), (128, 128, 112, 3), (128, 256, 56, 3), (256, 256, 56, 3),
    (256, 512, 28, 3), (512, 512, 28, 3), (512, 512, 14, 3), (64, 64, 56, 3), (128, 128, 28, 3),
    (256, 256, 14, 3), (512, 512, 7, 3), (192, 384, 13, 3), (384, 256, 13, 3),
    (64, 192, 27, 5), (32, 64, 27, 5), (64, 64, 27, 5), (64, 64, 56, 5), (128, 128, 13, 5),
    (192, 192, 7, 5),
)  # fmt: skip


def _median_cpu(fn: Callable[[], object], repeats: int) -> float:
    """:func:`bench.featvis_compile.timed` after one warm-up call (oneDNN's primitive cache,
    first allocations)."""
    fn()
    return timed(fn, repeats)


def _fwd_grad(
    module: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, upstream: torch.Tensor
) -> Callable[[], None]:
    def run() -> None:
        xi = x.clone().requires_grad_(True)
        module(xi).backward(upstream)

    return run


def per_shape(repeats: int, images: int = 1, kernels: tuple[int, ...] = (3, 5)) -> None:
    print("| kernel | C_in -> C_out | map px | direct ms | Winograd ms | speed-up | the render "
          "uses it |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---|")
    for c_in, c_out, side, k in (shape for shape in SHAPES if shape[3] in kernels):
        conv = nn.Conv2d(c_in, c_out, k, padding=k // 2).requires_grad_(False)
        x = torch.randn(images, c_in, side, side).contiguous(memory_format=torch.channels_last)
        up = torch.randn(images, c_out, side, side).contiguous(memory_format=torch.channels_last)
        direct = _median_cpu(_fwd_grad(conv, x, up), repeats)
        fast = _median_cpu(_fwd_grad(WinogradConv(conv).by_winograd, x, up), repeats)
        used = pays(conv) and MAP_SIDES[0] <= side <= MAP_SIDES[1]
        print(f"| {k}x{k} | {c_in} -> {c_out} | {side} | {direct * 1e3:.1f} | {fast * 1e3:.1f} | "
              f"{direct / fast:.2f}x | {'yes' if used else 'no'} |", flush=True)  # fmt: skip


def model_step(arch: str, upto: int, repeats: int) -> None:
    """The model part of a render step to ``features.<upto>``: direct, then with every conv
    where Winograd pays swapped, alternated twice."""
    torch.manual_seed(0)
    features = create_model(arch, 1000, pretrained=False).features[: upto + 1].eval()
    features.requires_grad_(False)
    x = torch.rand(1, 3, 224, 224).contiguous(memory_format=torch.channels_last)

    def step() -> None:
        xi = x.clone().requires_grad_(True)
        features(xi)[:, 7].mean().backward()

    with pool_before_relu(features):
        rounds = []
        for _ in range(2):  # alternated, so that load changes hit both
            direct = _median_cpu(step, repeats)
            with winograd_convs(features) as n:
                fast = _median_cpu(step, repeats)
            rounds.append((direct, fast))
    for direct, fast in rounds:
        print(f"{arch} to features.{upto}, 1 image, forward + input gradient: direct {direct:.3f} s, "
              f"Winograd ({n} convs swapped) {fast:.3f} s: {direct / fast:.2f}x")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--images", type=int, default=1, help="images per conv call")
    parser.add_argument("--kernels", default="3,5", help="kernel sizes of the per-shape table")
    parser.add_argument("--shapes_only", action="store_true", help="no model-part timings")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"{args.threads} thread(s), medians of {args.repeats}, CPU ms per call of "
          f"{args.images} image(s)\n")  # fmt: skip
    per_shape(args.repeats, args.images, tuple(int(k) for k in args.kernels.split(",")))
    if args.shapes_only:
        return
    print()
    model_step("vgg16", 28, args.repeats)
    model_step("alexnet", 10, args.repeats)


if __name__ == "__main__":
    main()
