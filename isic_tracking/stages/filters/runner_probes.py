"""The MLflow side of the ``filters`` stage's probes, called by its runner
(``isic_tracking/stages/filters/runner.py``) inside its run: compute (:mod:`.probes`), then log.

Ablation: ``tables/ablation.csv`` (every target, variant, score and image side),
``tables/ablation_verdicts.csv``, ``figures/ablation.png``, the metrics of
:func:`.probes.ablation_metrics` (``ablation_drop_mean_<layer>/<class>``, ...) and a tag per class / artifact (``isic.ablation.<class>``).
Dissection: ``tables/dissection.csv`` (one row per unit), ``figures/dissection.png``, metrics
``dissection_labelled/<layer>`` (units labelled) and ``dissection_best_iou/<concept>``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence

import mlflow
import pandas as pd
import torch
from torch import nn

from isic_tracking.data.synthetic.masks import MASK_CONCEPTS
from isic_tracking.interpret.ablation import ablation_verdicts
from isic_tracking.interpret.activations import LayerStats
from isic_tracking.interpret.names import metric_key, safe_name
from isic_tracking.log import get_logger
from isic_tracking.stages.filters.config import FiltersConfig
from isic_tracking.stages.filters.plots import ablation_figure, dissection_heatmap
from isic_tracking.stages.filters.probes import (
    NO_MASKS,
    AblationSettings,
    ablate_layers,
    ablation_lines,
    ablation_metrics,
    ablation_tags,
    dissect_layers,
    has_masks,
)
from isic_tracking.stages.filters.report import FilterReport
from isic_tracking.tracking.runs import log_dataframe, log_figure, log_metrics

log = get_logger(__name__)


def log_ablation(
    cfg: FiltersConfig,
    model: nn.Module,
    loader: Iterable,
    stats: Mapping[str, LayerStats],
    modules: Mapping[str, str],
    report: FilterReport,
    classes: Sequence[str],
    members: pd.DataFrame | None,
    device: str | torch.device,
) -> pd.DataFrame:
    """Ablate each class's (and artifact's) top ``cfg.ablate_k`` filters and log the result;
    returns the verdicts (empty when off)."""
    if cfg.ablate_k == 0:
        return pd.DataFrame()
    start = time.perf_counter()
    settings = AblationSettings(cfg.ablate_k, cfg.ablate_draws, cfg.seed)
    table = ablate_layers(model, loader, stats, modules, report, classes, members, settings, device)
    verdicts = ablation_verdicts(table)
    log_dataframe(table.drop(columns="random"), "tables/ablation.csv")
    log_dataframe(verdicts, "tables/ablation_verdicts.csv")
    log_figure(ablation_figure(table), "figures/ablation.png")
    log_metrics({**ablation_metrics(verdicts), "ablation_seconds": time.perf_counter() - start})
    mlflow.set_tags(ablation_tags(verdicts))
    for line in ablation_lines(verdicts):
        log.info(line)
    return verdicts


def log_dissection(
    cfg: FiltersConfig,
    model: nn.Module,
    loader: Iterable,
    rows: pd.DataFrame,
    modules: Mapping[str, str],
    image_size: int,
    device: str | torch.device,
) -> pd.DataFrame:
    """Network Dissection of the layers' units against the images' concept masks, logged;
    one terminal line and an empty table when the images have no masks (or it is off)."""
    if not cfg.dissect:
        return pd.DataFrame()
    if not has_masks(rows):
        log.info(NO_MASKS)
        return pd.DataFrame()
    start = time.perf_counter()
    table = dissect_layers(
        model, loader, rows, modules, image_size, cfg.dissect_quantile, cfg.dissect_min_iou,
        device,
    )  # fmt: skip
    log_dataframe(table, "tables/dissection.csv")
    log_figure(dissection_heatmap(table, MASK_CONCEPTS), "figures/dissection.png")
    metrics = {
        f"dissection_labelled/{safe_name(layer)}": float(d["labelled"].sum())
        for layer, d in table.groupby("layer", sort=False)
    }
    for concept in MASK_CONCEPTS:
        metrics[f"dissection_best_iou/{concept}"] = float(table[f"iou_{concept}"].max())
    metrics["dissection_seconds"] = time.perf_counter() - start
    log_metrics({metric_key(k): v for k, v in metrics.items()})
    labelled = table[table["labelled"]]
    log.info(
        f"dissection: {len(labelled)} of {len(table)} units labelled (IoU >= "
        f"{cfg.dissect_min_iou}, quantile {cfg.dissect_quantile}): "
        + (
            ", ".join(
                f"{r.layer}:{r.unit} {r.concept} {r.iou:.2f}" for r in labelled.head(8).itertuples()
            )
            or "none"
        )  # fmt: skip
    )
    return table
