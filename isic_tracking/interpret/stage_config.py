"""Configs of the analysis stages (``filters``, ``visualize``, ``sanity``), like ``TrainConfig``:
defaults in code, an optional YAML file, CLI overrides (:func:`isic_tracking.config.add_config_args`
makes one ``--<field>`` option per field, the names of the MLproject parameters); logged as params.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from isic_tracking.config import _f, check_choices
from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.choices import (
    AMP_CHOICES,
    COLOUR_CHOICES,
    COLOURS_HELP,
    ENGINES,
    METRICS,
    POOLINGS,
    PRESET_NAMES,
)

MODEL_URI_HELP = (
    "models:/name@alias, models:/name/version, runs:/<id>/checkpoint or pretrained:<arch>"
)
ALLOW_RANDOM_HELP = (
    "pretrained:<arch> URIs only: random init when no weights are cached (demos, tests)"
)
DEFAULT_MODEL_URI = "models:/isic-binary-smallcnn@champion"  # what the demo registers


def _choice(default: str, choices: Sequence[str], help: str) -> Any:
    """A field whose value must be one of ``choices`` (argparse checks the CLI, the config
    checks YAML values)."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": list(choices)})


@dataclass
class FiltersConfig:
    """Everything the ``filters`` stage needs (thesis §5.4.1, §5.5)."""

    model_uri: str = _f(DEFAULT_MODEL_URI, MODEL_URI_HELP)
    manifest: str | None = _f(None, "default: the training run's manifest")
    split: str = _f(
        "val0", "valK (validation images of fold K of the training run), train, test or all"
    )
    layers: str = _f("last", "last, first, all (every conv) or names")
    quantile: float = _f(0.95, "per-filter threshold quantile")
    top_n: int = _f(5, "top filters per class and group")
    groups: str = _f(
        "artifact",
        "image groups beside the classes: a manifest column (default `artifact`, skipped "
        "when absent), `zscore` (the z-score artifact detector), a comma list, or `none`",
    )
    exemplars: int = _f(8, "exemplars per top filter (0: off)")
    exemplar_layers: str = _f("last", "layers with exemplar grids: last or all")
    gradcam: bool = _f(
        True, "beside each class's exemplar grid, the same images with Grad-CAM towards the class"
    )
    attribution: str = _choice(
        "conductance",
        ["conductance", "grad_x_activation", "none"],
        "rank the filters by attribution towards the class logit too (next to the activation "
        "frequency: tables/attribution_*.csv, attribution_jaccard/<class>); none: off",
    )
    attribution_images: int = _f(32, "images per class the attribution ranking averages (0: all)")
    attribution_steps: int = _f(16, "integration steps of conductance")
    image_size: int = _f(0, "input size (0: the model's config)")
    zscore_threshold: float = _f(2.0, "pixel |z| of an outlier")
    shortcut_artifact: str = _f(
        "none",
        "a planted shortcut's artifact (synth --shortcut_artifact): check that its group's top "
        "filter in the last layer reaches shortcut_min_auc (metric shortcut_auc, tag "
        "isic.shortcut_check)",
    )
    shortcut_min_auc: float = _f(0.9, "ROC AUC the shortcut artifact's top filter must reach")
    ablate_k: int = _f(
        2,
        "top filters of each class and artifact removed (zeroed / set to their mean) to see "
        "whether they carry the class's score, against as many random live filters "
        "(0: no ablation; at most top_n)",
    )
    ablate_draws: int = _f(20, "random filter sets of the ablation baseline (its 95th percentile)")
    dissect: bool = _f(
        True,
        "Network Dissection (Bau et al. 2017) of the layers' units against the concept masks "
        "of the images (manifest column `mask`, written by `synth`; skipped without)",
    )
    dissect_quantile: float = _f(0.995, "a unit fires above this quantile of its activations")
    dissect_min_iou: float = _f(0.04, "IoU from which a unit is labelled with its best concept")
    batch_size: int = _f(32, "images per forward pass")
    workers: int = _f(0, "DataLoader worker processes")
    device: str = _f("auto", "auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, ...")
    seed: int = _f(0, "random seed (image choice, initial images, random ablation sets)")
    allow_random: bool = _f(False, ALLOW_RANDOM_HELP)

    def __post_init__(self) -> None:
        check_choices(self)
        if self.attribution_images < 0 or self.attribution_steps < 1:
            raise IsicInputError(
                f"attribution_images={self.attribution_images} (>= 0) and attribution_steps="
                f"{self.attribution_steps} (>= 1)"
            )
        if not 0 <= self.ablate_k <= self.top_n:
            raise IsicInputError(
                f"ablate_k={self.ablate_k}: between 0 (off) and top_n={self.top_n}"
            )
        if self.ablate_k and self.ablate_draws < 1:
            raise IsicInputError(f"ablate_draws={self.ablate_draws}: at least 1 random set")
        if not 0.0 < self.dissect_quantile < 1.0:
            raise IsicInputError(
                f"dissect_quantile={self.dissect_quantile}: a level in (0, 1), e.g. 0.995"
            )
        if not 0.0 <= self.dissect_min_iou <= 1.0:
            raise IsicInputError(f"dissect_min_iou={self.dissect_min_iou}: an IoU in [0, 1]")


