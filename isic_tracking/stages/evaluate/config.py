"""The ``evaluate`` stage's settings (a config dataclass like the other analysis stages')."""

from __future__ import annotations

from dataclasses import dataclass

from isic_tracking.config import AnalysisSettings, setting


@dataclass
class EvaluateConfig(AnalysisSettings):
    """Everything ``evaluate`` needs: the model, its test images and the bootstrap."""

    manifest: str | None = setting(
        None, "manifest whose split=test rows are the test set (default: the training run's)"
    )
    n_resamples: int = setting(1000, "bootstrap replicates of every interval")
    level: float = setting(0.95, "confidence level of the intervals")
    threshold: float = setting(0.5, "decision threshold on P(malignant) (binary)")
    n_bins: int = setting(10, "bins of the calibration curve")
    image_size: int = setting(0, "input size (0: the model's config)")
    batch_size: int = setting(64, "images per forward pass")
    device: str = setting("auto", "auto | cpu | cuda | cuda:N | mps", result=False)
    seed: int = setting(0, "seed of the bootstrap")
