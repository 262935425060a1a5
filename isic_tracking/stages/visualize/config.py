"""The ``visualize`` stage's settings: defaults in code, an optional YAML file, CLI overrides
(:func:`isic_tracking.config.add_config_args` makes one ``--<field>`` per field, the names of
the MLproject parameters); logged as params."""

from __future__ import annotations

from dataclasses import dataclass

from isic_tracking.config import (
    ALLOW_RANDOM_HELP,
    AnalysisSettings,
    setting,
)
from isic_tracking.interpret.choices import (
    AMP_CHOICES,
    COLOUR_CHOICES,
    COLOURS_HELP,
    ENGINES,
    PRESET_NAMES,
)


@dataclass
class VisualizeConfig(AnalysisSettings):
    """Everything the ``visualize`` stage needs (thesis §4.4, §5.4.1)."""

    compare_pretrained: bool = setting(
        False,
        "also render the base the model was fine-tuned from (its recorded init: ImageNet "
        "file, pretrain model or its own random init) with the same channels",
    )
    layers: str = setting("first,last", "first, last, all or layer names")
    channels: str = setting(
        "top_n", "top_n (most activated filters), all, classes (class logits) or indices '3,17,42'"
    )
    top_n: int = setting(5, "filters per layer for top_n")
    filters_run: str | None = setting(None, "a filters run: its top filters")
    steps: int = setting(200, "optimization steps per visualization")
    image_size: int = setting(0, "render size (0: the model's input size)")
    regularization: str = setting(
        "tuned",
        f"preset(s), comma-separated: {', '.join(PRESET_NAMES)} (tuned: the thesis's priors "
        "at lr 0.2; thesis: its Table 3 as is)",
    )
    engine: str = setting("isic", f"engine(s), comma-separated: {', '.join(ENGINES)}")
    colours: str = setting("data", COLOURS_HELP, choices=COLOUR_CHOICES)
    amp: str = setting(
        "auto",
        "bfloat16 autocast while rendering, as train's amp: auto (where the device runs bf16 "
        "natively), bf16, or none (fp32 throughout, e.g. to compare the pictures; on/off: the "
        "older spellings); param render.amp says which ran",
        choices=list(AMP_CHOICES),
    )
    seed: int = setting(0, "random seed (image choice, initial images)")
    batch_size: int = setting(16, "images rendered per forward")
    device: str = setting("auto", "auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, ...")
    manifest: str | None = setting(
        None, "images for top_n without filters_run (default: the training run's manifest)"
    )
    n_images: int = setting(32, "analysed images the top_n ranking samples (no filters_run)")
    class_logits: bool = setting(
        True,
        "also render the class logits of a trained model (with top_n, all or indices) and "
        "check their colours against each class's lesion pixels in split",
    )
    split: str = setting(
        "val0",
        "natural images each picture is compared with (fv_over_natural_max): valK (validation "
        "images of fold K of the training run), train, test, all, or none",
    )
    allow_random: bool = setting(False, ALLOW_RANDOM_HELP)