@dataclass
class VisualizeConfig:
    """Everything the ``visualize`` stage needs (thesis §4.4, §5.4.1)."""

    model_uri: str = _f(DEFAULT_MODEL_URI, MODEL_URI_HELP)
    compare_pretrained: bool = _f(
        False,
        "also render the base the model was fine-tuned from (its recorded init: ImageNet "
        "file, pretrain model or its own random init) with the same channels",
    )
    layers: str = _f("first,last", "first, last, all or layer names")
    channels: str = _f(
        "top_n", "top_n (most activated filters), all, classes (class logits) or indices '3,17,42'"
    )
    top_n: int = _f(5, "filters per layer for top_n")
    filters_run: str | None = _f(None, "a filters run: its top filters")
    steps: int = _f(200, "optimization steps per visualization")
    image_size: int = _f(0, "render size (0: the model's input size)")
    regularization: str = _f(
        "tuned",
        f"preset(s), comma-separated: {', '.join(PRESET_NAMES)} (tuned: the thesis's priors "
        "at lr 0.2; thesis: its Table 3 as is)",
    )
    engine: str = _f("isic", f"engine(s), comma-separated: {', '.join(ENGINES)}")
    colours: str = _choice("data", COLOUR_CHOICES, COLOURS_HELP)
    amp: str = _choice(
        "auto",
        list(AMP_CHOICES),
        "bfloat16 autocast while rendering, as train's amp: auto (where the device runs bf16 "
        "natively), bf16, or none (fp32 throughout, e.g. to compare the pictures; on/off: the "
        "older spellings); param render.amp says which ran",
    )
    seed: int = _f(0, "random seed (image choice, initial images)")
    batch_size: int = _f(16, "images rendered per forward")
    device: str = _f("auto", "auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, ...")
    manifest: str | None = _f(
        None, "images for top_n without filters_run (default: the training run's manifest)"
    )
    n_images: int = _f(32, "images of the top_n pass (no filters_run)")
    class_logits: bool = _f(
        True,
        "also render the class logits of a trained model (with top_n, all or indices) and "
        "check their colours against each class's lesion pixels in split",
    )
    split: str = _f(
        "val0",
        "natural images each picture is compared with (fv_over_natural_max): valK (validation "
        "images of fold K of the training run), train, test, all, or none",
    )
    allow_random: bool = _f(False, ALLOW_RANDOM_HELP)


@dataclass
class SanityConfig:
    """Everything the ``sanity`` stage needs (thesis §4.4.4, §5.4.2)."""

    model_uri: str = _f(DEFAULT_MODEL_URI, MODEL_URI_HELP)
    fv_run: str | None = _f(None, "id of a `visualize` run; empty: render the visualizations here")
    manifest: str | None = _f(None, "default: the training run's manifest")
    split: str = _f(
        "val0",
        "natural images: valK (validation rows of fold K of the training run), train, "
        "test or all (the manifest's split column)",
    )
    layers: str = _f(
        "all", "all (every conv layer), named (every named leaf layer), first, last or names"
    )
    metric: str = _choice("spearman", METRICS, "similarity of activation vectors")
    n_images: int = _f(20, "natural images per class")
    fit_n_images: bool = _f(
        False, "a split with fewer images of a class: use what it holds (logged) instead of failing"
    )
    reference_model_uri: str | None = _f(
        None, "another model (fold or arch) for transferability of class-logit visualizations"
    )
    steps: int = _f(48, "render steps (no fv_run)")
    image_size: int = _f(
        0,
        "size of the compared pictures and noise (0: the model's input size; with fv_run, "
        "the run's picture size)",
    )
    top_k: int = _f(5, "visualizations per class")
    fv_layers: str = _f(
        "first,last",
        "pictured layers whose top filters each get a verdict against noise at their own layer "
        "(tables/verdict_per_layer.csv, metrics layer_fv_*/<layer>): first, last, all, names or "
        "none; with fv_run, those the run has channel pictures of",
    )
    regularization: str = _choice(
        "tuned",
        [k for k in PRESET_NAMES if k != "none"],
        "featvis preset of the rendered visualizations (tuned, as visualize's default); their "
        "twins use `none`",
    )
    colours: str = _choice("data", COLOUR_CHOICES, COLOURS_HELP)
    pooling: str = _choice("mean", POOLINGS, "how an activation map becomes one vector")
    standardize: bool = _f(
        False, "z-score each unit over the natural images before comparing (see sanity.py)"
    )
    n_boot: int = _f(2000, "bootstrap replicates of the interval of fv - noise per layer")
    interval: float = _f(0.95, "level of that interval (verdict: closer / not closer / undecided)")
    randomize: str = _f(
        "auto", "cascading randomization cut points: auto (head + 3 conv layers), none, or names"
    )
    batch_size: int = _f(32, "images per forward pass")
    device: str = _f("auto", "auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, ...")
    seed: int = _f(0, "random seed (image choice, initial images)")
    allow_random: bool = _f(False, ALLOW_RANDOM_HELP)

    def __post_init__(self) -> None:
        check_choices(self)
        if self.n_boot < 1:
            raise IsicInputError(f"n_boot={self.n_boot}: at least 1 bootstrap replicate")
        if not 0.0 < self.interval < 1.0:
            raise IsicInputError(f"interval={self.interval}: a level in (0, 1), e.g. 0.95")
