"""The synthetic set the data tests share, and pixel helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from isic_tracking.data.synthetic import make_synthetic

#: ISIC 2020 rows of the shared set (2019 gets as many, 2016 a quarter).
N = 240


def make_shared_set(out: Path) -> Path:
    """The set of the ``synth`` fixture: N images, seed 0, 64 px."""
    make_synthetic(out, n_images=N, seed=0, image_size=64)
    return out


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255


def csv_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.csv"))}
