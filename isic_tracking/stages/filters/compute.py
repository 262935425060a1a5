"""The ``filters`` stage's computation, without MLflow: given a resolved :class:`FiltersPlan`,
one pass over the analysed images (each filter's response, :func:`response_stats`), the
rankings (:func:`.report.filter_report`), the most activated filters, the planted shortcut's
check, the two probes (:mod:`.probes`: ablation, Network Dissection) and the exemplar crops of
the top filters; returned as one :class:`FiltersResult` the runner logs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from torch import nn

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.activations import LayerStats
from isic_tracking.interpret.exemplars import exemplar_crops, top_exemplars
from isic_tracking.interpret.filters import membership
from isic_tracking.interpret.liveness import most_activated_table
from isic_tracking.interpret.names import safe_name
from isic_tracking.interpret.response import response_stats
from isic_tracking.log import get_logger
from isic_tracking.stages.filters.config import FiltersConfig
from isic_tracking.stages.filters.outputs import ShortcutCheck, shortcut_check
from isic_tracking.stages.filters.probes import (
    NO_MASKS,
    AblationResult,
    AblationSettings,
    DissectionResult,
    DissectionSettings,
    ProbeInputs,
    has_masks,
    run_ablation,
    run_dissection,
)
from isic_tracking.stages.filters.report import FilterReport, filter_report

log = get_logger(__name__)


def ablated_layers(choice: str, ranked: Sequence[str]) -> list[str]:
    """``ablate_layers`` (last, all or names) among the ranked layers, shallow to deep."""
    choice = choice.strip()
    if choice == "last":
        return list(ranked[-1:])
    if choice == "all":
        return list(ranked)
    names = [n.strip() for n in choice.split(",") if n.strip()]
    unknown = [n for n in names if n not in ranked]
    if unknown or not names:
        raise IsicInputError(
            f"ablate_layers={choice!r}: {unknown or 'no layer'} not among the ranked layers "
            f"({', '.join(ranked)}); use last, all or some of those (see layers=)"
        )
    return [n for n in ranked if n in names]


@dataclass(frozen=True)
class FiltersPlan:
    """Everything a filters run analyses and how, resolved and checked once by the runner.

    Attributes:
        settings: the stage's config (quantile, top_n, probes, exemplars, attribution).
        model: the analysed model; config: its config, ``image_size`` as analysed.
        layers: the ranked layers, shallow to deep.
        rows: the analysed images (manifest rows of the split); manifest: their file.
        classes: the classes the labels index; split: what the images are, in words.
        groups: bool ``[images, groups]`` (artifacts, z-score outliers), or None.
        modules: ``{layer: its response module}`` (the BatchNorm after it, where one is).
        loader: ``(x, y, idx)`` batches of ``rows``, normalized as the model expects.
        device: where the forwards run; tags: the run's tags (the model's).
    """

    settings: FiltersConfig
    model: nn.Module
    config: Mapping[str, Any]
    layers: tuple[str, ...]
    rows: pd.DataFrame
    manifest: str
    classes: tuple[str, ...]
    split: str
    groups: pd.DataFrame | None
    modules: Mapping[str, str]
    loader: Any
    device: Any
    tags: Mapping[str, str]

    @property
    def image_size(self) -> int:
        return int(self.config["image_size"])

    @property
    def exemplar_layers(self) -> list[str]:
        """The layers with exemplar (and Grad-CAM) grids: all, or the last."""
        return list(self.layers if self.settings.exemplar_layers == "all" else self.layers[-1:])

    @property
    def ablated_layers(self) -> list[str]:
        """The ranked layers the ablation removes filters of (``ablate_layers``)."""
        return ablated_layers(self.settings.ablate_layers, self.layers)

    @property
    def probe(self) -> ProbeInputs:
        return ProbeInputs(self.model, self.loader, self.modules, self.device)


@dataclass(frozen=True)
class ExemplarGrid:
    """The dataset exemplars of one (class or group, layer)'s top filters: ``crops`` laid out
    with one column per filter (``columns``), each tile labelled; logged at ``path``."""

    path: str
    crops: list[Any]
    columns: list[str]
    labels: list[str]
    ncols: int
    title: str


@dataclass(frozen=True)
class FiltersResult:
    """What a filters run computed (None / empty: that part was off or did not apply)."""

    stats: Mapping[str, LayerStats]
    report: FilterReport
    most_activated: pd.DataFrame  # Table 10: the most activated live filters per layer
    shortcut: ShortcutCheck | None
    ablation: AblationResult | None
    dissection: DissectionResult | None
    exemplars: tuple[ExemplarGrid, ...]


def rank(plan: FiltersPlan, stats: Mapping[str, LayerStats]) -> FilterReport:
    """The class and group rankings of every layer (:func:`.report.filter_report`)."""
    first = stats[plan.layers[0]]
    groups = None if plan.groups is None else plan.groups.iloc[first.indices.numpy()]
    return filter_report(
        {n: s.max for n, s in stats.items()}, first.labels, list(plan.classes), groups,
        plan.settings.quantile, plan.settings.top_n, split=plan.split,
    )  # fmt: skip


def most_activated(stats: Mapping[str, LayerStats], top_n: int) -> pd.DataFrame:
    """Table 10 of the thesis: the most activated live filters of each analysed layer."""
    return pd.concat(
        [most_activated_table(s.max, top_n).assign(layer=name) for name, s in stats.items()],
        ignore_index=True,
    )


def check_shortcut(plan: FiltersPlan, report: FilterReport, stats) -> ShortcutCheck | None:
    """The planted shortcut's check in the last layer (None without ``shortcut_artifact``)."""
    cfg = plan.settings
    if cfg.shortcut_artifact == "none":
        return None
    last: LayerStats = stats[plan.layers[-1]]
    return shortcut_check(
        report.recovery, cfg.shortcut_artifact, last.name, cfg.shortcut_min_auc,
        last.max.numpy(), last.labels.numpy(), list(plan.classes),
    )  # fmt: skip


