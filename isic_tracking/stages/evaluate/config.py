"""The ``evaluate`` stage's settings (a config dataclass like the other analysis stages')."""

from __future__ import annotations

from dataclasses import dataclass

from isic_tracking.config import _f
from isic_tracking.interpret.stage_config import DEFAULT_MODEL_URI, MODEL_URI_HELP


@dataclass
class EvaluateConfig:
    """Everything ``evaluate`` needs: the model, its test images and the bootstrap."""

    model_uri: str = _f(DEFAULT_MODEL_URI, MODEL_URI_HELP)
    manifest: str | None = _f(
        None, "manifest whose split=test rows are the test set (default: the training run's)"
    )
    n_resamples: int = _f(1000, "bootstrap replicates of every interval")
    level: float = _f(0.95, "confidence level of the intervals")
    threshold: float = _f(0.5, "decision threshold on P(malignant) (binary)")
    n_bins: int = _f(10, "bins of the calibration curve")
    image_size: int = _f(0, "input size (0: the model's config)")
    batch_size: int = _f(64, "images per forward pass")
    device: str = _f("auto", "auto | cpu | cuda | cuda:N | mps", result=False)
    seed: int = _f(0, "seed of the bootstrap")
