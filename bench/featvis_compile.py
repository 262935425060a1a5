"""Does ``torch.compile`` speed up a feature-visualization step on the CPU?

The lever measured on its own: the part of a render step that dominates it on the CPU (the
model's forward to the objective's layer and the input gradient, about 70 % of a step; see
"Feature visualization on a CPU without bfloat16" in docs/benchmarks.md), eager against
``torch.compile`` (inductor, default mode, static shapes), on the same inputs, interleaved,
medians of ``--repeats``. Also the image side of a step (Fourier image, jitter, scale,
normalization) the same way. The compile time of the first call is reported apart.

    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python -m bench.featvis_compile --arch alexnet

Random-init torchvision models, weights frozen, channels-last, fp32, one thread by default.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

if not __package__:  # run as a script: the repository root, so that `isic_tracking` imports
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from isic_tracking.interpret.featvis.param import fourier_image  # noqa: E402
from isic_tracking.interpret.featvis.transforms import thesis_transforms  # noqa: E402

#: the layers of docs/benchmarks.md's table: (arch, layer index in ``features``, batch)
CASES = {"alexnet": (10, 8), "vgg16": (28, 1)}


def prefix(arch: str) -> tuple[nn.Module, int]:
    """``features`` up to and including the table's layer, random init, frozen, eval."""
    import torchvision

    last, batch = CASES[arch]
    model = getattr(torchvision.models, arch)(weights=None).features[: last + 1].eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, batch


def model_step(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Forward to the layer, one channel per image as the objective; returns the input
    gradient."""
    x = x.detach().requires_grad_(True)
    out = model(x)
    value = out[torch.arange(len(out)), torch.arange(len(out)) % out.shape[1]].mean()
    value.backward()
    return x.grad


def image_side(size: int, batch: int) -> Callable[[], torch.Tensor]:
    """The image half of a step: the Fourier image, the thesis's transforms and the gradient
    through them (from a fixed upstream gradient)."""
    params, image_fn = fourier_image(batch, size)
    transforms = thesis_transforms()

    def step() -> torch.Tensor:
        out = transforms(image_fn())
        out.backward(torch.ones_like(out))
        for p in params:
            p.grad = None
        return out

    return step


def timed(fn: Callable[[], object], steps: int) -> float:
    """Median CPU seconds of one call over ``steps`` calls."""
    times = []
    for _ in range(steps):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return statistics.median(times)


def compare(name: str, eager: Callable[[], object], compiled: Callable[[], object], args) -> dict:
    """Compile time of the first compiled call, then eager and compiled interleaved."""
    t0 = time.perf_counter()
    compiled()
    compile_s = time.perf_counter() - t0
    eager()  # warm-up
    e, c = [], []
    for _ in range(args.repeats):
        e.append(timed(eager, args.steps))
        c.append(timed(compiled, args.steps))
    row = {"part": name, "eager_s": statistics.median(e), "compiled_s": statistics.median(c),
           "compile_s": compile_s}  # fmt: skip
    row["speed-up"] = row["eager_s"] / row["compiled_s"] if row["compiled_s"] > 0 else float("nan")
    return row


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", choices=sorted(CASES), default="alexnet")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--steps", type=int, default=5, help="timed calls per repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, batch = prefix(args.arch)
    x = torch.rand(batch, 3, args.size, args.size).contiguous(memory_format=torch.channels_last)
    compiled_model = torch.compile(model)
    side = image_side(args.size, batch)
    rows = [
        compare("model forward + input gradient", lambda: model_step(model, x),
                lambda: model_step(compiled_model, x), args),
        compare("image side (Fourier image, transforms, gradient)", side,
                torch.compile(side), args),
    ]  # fmt: skip
    print(f"{args.arch}, {batch} images at {args.size} px, {args.threads} thread(s), "
          f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}")  # fmt: skip
    print("| part | eager CPU s | compiled CPU s | speed-up | compile s (first call) |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['part']} | {r['eager_s']:.4f} | {r['compiled_s']:.4f} | "
              f"{r['speed-up']:.2f}x | {r['compile_s']:.0f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
