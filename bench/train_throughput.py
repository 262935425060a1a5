"""Training throughput: tensors already in memory (the ceiling) vs the full input pipeline.

For each architecture and precision, ``train_one_epoch`` (the real training step: forward,
class-weighted loss, backward, Adam) is timed on
  * ceiling:  the same pre-built batches of normalized tensors, already on the device;
  * pipeline: JPEG files at 256 px (short side, 4:3, like the image cache; synthetic lesions
    rendered by :mod:`isic_tracking.data.synthetic`) in a temp dir, read through
    ``make_loader`` (worker processes, libjpeg-turbo decode) with the training augmentation
    of ``build_transforms`` (Perez et al. 2018), then copied to the device.
Precision modes: ``fp32`` and ``amp`` = autocast (bf16 on CPU; ``--gpu-amp`` bf16 or fp16
with a GradScaler on GPU) + channels_last. Each timed segment runs ``--batches`` batches
after ``--warmup`` batches (which also start the loader's workers); with ``--repeats`` > 1
the median of the segments is reported. Models are randomly initialized (nothing is
downloaded). Prints a markdown table with images/s and the pipeline/ceiling ratio.

    python bench/train_throughput.py                                # CPU defaults (small)
    python bench/train_throughput.py --device cuda --batch-size 128 --batches 20 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from isic_tracking.data.dataset import make_loader
from isic_tracking.data.synthetic import render_image
from isic_tracking.data.transforms import build_transforms
from isic_tracking.models import create_model
from isic_tracking.train.engine import make_grad_scaler, train_one_epoch
from isic_tracking.train.losses import make_criterion, make_optimizer
from isic_tracking.utils import resolve_device


def write_jpegs(folder: Path, n: int, short: int, seed: int = 0) -> pd.DataFrame:
    """``n`` synthetic lesion JPEGs (quality 95, like the cache) and their manifest rows."""
    rng = np.random.default_rng(seed)
    width = round(short * 4 / 3)
    rows = []
    for i in range(n):
        label = i % 2
        img = render_image(rng, "MEL" if label else "NV", short, width)
        path = folder / f"img_{i:05d}.jpg"
        Image.fromarray(img).save(path, format="JPEG", quality=95)
        rows.append({"image_id": f"img_{i:05d}", "path": str(path), "label": label})
    return pd.DataFrame(rows)


def time_segments(model, it, crit, opt, device, amp, scaler, cl, args) -> list[float]:
    """Warm up, then time ``repeats`` segments of ``batches`` batches of ``it``; images/s."""
    kw = {"amp": amp, "scaler": scaler, "channels_last": cl}
    train_one_epoch(model, it, crit, opt, device, "binary", max_batches=args.warmup, **kw)
    rates = []
    for _ in range(args.repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        m = train_one_epoch(model, it, crit, opt, device, "binary", max_batches=args.batches, **kw)
        rates.append(m["images_per_s"])
    return rates


def run_one(arch: str, mode: str, df: pd.DataFrame, device: torch.device, args) -> dict:
    torch.manual_seed(0)
    amp = None if mode == "fp32" else ("bf16" if device.type == "cpu" else args.gpu_amp)
    cl = mode != "fp32"
    model = create_model(arch, 1).to(device)
    if cl:
        model = model.to(memory_format=torch.channels_last)
    crit = make_criterion("binary", [1, 1], device=device)
    opt = make_optimizer(model, lr=1e-5)
    scaler = make_grad_scaler(amp, device)
    size, bs = args.image_size, args.batch_size
    n_batches = args.warmup + args.repeats * args.batches

    g = torch.Generator().manual_seed(0)
    x = torch.randn(bs, 3, size, size, generator=g).to(device)
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)
    y = (torch.arange(bs) % 2).to(device)
    memory = [(x, y)] * n_batches  # the same batch, already on the device
    ceiling = time_segments(model, iter(memory), crit, opt, device, amp, scaler, cl, args)

    loader = make_loader(
        df,
        build_transforms(size, train=True),
        batch_size=bs,
        shuffle=True,
        workers=args.workers,
        drop_last=True,
    )
    it = iter(loader)
    pipeline = time_segments(model, it, crit, opt, device, amp, scaler, cl, args)
    del it, loader  # shut the persistent workers down before the next model
    c, p = statistics.median(ceiling), statistics.median(pipeline)
    return {
        "arch": arch,
        "precision": "fp32" if amp is None else f"{amp} + channels_last",
        "ceiling": c,
        "pipeline": p,
        "ratio": p / c,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", default="alexnet,vgg16,resnet50")
    ap.add_argument("--modes", default="fp32,amp", help="comma list of fp32, amp")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--cache-size", type=int, default=256, help="short side of the JPEGs")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--batches", type=int, default=5, help="timed batches per segment")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1, help="timed segments (median reported)")
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    ap.add_argument("--gpu-amp", choices=("bf16", "fp16"), default="bf16")
    args = ap.parse_args(argv)
    os.environ.setdefault("CI", "true")  # no progress bars in the timing
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    n_images = args.batch_size * (args.warmup + args.repeats * args.batches)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        df = write_jpegs(Path(tmp), n_images, args.cache_size)
        print(f"wrote {n_images} JPEGs in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        for arch in args.archs.split(","):
            for mode in args.modes.split(","):
                if mode not in ("fp32", "amp"):
                    ap.error(f"unknown mode {mode!r}; use fp32 and/or amp")
                row = run_one(arch.strip(), mode, df, device, args)
                print(
                    f"{row['arch']} {row['precision']}: {row['ceiling']:.3g} / "
                    f"{row['pipeline']:.3g} img/s",
                    file=sys.stderr,
                )
                rows.append(row)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"\ndevice: {device} ({name}), torch {torch.__version__}, threads "
        f"{torch.get_num_threads()}, image {args.image_size} px from {args.cache_size} px JPEGs, "
        f"batch {args.batch_size}, {args.batches} timed batches x {args.repeats} "
        f"(median) after {args.warmup} warm-up, {args.workers} loader workers\n"
    )
    print("| arch | precision | in memory (img/s) | pipeline (img/s) | pipeline / ceiling |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['arch']} | {r['precision']} | {r['ceiling']:.3g} | {r['pipeline']:.3g} "
            f"| {r['ratio']:.2f} |"
        )


if __name__ == "__main__":
    main()
