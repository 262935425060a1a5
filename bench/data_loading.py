"""Data loading: the thesis's per-epoch full-size decode vs. training from the resized cache.

(a) thesis: every epoch, ``torchvision.io.read_image`` decodes the full-size JPEG (ISIC 2020:
    mostly 6000x4000), ``ToPILImage`` -> ``Resize(224)`` -> Perez augmentation on PIL.
(b) ours: ``build_cache`` decodes each image once (PIL draft, 1/8 scale) to a 256 px JPEG;
    every epoch then reads the small file through ``make_loader`` with the full Perez
    augmentation of ``build_transforms`` (uint8 tensors, symmetric affine, fast hue).

Both run in one process on one thread (images/s per core), interleaved, medians over repeats.
Full-size test images are generated (smooth skin-like background, lesion, hairs, sensor
noise) in a temporary folder.

    python bench/data_loading.py                # defaults: 3 images 6000x4000, 5 repeats
    python bench/data_loading.py --n-images 6 --repeats 7
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageDraw, ImageFilter
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T
from torchvision.io import read_image

from isic_tracking.data.cache import build_cache
from isic_tracking.data.dataset import make_loader
from isic_tracking.data.manifest import normalize_manifest
from isic_tracking.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms


def dermoscopy_like(width: int, height: int, seed: int) -> Image.Image:
    """A full-size JPEG-worthy image: skin gradient, irregular lesion, hairs, sensor noise."""
    rng = np.random.default_rng(seed)
    low = rng.normal(0, 1, (height // 200 + 2, width // 200 + 2, 3)).astype(np.float32)
    skin = np.array([205, 160, 140], np.float32) + 12 * low
    img = Image.fromarray(skin.clip(0, 255).astype(np.uint8)).resize((width, height), Image.BICUBIC)
    draw = ImageDraw.Draw(img)
    cx, cy, r = width / 2, height / 2, min(width, height) / 4
    angles = np.linspace(0, 2 * np.pi, 60, endpoint=False)
    radii = r * (1 + 0.25 * rng.standard_normal(60).cumsum() / 8)
    draw.polygon(
        [(cx + q * np.cos(a), cy + q * np.sin(a)) for a, q in zip(angles, radii)],
        fill=(110, 70, 55),
    )
    for _ in range(25):  # hairs
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        x1, y1 = x0 + rng.normal(0, width / 4), y0 + rng.normal(0, height / 4)
        draw.line([(x0, y0), (x1, y1)], fill=(40, 30, 25), width=int(rng.integers(4, 10)))
    img = img.filter(ImageFilter.GaussianBlur(6))
    arr = np.asarray(img).astype(np.int16)
    arr += rng.integers(-5, 6, (height, width, 1), dtype=np.int16)  # sensor noise
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


class ThesisDataset(Dataset):
    """The thesis's loading: full-size decode, PIL round trip and resize every epoch."""

    def __init__(self, paths: list[str], image_size: int) -> None:
        self.paths = paths
        self.transform = T.Compose(
            [
                T.ToPILImage(),
                T.Resize(image_size),
                T.RandomResizedCrop(image_size, scale=(0.4, 1.0), ratio=(3 / 4, 4 / 3)),
                T.RandomAffine(90, shear=20, scale=(0.8, 1.2)),
                T.RandomHorizontalFlip(),
                T.RandomVerticalFlip(),
                T.ColorJitter(0.3, 0.3, 0.3, 0.1),
                T.ToTensor(),
                T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
            ]
        )

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(read_image(self.paths[i])), 0


def images_per_second(loader: DataLoader) -> tuple[float, float]:
    """(images per CPU-second of this process, images per wall-clock second).

    With one thread, CPU time is time on one core, and unlike wall time it does not grow when
    other processes compete for the cores (shared CI machines).
    """
    c0, t0 = time.process_time(), time.perf_counter()
    n = sum(len(batch[0]) for batch in loader)
    return n / (time.process_time() - c0), n / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n-images", type=int, default=3, help="full-size images generated")
    p.add_argument("--width", type=int, default=6000)
    p.add_argument("--height", type=int, default=4000)
    p.add_argument("--quality", type=int, default=95, help="JPEG quality of the full-size files")
    p.add_argument("--repeats", type=int, default=5, help="interleaved repeats (median quoted)")
    p.add_argument("--cache-size", type=int, default=256, help="short side of the cache")
    p.add_argument("--image-size", type=int, default=224, help="model input size")
    p.add_argument("--cache-epoch", type=int, default=256, help="images per cached pass")
    p.add_argument("--batch-size", type=int, default=32)
    args = p.parse_args()
    torch.set_num_threads(1)  # per core
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "full"
        src.mkdir()
        paths = []
        for i in range(args.n_images):
            path = src / f"ISIC_{i:07d}.jpg"
            dermoscopy_like(args.width, args.height, seed=i).save(path, quality=args.quality)
            paths.append(str(path))
        mb = np.mean([Path(q).stat().st_size for q in paths]) / 1e6
        df = normalize_manifest(
            pd.DataFrame(
                {
                    "image_id": [Path(q).stem for q in paths],
                    "path": paths,
                    "label": 0,
                    "label_name": "benign",
                    "source": "bench",
                }
            )
        )
        c0 = time.process_time()
        cached = build_cache(
            df, Path(tmp) / "cache", image_size=args.cache_size, workers=1
        ).manifest
        cache_s = (time.process_time() - c0) / len(df)  # CPU s per image, in-process
        reps = -(-args.cache_epoch // len(cached))
        epoch_df = pd.concat([cached] * reps, ignore_index=True).iloc[: args.cache_epoch]

        thesis = DataLoader(ThesisDataset(paths, args.image_size), batch_size=args.batch_size)
        ours = make_loader(
            epoch_df, build_transforms(args.image_size, train=True), args.batch_size, shuffle=True
        )
        images_per_second(ours)  # warm-up: page cache, first-call overheads
        rates: dict[str, list[tuple[float, float]]] = {"thesis": [], "cache": []}
        for _ in range(args.repeats):
            rates["thesis"].append(images_per_second(thesis))
            rates["cache"].append(images_per_second(ours))

    def med(key: str, i: int) -> float:
        return statistics.median(r[i] for r in rates[key])

    a, b = med("thesis", 0), med("cache", 0)
    aw, bw = med("thesis", 1), med("cache", 1)
    print(
        f"\n{args.n_images} JPEGs {args.width}x{args.height} (mean {mb:.1f} MB, q={args.quality}), "
        f"{args.cache_epoch} cached images per pass, batch {args.batch_size}; 1 thread; "
        f"median of {args.repeats} interleaved repeats; torch {torch.__version__}\n"
    )
    print("| path | images/s per core (CPU time) | ms CPU / image | images/s (wall) |")
    print("|---|---:|---:|---:|")
    print(
        f"| (a) thesis: read_image -> ToPILImage -> Resize({args.image_size}) + Perez (PIL) "
        f"| {a:.2f} | {1000 / a:.1f} | {aw:.2f} |"
    )
    print(
        f"| (b) cache {args.cache_size} px -> make_loader + Perez (build_transforms) "
        f"| {b:.1f} | {1000 / b:.2f} | {bw:.1f} |"
    )
    print(
        f"\nratio (b)/(a): **{b / a:.0f}x** per core (wall clock: {bw / aw:.0f}x); one-time "
        f"cache build: {1000 * cache_s:.0f} ms CPU per image, i.e. {cache_s * a:.2f} of one "
        "thesis epoch's loading"
    )


if __name__ == "__main__":
    main()
