"""The ``filters`` stage's attribution part (:mod:`isic_tracking.interpret.attribution`): Grad-CAM
beside the class exemplar grids, and the filters ranked by attribution towards the class next to
the activation-frequency ranking, with their agreement. Logged into the active filters run.

Artifacts: ``figures/exemplars/<layer>/class_<class>_gradcam.png`` (the images of
``class_<class>.png``, same crops, Grad-CAM overlay), ``tables/attribution_filters.csv``
(``class, filter, score, rank, layer``), ``tables/attribution_vs_frequency.csv`` (both top-N per
rank), ``tables/attribution_agreement.csv`` (``class, layer, jaccard, spearman, n_live``);
metrics ``attribution_jaccard/<class>``, ``attribution_spearman/<class>`` (last layer; per layer
``attribution_jaccard_<layer>/<class>`` when several).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from isic_tracking.interpret.activations import LayerStats
from isic_tracking.interpret.attribution import (
    agreement_metrics,
    attribution_top,
    class_mean_scores,
    filter_attribution,
    gradcam_maps,
    overlay,
    ranking_agreement,
    side_by_side,
)
from isic_tracking.interpret.exemplars import exemplar_crops, top_exemplars
from isic_tracking.interpret.liveness import live_mask
from isic_tracking.interpret.names import safe_name
from isic_tracking.interpret.plots import exemplar_grid
from isic_tracking.interpret.response import response_module
from isic_tracking.log import get_logger
from isic_tracking.stages.filters.config import FiltersConfig
from isic_tracking.stages.filters.report import FilterReport
from isic_tracking.tracking.runs import log_dataframe, log_figure, log_metrics

log = get_logger(__name__)


@dataclass
class AttributionInputs:
    """What the attribution part shares with the filters runner."""

    model: nn.Module
    dataset: Any  # index -> (model input [3, H, W], ...)
    stats: Mapping[str, LayerStats]
    classes: list[str]
    mean: Sequence[float]
    std: Sequence[float]
    batch_size: int


def class_sample(stats: LayerStats, n_classes: int, per_class: int, seed: int) -> np.ndarray:
    """Up to ``per_class`` data-set indices per class (0: all), drawn under ``seed``."""
    labels, idx = stats.labels.numpy(), stats.indices.numpy()
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n_classes):
        own = idx[labels == k]
        out.append(rng.permutation(own)[: per_class or len(own)])
    return np.concatenate(out)


def _images(dataset, indices: Sequence[int]) -> torch.Tensor:
    return torch.stack([dataset[int(i)][0] for i in indices])


def attribution_ranking(
    inp: AttributionInputs, report: FilterReport, layers: list[str], cfg: FiltersConfig
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(attribution top-N per class and layer, its agreement with the frequency top-N)."""
    first = inp.stats[layers[0]]
    indices = class_sample(first, len(inp.classes), cfg.attribution_images, cfg.seed)
    label_of = dict(zip(first.indices.tolist(), first.labels.tolist()))
    labels = torch.tensor([label_of[int(i)] for i in indices])
    images = _images(inp.dataset, indices)
    tops, agreements = [], []
    for layer in layers:
        scores = filter_attribution(
            inp.model, response_module(inp.model, layer), images, labels,
            method=cfg.attribution, n_steps=cfg.attribution_steps, batch_size=inp.batch_size,
        )  # fmt: skip
        means = class_mean_scores(scores, labels, inp.classes)
        live = live_mask(inp.stats[layer].max)
        top = attribution_top(means, cfg.top_n, live).assign(layer=layer)
        freq_top = report.class_top[report.class_top["layer"] == layer]
        agree = ranking_agreement(freq_top, top, report.class_percent[layer], means, live)
        tops.append(top)
        agreements.append(agree.reset_index().assign(layer=layer))
    return pd.concat(tops, ignore_index=True), pd.concat(agreements, ignore_index=True)


def gradcam_figures(
    inp: AttributionInputs, report: FilterReport, layers: list[str], k: int
) -> dict[str, Any]:
    """``{artifact path: figure}``: per (class, layer) with an exemplar grid, the grid's crops
    with Grad-CAM towards the class at the layer (its response module) laid over them."""
    figures = {}
    for (cls, layer), d in report.class_top.groupby(["class", "layer"], sort=False):
        if layer not in layers:
            continue
        filters = d.sort_values("rank")["filter"].astype(int).tolist()
        ex = top_exemplars(inp.stats[layer], filters, k=k)
        unique = ex["dataset_index"].drop_duplicates().astype(int).tolist()
        target = torch.full((len(unique),), inp.classes.index(str(cls)))
        images = _images(inp.dataset, unique)
        maps = gradcam_maps(
            inp.model, response_module(inp.model, layer), images, target,
            batch_size=inp.batch_size,
        )  # fmt: skip
        heat = dict(zip(unique, maps))
        crops = exemplar_crops(ex, lambda i: inp.dataset[i][0], inp.mean, inp.std)
        blended = [
            overlay(c, heat[int(e.dataset_index)][e.y0 : e.y1, e.x0 : e.x1])
            for c, e in zip(crops, ex.itertuples())
        ]
        fig = exemplar_grid(
            blended,
            [f"filter {f}" for f in filters],
            [f"{e.activation:.2f}" for e in ex.itertuples()],
            ncols=k,
            title=f"{layer}: Grad-CAM towards {cls} on the exemplars of its top filters",
        )
        figures[f"figures/exemplars/{safe_name(layer)}/class_{safe_name(str(cls))}_gradcam.png"] = (
            fig
        )
    return figures


def log_attribution(
    inp: AttributionInputs,
    report: FilterReport,
    layers: list[str],
    exemplar_layers: list[str],
    cfg: FiltersConfig,
) -> int:
    """Log the Grad-CAM grids (``cfg.gradcam`` with exemplars) and the attribution ranking
    (``cfg.attribution`` not ``none``) into the active run; returns the number of grids."""
    start = time.perf_counter()
    n = 0
    if cfg.gradcam and cfg.exemplars > 0:
        for path, fig in gradcam_figures(inp, report, exemplar_layers, cfg.exemplars).items():
            log_figure(fig, path)
            n += 1
    cam_s = time.perf_counter() - start
    if cfg.attribution != "none":
        top, agreement = attribution_ranking(inp, report, layers, cfg)
        agreement = agreement[["class", "layer", "jaccard", "spearman", "n_live"]]
        log_dataframe(top, "tables/attribution_filters.csv")
        log_dataframe(side_by_side(report.class_top, top), "tables/attribution_vs_frequency.csv")
        log_dataframe(agreement, "tables/attribution_agreement.csv")
        log_metrics(agreement_metrics(agreement, layers))
        log.info(f"attribution ({cfg.attribution}) vs activation frequency:\n{agreement}")
    log.info(
        f"attribution: {n} Grad-CAM grids in {cam_s:.1f} s, ranking ({cfg.attribution}) in "
        f"{time.perf_counter() - start - cam_s:.1f} s"
    )
    return n
