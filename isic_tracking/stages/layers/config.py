"""The ``layers`` stage's settings (a config dataclass like the other analysis stages')."""

from __future__ import annotations

from dataclasses import dataclass

from isic_tracking.config import _f
from isic_tracking.interpret.stage_config import DEFAULT_MODEL_URI, MODEL_URI_HELP


@dataclass
class LayersConfig:
    """Everything ``layers`` needs: the model (its base is its own recorded init), the images,
    the layers and the measures' settings."""

    model_uri: str = _f(DEFAULT_MODEL_URI, MODEL_URI_HELP)
    manifest: str | None = _f(None, "default: the training run's manifest")
    split: str = _f(
        "val0", "valK (validation images of fold K of the training run), train, test or all"
    )
    layers: str = _f("all", "all (every conv layer), first, last or names, shallow to deep")
    monitor: str | None = _f(
        None, "metric of the reset criticality (default: the training run's monitor)"
    )
    positions: int = _f(
        64, "spatial positions per image in the CKA (sampled under seed, the same in both models)"
    )
    top_k: int = _f(5, "filters per layer for the top-k overlap and the before/after pictures")
    n_boot: int = _f(500, "bootstrap replicates of every interval")
    fv_steps: int = _f(32, "steps of the before/after pictures of the top filters (0: none)")
    image_size: int = _f(0, "input size (0: the model's config)")
    batch_size: int = _f(64, "images per forward pass")
    device: str = _f("auto", "auto | cpu | cuda | cuda:N | mps", result=False)
    seed: int = _f(0, "seed of the probes' folds, re-randomization, bootstrap and pictures")
