"""Where the time of one training step goes on CPU, and what our training loop costs over a
bare PyTorch loop on the same tensors.

Two measurements, ResNet50 at 224 px by default (the thesis's scale), random init:

* **phases**: ``--steps`` steps, each timed per phase with ``time.perf_counter``: data
  (the next batch from ``make_loader`` over JPEGs at 256 px with the training augmentation,
  as ``train`` reads the image cache), forward (+ loss), backward, optimizer step. Median
  seconds per phase and its share of the step.
* **overhead**: ``train_one_epoch`` (class scores, non-finite check, loss sum, the epoch's
  metrics) against a bare loop (forward, loss, ``zero_grad``, backward, ``step``) over the
  same pre-built batches, same model, criterion and optimizer; the two alternate (ABAB...)
  ``--repeats`` times so a load change hits both alike; the median of the per-pair ratios
  bare time / ours time is reported (1.0: no overhead; the target is >= 0.9).

    python bench/train_step.py                         # ResNet50, 224 px, batch 16, fp32
    python bench/train_step.py --amp bf16 --steps 6     # the CPU's bf16 autocast path
    ISIC_KEEP_FREED_MEMORY=0 python bench/train_step.py # glibc's defaults (see allocator.py)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn

if not __package__:  # run as a script: the repository root, so that `bench.` imports
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.train_throughput import write_jpegs  # noqa: E402
from isic_tracking.allocator import keep_freed_memory  # noqa: E402
from isic_tracking.data.dataset import make_loader  # noqa: E402
from isic_tracking.data.transforms import build_transforms  # noqa: E402
from isic_tracking.models import create_model  # noqa: E402
from isic_tracking.train.engine import train_one_epoch  # noqa: E402
from isic_tracking.train.losses import make_criterion, make_optimizer  # noqa: E402

PHASES = ("data", "forward", "backward", "optimizer")


def _autocast(amp: str | None):
    return torch.autocast("cpu", dtype=torch.bfloat16) if amp == "bf16" else nullcontext()


def phase_times(model: nn.Module, batches, crit, opt, amp: str | None, steps: int) -> dict:
    """Seconds per phase of each of ``steps`` steps (after one warm-up step)."""
    out: dict[str, list[float]] = {p: [] for p in PHASES}
    it = iter(batches)
    model.train()
    for step in range(steps + 1):
        t0 = time.perf_counter()
        x, y = next(it)[:2]
        t1 = time.perf_counter()
        with _autocast(amp):
            loss = crit(model(x).squeeze(1), y.float())
        t2 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t3 = time.perf_counter()
        opt.step()
        t4 = time.perf_counter()
        if step:  # the first step allocates and plans: left out
            for p, s in zip(PHASES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                out[p].append(s)
    return {p: statistics.median(v) for p, v in out.items()}


def bare_epoch(model: nn.Module, batches, crit, opt, amp: str | None) -> None:
    """The loop every PyTorch tutorial writes: nothing but the step."""
    model.train()
    for x, y in batches:
        with _autocast(amp):
            loss = crit(model(x).squeeze(1), y.float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def overhead(model: nn.Module, batches: list, crit, opt, amp: str | None, repeats: int) -> dict:
    """Median of bare / ours over ``repeats`` alternating pairs (after one warm-up of each)."""

    def ours() -> None:
        train_one_epoch(model, batches, crit, opt, "cpu", "binary", amp=amp)

    def bare() -> None:
        bare_epoch(model, batches, crit, opt, amp)

    ours(), bare()
    pairs = [(_timed(bare), _timed(ours)) for _ in range(repeats)]
    return {
        "bare_s": statistics.median(b for b, _ in pairs),
        "ours_s": statistics.median(o for _, o in pairs),
        "ratio": statistics.median(b / o for b, o in pairs),
        "ratios": [round(b / o, 3) for b, o in pairs],
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5, help="timed steps of the phase profile")
    ap.add_argument("--batches", type=int, default=3, help="batches per epoch of the ratio")
    ap.add_argument("--repeats", type=int, default=5, help="alternating pairs of the ratio")
    ap.add_argument("--amp", choices=("none", "bf16"), default="none")
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    args = ap.parse_args(argv)
    os.environ.setdefault("CI", "true")  # no progress bars in the timing
    kept = keep_freed_memory()  # as every entry point does (ISIC_KEEP_FREED_MEMORY=0: not)
    amp = None if args.amp == "none" else args.amp
    torch.manual_seed(0)
    model = create_model(args.arch, 1)
    crit = make_criterion("binary", [1, 1])
    opt = make_optimizer(model, lr=1e-5)
    bs, size = args.batch_size, args.image_size
    with tempfile.TemporaryDirectory() as tmp:
        df = write_jpegs(Path(tmp), bs * (args.steps + 2), 256)
        loader = make_loader(
            df, build_transforms(size, train=True), batch_size=bs, shuffle=True,
            workers=args.workers, drop_last=True,
        )  # fmt: skip
        phases = phase_times(model, loader, crit, opt, amp, args.steps)
        del loader
    g = torch.Generator().manual_seed(0)
    batches = [
        (torch.randn(bs, 3, size, size, generator=g), torch.arange(bs) % 2)
        for _ in range(args.batches)
    ]
    ratio = overhead(model, batches, crit, opt, amp, args.repeats)
    step = sum(phases.values())
    print(
        f"\n{args.arch}, {size} px, batch {bs}, amp {args.amp}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {args.workers} loader workers, freed memory "
        f"{'kept' if kept else 'given back'}; phases: median of {args.steps} steps after 1 "
        "warm-up\n"
    )
    print("| phase | s / step | share |\n|---|---:|---:|")
    for p, s in phases.items():
        print(f"| {p} | {s:.3f} | {s / step:.0%} |")
    print(f"| step | {step:.3f} | {bs / step:.1f} img/s |")
    print(
        f"\ntrain_one_epoch vs bare loop, {args.batches} batches x {args.repeats} alternating "
        f"pairs: bare {ratio['bare_s']:.2f} s, ours {ratio['ours_s']:.2f} s (medians); "
        f"bare / ours = {ratio['ratio']:.3f} (pairs: {ratio['ratios']})"
    )


if __name__ == "__main__":
    main()
