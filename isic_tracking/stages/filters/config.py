"""The ``filters`` stage's settings: defaults in code, an optional YAML file, CLI overrides
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


@dataclass
class FiltersConfig(AnalysisSettings):
    """Everything the ``filters`` stage needs (thesis §5.4.1, §5.5)."""

    manifest: str | None = setting(None, "default: the training run's manifest")
    split: str = setting(
        "val0", "valK (validation images of fold K of the training run), train, test or all"
    )
    layers: str = setting("last", "last, first, all (every conv) or names")
    quantile: float = setting(0.95, "per-filter threshold quantile")
    top_n: int = setting(5, "top filters per class and group")
    groups: str = setting(
        "artifact",
        "image groups beside the classes: a manifest column (default `artifact`, skipped "
        "when absent), `zscore` (the z-score artifact detector), a comma list, or `none`",
    )
    exemplars: int = setting(8, "exemplars per top filter (0: off)")
    exemplar_layers: str = setting("last", "layers with exemplar grids: last or all")
    gradcam: bool = setting(
        True, "beside each class's exemplar grid, the same images with Grad-CAM towards the class"
    )
    attribution: str = setting(
        "conductance",
        "rank the filters by attribution towards the class logit too (next to the activation "
        "frequency: tables/attribution_*.csv, attribution_jaccard/<class>); none: off",
        choices=["conductance", "grad_x_activation", "none"],
    )
    attribution_images: int = setting(
        32, "images per class the attribution ranking averages (0: all)"
    )
    attribution_steps: int = setting(16, "integration steps of conductance")
    image_size: int = setting(0, "input size (0: the model's config)")
    zscore_threshold: float = setting(2.0, "pixel |z| of an outlier")
    shortcut_artifact: str = setting(
        "none",
        "a planted shortcut's artifact (synth --shortcut_artifact): check that its group's top "
        "filter in the last layer reaches shortcut_min_auc (metric shortcut_auc, tag "
        "isic.shortcut_check)",
    )
    shortcut_min_auc: float = setting(0.9, "ROC AUC the shortcut artifact's top filter must reach")
    ablate_k: int = setting(
        2,
        "top filters of each class and artifact removed (zeroed / set to their mean) to see "
        "whether they carry the class's score, against as many random live filters "
        "(0: no ablation; at most top_n)",
    )
    ablate_draws: int = setting(
        20, "random filter sets of the ablation baseline (its 95th percentile)"
    )
    ablate_layers: str = setting(
        "last",
        "ranked layers whose top filters are ablated: last, all or comma-separated names; "
        "each costs 1 + 2 x (targets + ablate_draws) forwards of the whole model per image "
        "(ResNet50 with layers=all: 53 layers, ~5,600 forwards per image)",
    )
    dissect: bool = setting(
        True,
        "Network Dissection (Bau et al. 2017) of the layers' units against the concept masks "
        "of the images (manifest column `mask`, written by `synth`; skipped without)",
    )
    dissect_quantile: float = setting(0.995, "a unit fires above this quantile of its activations")
    dissect_min_iou: float = setting(
        0.04, "IoU from which a unit is labelled with its best concept"
    )
    batch_size: int = setting(32, "images per forward pass")
    workers: int = setting(0, "DataLoader worker processes")
    device: str = setting("auto", "auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, ...")
    seed: int = setting(0, "random seed (image choice, initial images, random ablation sets)")
    allow_random: bool = setting(False, ALLOW_RANDOM_HELP)

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
