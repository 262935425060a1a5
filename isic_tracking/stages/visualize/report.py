"""What the ``visualize`` stage reports about its renders: the natural-image columns of each
picture, the metrics of a render and of the run, the grids' panels and which render is whose
twin, and the colour check of the class-logit pictures. Pure functions over the table rows
(:mod:`isic_tracking.interpret.fv_table`) and tensors; the stage logs what they return."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from isic_tracking.interpret import fv_natural
from isic_tracking.interpret.colour_check import chance_p, colour_check, verdict
from isic_tracking.interpret.featvis.grids import Panel, tile_label
from isic_tracking.interpret.fv_table import BASE_KEY, LOGITS_LAYER
from isic_tracking.stages.visualize.targets import stage_metric

Row = Mapping[str, Any]


def natural_columns(reached: Tensor, ref: fv_natural.NaturalReference | None) -> list[dict]:
    """Per picture: natural max / p99 and the activation reached over each (NaN: not live);
    empty dicts when there were no natural images."""
    if ref is None:
        return [{} for _ in reached]
    by_max = fv_natural.ratio(reached, ref.max, ref.live)
    by_p99 = fv_natural.ratio(reached, ref.p99, ref.live)
    return [
        {
            "natural_max": float(ref.max[i]),
            "natural_p99": float(ref.p99[i]),
            "fv_over_natural_max": float(by_max[i]),
            "fv_over_natural_p99": float(by_p99[i]),
        }
        for i in range(len(reached))
    ]


def _has_natural(rows: Sequence[Row]) -> bool:
    """Every row has its natural maximum (NaN: no natural images were analysed)."""
    return bool(rows) and not any(math.isnan(float(r["natural_max"])) for r in rows)


def render_metrics(name: str, reached: Tensor, seconds: float, rows: Sequence[Row]) -> dict:
    """One render's metrics, keys ``<kind>/<name>`` (``name`` e.g. ``features.0-thesis``)."""
    out = {
        stage_metric("activation_mean", name): float(reached.mean()),
        stage_metric("seconds", name): float(seconds),
    }
    if _has_natural(rows):
        for col in ("fv_over_natural_max", "fv_over_natural_p99"):
            s = fv_natural.summary(torch.tensor([float(r[col]) for r in rows]))
            out[stage_metric(f"{col}_frac", name)] = s["frac"]
            out[stage_metric(f"{col}_median", name)] = s["median"]
        out[stage_metric("live_filters", name)] = s["live"]
        out[stage_metric("not_live_filters", name)] = s["not_live"]
    return out


def overall_metrics(rows: Sequence[Row]) -> dict[str, float]:
    """Per preset, over every layer's channels of the model (not its base, not the
    logits): the fraction of live filters whose picture reaches the natural maximum, key
    ``fv_over_natural_max_frac/all-<preset>`` (the 80 % target of docs/benchmarks.md)."""
    chans = [r for r in rows if r["layer"] != LOGITS_LAYER and r["model"] == "model"]
    out = {}
    for reg in dict.fromkeys(r["regularization"] for r in chans):
        mine = [r for r in chans if r["regularization"] == reg]
        if _has_natural(mine):
            ratios = torch.tensor([float(r["fv_over_natural_max"]) for r in mine])
            out[stage_metric("fv_over_natural_max_frac", f"all-{reg}")] = fv_natural.summary(
                ratios
            )["frac"]
    return out


def panel(name: str, images: Tensor, rows: Sequence[Row]) -> Panel:
    """A grid panel of one render: each tile titled with layer, filter, selectivity, ratio."""
    titles = [
        tile_label(
            r["layer"],
            int(r["channel"]),
            float(r["activation_reached"]),
            float(r["fv_over_natural_max"]),
            r["selectivity"],
            r["label"],
        )  # fmt: skip
        for r in rows
    ]
    return Panel(name, images, titles)


def twin_of(render: tuple[str, str, str], done: Sequence[tuple[str, str, str]]):
    """The render to show beside ``(model key, engine, preset)``: its unregularized (``none``)
    twin, else the base's render with the same settings; None when neither exists."""
    key, engine, reg = render
    if key != "model" or reg == "none":
        return None
    for twin in ((key, engine, "none"), (BASE_KEY, engine, reg)):
        if twin in done:
            return twin
    return None


def colour_report(
    rows: Sequence[Row], images: Tensor, classes: Sequence[str], hists: Tensor, preset: str
) -> tuple[pd.DataFrame, dict[str, float], bool]:
    """The colour check of one preset's class-logit pictures (``rows`` / ``images`` of the
    logits, one per class, labelled with the class name): (table, metrics, passed)."""
    by_class = {r["label"]: i for i, r in enumerate(rows)}
    missing = [c for c in classes if c not in by_class]
    if missing:
        raise ValueError(f"no class-logit picture of {missing}")
    vis = torch.stack([images[by_class[c]] for c in classes])
    table = colour_check(vis, classes, hists)
    table.insert(0, "regularization", preset)
    metrics = {}
    for r in table.to_dict("records"):
        key = f"{r['class']}-{preset}"
        metrics[stage_metric("colour_distance", key)] = r["distance"]
        metrics[stage_metric("colour_nearest_other", key)] = r["nearest_other"]
    metrics[stage_metric("colour_check_passed", preset)] = float(table["passed"].mean())
    if len(classes) > 2:  # two classes: 1 of 2 relabellings, never significant
        metrics[stage_metric("colour_check_chance_p", preset)] = chance_p(table, list(classes))
    return table, metrics, verdict(table)
