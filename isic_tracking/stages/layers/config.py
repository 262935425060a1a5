"""The ``layers`` stage's settings (a config dataclass like the other analysis stages')."""

from __future__ import annotations

from dataclasses import dataclass

from isic_tracking.config import AnalysisSettings, setting


@dataclass
class LayersConfig(AnalysisSettings):
    """Everything ``layers`` needs: the model (its base is its own recorded init), the images,
    the layers and the measures' settings."""

    manifest: str | None = setting(None, "default: the training run's manifest")
    split: str = setting(
        "val0", "valK (validation images of fold K of the training run), train, test or all"
    )
    layers: str = setting("all", "all (every conv layer), first, last or names, shallow to deep")
    monitor: str | None = setting(
        None, "metric of the reset criticality (default: the training run's monitor)"
    )
    positions: int = setting(
        64, "spatial positions per image in the CKA (sampled under seed, the same in both models)"
    )
    top_k: int = setting(5, "filters per layer for the top-k overlap and the before/after pictures")
    n_boot: int = setting(500, "bootstrap replicates of every interval")
    fv_steps: int = setting(32, "steps of the before/after pictures of the top filters (0: none)")
    image_size: int = setting(0, "input size (0: the model's config)")
    batch_size: int = setting(
        0, "images per forward pass (0: up to 64, fewer where the model's feature maps are large)"
    )
    device: str = setting("auto", "auto | cpu | cuda | cuda:N | mps", result=False)
    seed: int = setting(0, "seed of the probes' folds, re-randomization, bootstrap and pictures")