def ablate(plan: FiltersPlan, stats, report: FilterReport) -> AblationResult | None:
    """Each class's (and artifact's) top ``ablate_k`` filters removed against random ones;
    None when off or when the model is no classifier of the analysed classes."""
    cfg = plan.settings
    if plan.config.get("task") not in ("binary", "multiclass"):  # logits of the classes
        if cfg.ablate_k:
            log.info("ablation needs a classifier of the analysed classes: skipped")
        return None
    if cfg.ablate_k == 0:
        return None
    members = None if plan.groups is None else membership(plan.groups, len(plan.rows))
    settings = AblationSettings(cfg.ablate_k, cfg.ablate_draws, cfg.seed)
    chosen = {n: stats[n] for n in plan.ablated_layers}
    return run_ablation(plan.probe, chosen, report, list(plan.classes), members, settings)


def dissection(plan: FiltersPlan) -> DissectionResult | None:
    """Network Dissection against the images' concept masks; None when off or (one terminal
    line) when the images have none."""
    cfg = plan.settings
    if not cfg.dissect:
        return None
    if not has_masks(plan.rows):
        log.info(NO_MASKS)
        return None
    settings = DissectionSettings(cfg.dissect_quantile, cfg.dissect_min_iou)
    return run_dissection(plan.probe, plan.rows, plan.image_size, settings)


def exemplar_grids(
    plan: FiltersPlan, stats: Mapping[str, LayerStats], top: pd.DataFrame, key: str
) -> list[ExemplarGrid]:
    """One grid of dataset exemplars per (class or group, layer) of ``top`` in the plan's
    exemplar layers: the ``exemplars`` images that fire each top filter most, cropped."""
    k, dataset = plan.settings.exemplars, plan.loader.dataset
    mean, std = plan.config["mean"], plan.config["std"]
    ids = plan.rows["image_id"].astype(str).to_numpy()
    grids = []
    for (group, layer), d in top.groupby([key, "layer"], sort=False):
        if layer not in plan.exemplar_layers:
            continue
        filters = d.sort_values("rank")["filter"].astype(int).tolist()
        ex = top_exemplars(stats[layer], filters, k=k)
        crops = exemplar_crops(ex, lambda i: dataset[i][0], mean, std)
        labels = [f"{ids[e.dataset_index][-10:]}\n{e.activation:.2f}" for e in ex.itertuples()]
        path = f"figures/exemplars/{safe_name(layer)}/{key}_{safe_name(str(group))}.png"
        title = f"{layer}: exemplars of {key} {group}'s top filters"
        grids.append(ExemplarGrid(path, crops, [f"filter {f}" for f in filters], labels, k, title))
    return grids


def compute_filters(plan: FiltersPlan) -> FiltersResult:
    """One pass over the analysed images, then everything the run logs (see the module)."""
    cfg = plan.settings
    stats = response_stats(plan.model, plan.loader, list(plan.layers), plan.device)
    report = rank(plan, stats)
    grids: list[ExemplarGrid] = []
    if cfg.exemplars > 0:
        for top, key in ((report.class_top, "class"), (report.group_top, "group")):
            if not top.empty:
                grids += exemplar_grids(plan, stats, top, key)
    return FiltersResult(
        stats, report, most_activated(stats, cfg.top_n), check_shortcut(plan, report, stats),
        ablate(plan, stats, report), dissection(plan), tuple(grids),
    )  # fmt: skip
