"""The ``sanity`` stage's settings: defaults in code, an optional YAML file, CLI overrides
(:func:`isic_tracking.config.add_config_args` makes one ``--<field>`` per field, the names of
the MLproject parameters); logged as params."""

from __future__ import annotations

from dataclasses import dataclass

from isic_tracking.config import (
    ALLOW_RANDOM_HELP,
    AnalysisSettings,
    check_choices,
    setting,
)
from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.choices import (
    COLOUR_CHOICES,
    COLOURS_HELP,
    METRICS,
    POOLINGS,
    PRESET_NAMES,
)


@dataclass
class SanityConfig(AnalysisSettings):
    """Everything the ``sanity`` stage needs (thesis §4.4.4, §5.4.2)."""

    fv_run: str | None = setting(
        None, "id of a `visualize` run; empty: render the visualizations here"
    )
    manifest: str | None = setting(None, "default: the training run's manifest")
    split: str = setting(
        "val0",
        "natural images: valK (validation rows of fold K of the training run), train, "
        "test or all (the manifest's split column)",
    )
    layers: str = setting(
        "all", "all (every conv layer), named (every named leaf layer), first, last or names"
    )
    metric: str = setting("spearman", "similarity of activation vectors", choices=METRICS)
    n_images: int = setting(20, "natural images per class")
    fit_n_images: bool = setting(
        False, "a split with fewer images of a class: use what it holds (logged) instead of failing"
    )
    reference_model_uri: str | None = setting(
        None, "another model (fold or arch) for transferability of class-logit visualizations"
    )
    steps: int = setting(48, "render steps (no fv_run)")
    image_size: int = setting(
        0,
        "size of the compared pictures and noise (0: the model's input size; with fv_run, "
        "the run's picture size)",
    )
    top_k: int = setting(5, "visualizations per class")
    fv_layers: str = setting(
        "first,last",
        "pictured layers whose top filters each get a verdict against noise at their own layer "
        "(tables/verdict_per_layer.csv, metrics layer_fv_*/<layer>): first, last, all, names or "
        "none; with fv_run, those the run has channel pictures of",
    )
    regularization: str = setting(
        "tuned",
        "featvis preset of the rendered visualizations (tuned, as visualize's default); their "
        "twins use `none`",
        choices=[k for k in PRESET_NAMES if k != "none"],
    )
    colours: str = setting("data", COLOURS_HELP, choices=COLOUR_CHOICES)
    pooling: str = setting(
        "mean",
        "how an activation map becomes one vector",
        choices=POOLINGS,
    )
    standardize: bool = setting(
        False, "z-score each unit over the natural images before comparing (see sanity.py)"
    )
    n_boot: int = setting(2000, "bootstrap replicates of the interval of fv - noise per layer")
    interval: float = setting(
        0.95, "level of that interval (verdict: closer / not closer / undecided)"
    )
    randomize: str = setting(
        "auto", "cascading randomization cut points: auto (head + 3 conv layers), none, or names"
    )
    batch_size: int = setting(32, "images per forward pass")
    device: str = setting("auto", "auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, ...")
    seed: int = setting(0, "random seed (image choice, initial images)")
    allow_random: bool = setting(False, ALLOW_RANDOM_HELP)

    def __post_init__(self) -> None:
        check_choices(self)
        if self.n_boot < 1:
            raise IsicInputError(f"n_boot={self.n_boot}: at least 1 bootstrap replicate")
        if not 0.0 < self.interval < 1.0:
            raise IsicInputError(f"interval={self.interval}: a level in (0, 1), e.g. 0.95")
