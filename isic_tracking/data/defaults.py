"""The bundled synthetic data set as every stage's default input, built once on first use."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from isic_tracking.data.manifest import read_manifest, task_classes
from isic_tracking.errors import IsicInputError

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


def load_task_manifest(manifest: str | None, task: str) -> tuple[pd.DataFrame, str]:
    """Read ``manifest`` (default: the synthetic data) and check its labels fit ``task``."""
    path = manifest or str(default_manifest(task))
    df = read_manifest(path)
    classes = task_classes(task)
    names = set(df["label_name"])
    if not names <= set(classes):
        raise IsicInputError(
            f"{path}: label names {sorted(names - set(classes))} are not classes of task "
            f"{task!r} ({list(classes)}); pick the other task or re-run prepare"
        )
    return df, path
