"""The bundled synthetic data set as every stage's default input, built once on first use."""

from __future__ import annotations

import os
from pathlib import Path

from isic_tracking.data.manifest import task_classes

#: Synthetic demo defaults: small enough for 2 CPU cores in minutes.
SYNTH_N_IMAGES = 240
SYNTH_IMAGE_SIZE = 128
CACHE_SIZE = 128


def data_dir() -> Path:
    """Where default data lives: ``$ISIC_DATA_DIR`` or ``./data``."""
    return Path(os.environ.get("ISIC_DATA_DIR", "data"))


def default_manifest(task: str = "binary", seed: int = 0) -> Path:
    """Manifest of the synthetic data for ``task``, generating and caching it when missing."""
    from isic_tracking.data.prepare import prepare_dataset
    from isic_tracking.data.synthetic import make_synthetic

    task_classes(task)
    raw = data_dir() / "synthetic" / "raw"
    out = data_dir() / "synthetic" / f"prepared-{task}"
    manifest = out / "manifest.csv"
    if manifest.is_file():
        return manifest
    if not (raw / "isic2020" / "train.csv").is_file():
        make_synthetic(raw, n_images=SYNTH_N_IMAGES, seed=seed, image_size=SYNTH_IMAGE_SIZE)
    return prepare_dataset("synthetic", raw, out, task=task, image_size=CACHE_SIZE).manifest_path
