"""The ``pretrain`` stage's settings."""

from __future__ import annotations

from dataclasses import dataclass

from isic_tracking.config import setting


@dataclass
class PretrainConfig:
    """An offline base: ``arch`` trained on ``n_classes`` fractal categories (no download).

    The demo's defaults take about a minute on 2 CPU cores for ``smallcnn`` at 64 px and reach
    about 0.95 validation accuracy on the fractal categories."""

    arch: str = setting("smallcnn", "architecture to pre-train (any `train` accepts)")
    n_classes: int = setting(32, "fractal categories (one iterated function system each)")
    per_class: int = setting(50, "images per category")
    image_size: int = setting(64, "image size (use the size the model is fine-tuned at)")
    epochs: int = setting(6, "epochs (AdamW, one-cycle schedule)")
    batch_size: int = setting(64, "batch size")
    lr: float = setting(3e-3, "peak learning rate")
    val_fraction: float = setting(0.15, "share of every category held out for validation")
    dropout: float = setting(0.1, "dropout before the head")
    seed: int = setting(0, "seed of the categories, the images, the init and the shuffling")
    device: str = setting("auto", "auto | cpu | cuda | cuda:N | mps", result=False)
    register_as: str | None = setting(None, "registered model name (default isic-pretrain-<arch>)")
    export: str | None = setting(
        None,
        "also write the weights here as a state dict in the architecture's own format "
        "(torchvision / timm key names, .pth or .safetensors), for `train -P init=<file>`",
    )
