"""The ``filters`` stage's two probes of its rankings, over every analysed layer, without MLflow:
ablation of the ranked filters (:mod:`isic_tracking.interpret.ablation`) and Network Dissection
against concept masks (:mod:`isic_tracking.interpret.dissection`)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from isic_tracking.data.sources.constants import MASK_COLUMN
from isic_tracking.data.synthetic.masks import MASK_CONCEPTS, load_masks
from isic_tracking.interpret.ablation import (
    VARIANTS,
    ablation_pass,
    ablation_table,
    ablation_verdicts,
    artifact_targets,
    class_targets,
    random_sets,
)
from isic_tracking.interpret.activations import LayerStats
from isic_tracking.interpret.dissection import dissect, feature_maps
from isic_tracking.interpret.liveness import live_mask
from isic_tracking.interpret.names import metric_key, safe_name
from isic_tracking.stages.filters.outputs import MALIGNANT
from isic_tracking.stages.filters.report import FilterReport

#: Prefix of the verdict tags (``isic.ablation.<class>``, ``isic.ablation.artifact.<name>``).
ABLATION_TAG = "isic.ablation"

#: What a terminal line says when the images carry no concept masks.
NO_MASKS = (
    "dissection needs concept masks (manifest column `mask`, written by `synth` for the "
    "synthetic set): skipped"
)


@dataclass(frozen=True)
class AblationSettings:
    """``k`` filters per target, ``draws`` random sets per layer, seeded."""

    k: int
    draws: int
    seed: int


@dataclass(frozen=True)
class DissectionSettings:
    """A unit fires above its ``quantile`` of activations; labelled from IoU ``min_iou``."""

    quantile: float
    min_iou: float


@dataclass(frozen=True)
class ProbeInputs:
    """What both probes run: the model, the analysed images and where each layer is read.

    Attributes:
        model: the classifier.
        loader: ``(x, y, idx)`` batches of the analysed images, normalized.
        modules: ``{layer: its response module}`` (the hooked module), layers in order.
        device: where the forwards run.
    """

    model: nn.Module
    loader: Iterable
    modules: Mapping[str, str]
    device: str | torch.device = "cpu"


def _in_dataset_order(stats: LayerStats, n: int) -> np.ndarray:
    """The labels of ``stats`` placed at their data-set indices (length ``n``)."""
    labels = np.full(n, -1, dtype=np.int64)
    labels[stats.indices.numpy()] = stats.labels.numpy()
    return labels


def ablate_layers(
    probe: ProbeInputs,
    stats: Mapping[str, LayerStats],
    report: FilterReport,
    classes: Sequence[str],
    members: pd.DataFrame | None,
    settings: AblationSettings,
) -> pd.DataFrame:
    """The ablation table of every layer (see :func:`.ablation_table`), layers in order.

    Args:
        probe: the model, the images and each layer's response module.
        stats: the ranked layers' response statistics (means and liveness come from them).
        report: the rankings (top tables) of the same images.
        classes: the model's classes, indexed by the labels.
        members: bool ``[images, groups]`` in data-set order, or None: artifact targets use
            the malignant class (when the model has one) and these groups.
    """
    names = [str(c) for c in classes]
    malignant = next((names.index(c) for c in MALIGNANT if c in names), None)
    tables = []
    for i, (layer, s) in enumerate(stats.items()):
        labels = _in_dataset_order(s, len(s.indices))
        targets = class_targets(report.class_top, layer, settings.k, labels, names)
        if members is not None and malignant is not None and not report.group_top.empty:
            targets += artifact_targets(
                report.group_top, layer, settings.k, members, labels, malignant
            )
        live = live_mask(s.max)
        sets = [t.filters for t in targets]
        sets += random_sets(live, settings.k, settings.draws, seed=[settings.seed, i])
        means = s.mean.mean(dim=0)  # each channel's mean over positions and images
        result = ablation_pass(
            probe.model, probe.loader, probe.modules[layer], sets, means, device=probe.device
        )
        tables.append(ablation_table(result, targets))
    return pd.concat(tables, ignore_index=True)


@dataclass(frozen=True)
class AblationResult:
    """The ablation of every layer: ``table`` (:data:`~.ablation.ABLATION_COLUMNS` and the
    random drops, column ``random``), the ``verdicts`` per target, the ``seconds`` it took."""

    table: pd.DataFrame
    verdicts: pd.DataFrame
    seconds: float


def run_ablation(
    probe: ProbeInputs,
    stats: Mapping[str, LayerStats],
    report: FilterReport,
    classes: Sequence[str],
    members: pd.DataFrame | None,
    settings: AblationSettings,
) -> AblationResult:
    """:func:`ablate_layers` timed, with its verdicts (:func:`.ablation_verdicts`)."""
    start = time.perf_counter()
    table = ablate_layers(probe, stats, report, classes, members, settings)
    return AblationResult(table, ablation_verdicts(table), time.perf_counter() - start)


@dataclass(frozen=True)
class DissectionResult:
    """Network Dissection of every layer: one row per unit, the settings, the seconds."""

    table: pd.DataFrame
    settings: DissectionSettings
    seconds: float

    def metrics(self) -> dict[str, float]:
        """``dissection_labelled/<layer>`` (units labelled), ``dissection_best_iou/<concept>``
        and ``dissection_seconds``; MLflow-safe keys."""
        metrics = {
            f"dissection_labelled/{safe_name(layer)}": float(d["labelled"].sum())
            for layer, d in self.table.groupby("layer", sort=False)
        }
        for concept in MASK_CONCEPTS:
            metrics[f"dissection_best_iou/{concept}"] = float(self.table[f"iou_{concept}"].max())
        metrics["dissection_seconds"] = self.seconds
        return {metric_key(k): v for k, v in metrics.items()}

    def line(self) -> str:
        """One terminal line: how many units are labelled, the first few with their IoU."""
        labelled = self.table[self.table["labelled"]]
        best = ", ".join(
            f"{r.layer}:{r.unit} {r.concept} {r.iou:.2f}" for r in labelled.head(8).itertuples()
        )
        return (
            f"dissection: {len(labelled)} of {len(self.table)} units labelled (IoU >= "
            f"{self.settings.min_iou}, quantile {self.settings.quantile}): {best or 'none'}"
        )


def run_dissection(
    probe: ProbeInputs, rows: pd.DataFrame, image_size: int, settings: DissectionSettings
) -> DissectionResult:
    """:func:`dissect_layers` timed."""
    start = time.perf_counter()
    table = dissect_layers(probe, rows, image_size, settings)
    return DissectionResult(table, settings, time.perf_counter() - start)


def has_masks(rows: pd.DataFrame) -> bool:
    """Every analysed image names a concept-mask file."""
    return MASK_COLUMN in rows.columns and bool(
        rows[MASK_COLUMN].fillna("").astype(str).str.len().gt(0).all()
    )


def dissect_layers(
    probe: ProbeInputs, rows: pd.DataFrame, image_size: int, settings: DissectionSettings
) -> pd.DataFrame:
    """Network Dissection of every layer's units (read at ``probe.modules``) against the
    masks named in ``rows`` (:func:`has_masks`, loaded at ``image_size``), one table, best
    units first per layer. Holds every layer's maps of every image in memory (float16)."""
    modules = probe.modules
    maps, indices = feature_maps(
        probe.model, probe.loader, list(dict.fromkeys(modules.values())), probe.device
    )
    paths = rows[MASK_COLUMN].astype(str).to_numpy()[indices.numpy()]
    masks = load_masks(list(paths), image_size)
    q, min_iou = settings.quantile, settings.min_iou
    tables = [
        dissect(maps[module], masks, MASK_CONCEPTS, layer, q, min_iou)
        for layer, module in modules.items()
    ]
    return pd.concat(tables, ignore_index=True)


def ablation_metrics(verdicts: pd.DataFrame) -> dict[str, float]:
    """``ablation_<measure>_<layer>/<class>`` (artifacts: ``ablation_artifact_<measure>_<layer>/
    <artifact>``) for every verdict column (``drop_zero``, ``random_q95_mean``,
    ``percentile_mean``, ...) plus ``passed`` (1 or 0); MLflow-safe keys with one ``/`` level
    (metric, then target), like the stage's ``recovery_auc_<layer>/<artifact>``."""
    out: dict[str, float] = {}
    measures = [c for c in verdicts.columns if c not in ("kind", "name", "layer")]
    for r in verdicts.to_dict("records"):
        head = "ablation" if r["kind"] == "class" else f"ablation_{r['kind']}"
        for m in measures:
            key = f"{head}_{m}_{safe_name(str(r['layer']))}/{safe_name(str(r['name']))}"
            out[metric_key(key)] = float(r[m])
    return out


def ablation_tags(verdicts: pd.DataFrame) -> dict[str, str]:
    """One tag per class (and artifact): ``pass`` when its filters passed in every layer, else
    ``fail (<layers that failed>)``."""
    out = {}
    for (kind, name), d in verdicts.groupby(["kind", "name"], sort=False):
        failed = d.loc[~d["passed"].astype(bool), "layer"].astype(str).tolist()
        key = f"{ABLATION_TAG}.{'' if kind == 'class' else kind + '.'}{safe_name(str(name))}"
        out[key] = "pass" if not failed else f"fail ({', '.join(failed)})"
    return out


def ablation_lines(verdicts: pd.DataFrame) -> list[str]:
    """One terminal line per target: its top-k drops against the random 95th percentiles."""
    lines = []
    for r in verdicts.to_dict("records"):
        parts = [
            f"{v} {r[f'drop_{v}']:+.3f} (random 95%: {r[f'random_q95_{v}']:+.3f})"
            for v in VARIANTS
            if f"drop_{v}" in r
        ]
        lines.append(
            f"ablation {r['kind']} {r['name']!r} @ {r['layer']}: logit drop {', '.join(parts)}: "
            f"{'pass' if r['passed'] else 'fail'}"
        )
    return lines
