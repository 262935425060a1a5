"""What the ``visualize`` stage renders: targets from a channel spec, a filters table or the
class logits, cut into batches, and the table rows and file names of the pictures."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.choices import ENGINES  # noqa: F401 (re-exported)
from isic_tracking.interpret.featvis import LOGITS, Objective, channel, class_logit
from isic_tracking.interpret.featvis.render import RenderResult
from isic_tracking.interpret.fv_table import LOGITS_LAYER, NATURAL_COLUMNS, objective_name
from isic_tracking.interpret.liveness import most_activated_table
from isic_tracking.interpret.names import metric_key, safe_name

#: ``channels=all`` refuses a layer wider than this (one picture per channel).
MAX_ALL_CHANNELS = 512


@dataclass
class Target:
    """One picture to render: a channel of a layer, or a (signed) class logit."""

    layer: str  # "" for class logits
    channel: int
    sign: float = 1.0
    label: str = ""
    selectivity: str = ""  # from a filters run, e.g. ``malignant 62%``


def choices(spec: str, allowed: Sequence[str], what: str) -> list[str]:
    """A comma list of names, each one of ``allowed``, deduplicated in order."""
    items = [s.strip() for s in spec.split(",") if s.strip()]
    bad = [s for s in items if s not in allowed]
    if bad or not items:
        raise IsicInputError(f"unknown {what} {bad or spec!r}; choose from {', '.join(allowed)}")
    return list(dict.fromkeys(items))


def parse_channels(spec: str) -> str | list[int]:
    """``top_n``, ``all``, ``classes`` or explicit indices ``3,17,42`` (as a list)."""
    spec = spec.strip()
    if spec in ("top_n", "all", "classes"):
        return spec
    if re.fullmatch(r"\d+(\s*,\s*\d+)*", spec):
        return [int(s) for s in spec.split(",")]
    raise IsicInputError(
        f"channels={spec!r}: use top_n, all, classes or comma-separated indices like 3,17,42"
    )


def class_targets(config: Mapping[str, Any]) -> list[Target]:
    """One target per class logit; a binary model's one logit twice (+ malignant, - benign)."""
    classes = [str(c) for c in config.get("classes", [])]
    n = int(config["num_outputs"])
    if n == 1:  # binary: one logit, + is malignant, - is benign
        names = classes if len(classes) == 2 else ["benign", "malignant"]
        return [Target("", 0, 1.0, names[1]), Target("", 0, -1.0, names[0])]
    return [Target("", i, 1.0, classes[i] if i < len(classes) else str(i)) for i in range(n)]


def check_filters_table(table: pd.DataFrame, source: str) -> pd.DataFrame:
    """A filters run's ``class_filters.csv`` has what :func:`top_from_table` reads."""
    missing = {"filter", "rank"} - set(table.columns)
    if missing:
        raise IsicInputError(f"{source} lacks column(s) {sorted(missing)}")
    return table


def top_from_table(table: pd.DataFrame, layer: str, last: str, top_n: int) -> dict[int, str] | None:
    """Each class's ``top_n`` filters of ``layer`` (best rank first, then percent), with the
    classes they rank for; None when the table has no rows for ``layer``."""
    if "layer" in table.columns:
        rows = table[table["layer"] == layer]
    else:  # an old table without a layer column holds the last layer only
        rows = table if layer == last else table.iloc[:0]
    rows = rows[rows["rank"] <= top_n]
    if rows.empty:
        return None
    sort = ["rank", "percent"] if "percent" in rows.columns else ["rank"]
    rows = rows.sort_values(sort, ascending=[True, False][: len(sort)])
    classes = rows["class"].astype(str) if "class" in rows.columns else pd.Series("", rows.index)
    top: dict[int, list[str]] = {}
    for f, c in zip(rows["filter"].astype(int), classes):
        top.setdefault(f, []).append(c)
    return {f: ", ".join(dict.fromkeys(c for c in cs if c)) for f, cs in top.items()}


def selectivity_from_table(table: pd.DataFrame, layer: str, last: str) -> dict[int, str]:
    """``{filter: "malignant 62%, benign 40%"}``: the share of each class's images that fire
    the filter (a filters run's ``percent``), best first, for the filters of ``layer`` it lists."""
    if "layer" in table.columns:
        rows = table[table["layer"] == layer]
    else:
        rows = table if layer == last else table.iloc[:0]
    if rows.empty or not {"class", "percent"} <= set(rows.columns):
        return {}
    rows = rows.sort_values("percent", ascending=False)
    out: dict[int, list[str]] = {}
    for f, c, p in zip(rows["filter"].astype(int), rows["class"].astype(str), rows["percent"]):
        out.setdefault(f, []).append(f"{c} {float(p):.0f}%")
    return {f: ", ".join(dict.fromkeys(v)) for f, v in out.items()}


def most_activated(max_per_image: Tensor, top_n: int) -> list[int]:
    """The ``top_n`` live filters (:mod:`isic_tracking.interpret.liveness`: never a dead or constant one) with the
    highest mean (over images ``[N, C]``) of their max (the filters stage's Table 10)."""
    return most_activated_table(max_per_image, top_n)["filter"].tolist()


def channel_targets(
    chans: Mapping[str, Mapping[int, str]],
    selectivity: Mapping[str, Mapping[int, str]] | None = None,
) -> dict[str, list[Target]]:
    """``{layer: {channel: note}}`` -> targets labelled ``layer:c (note)``, each with its class
    selectivity when ``selectivity`` (``{layer: {channel: text}}``) knows it."""
    sel = selectivity or {}
    return {
        name: [
            Target(
                name,
                c,
                label=f"{name}:{c}" + (f" ({note})" if note else ""),
                selectivity=sel.get(name, {}).get(c, ""),
            )
            for c, note in notes.items()
        ]
        for name, notes in chans.items()
    }


def single_objective(t: Target, read: str | None = None) -> Objective:
    """The objective of one target with a shared index (fits any batch, e.g. natural images);
    ``read``: the module whose output holds the channel (default its layer; see
    :func:`~isic_tracking.interpret.response.response_module`)."""
    if t.layer != LOGITS:
        return channel(read or t.layer, t.channel)
    obj = class_logit(t.channel)
    return -obj if t.sign < 0 else obj


def objective(targets: Sequence[Target], read: str | None = None) -> Objective:
    """One per-element objective for targets of one layer (or of the logits, one sign);
    ``read`` as in :func:`single_objective`."""
    if targets[0].layer != LOGITS:
        return channel(read or targets[0].layer, [t.channel for t in targets])
    obj = class_logit([t.channel for t in targets])
    return -obj if targets[0].sign < 0 else obj


def chunks(targets: Sequence[Target], batch_size: int) -> list[list[Target]]:
    """Batches of at most ``batch_size`` with one sign each (a sign is per objective)."""
    out: list[list[Target]] = []
    for t in targets:
        if out and len(out[-1]) < batch_size and out[-1][0].sign == t.sign:
            out[-1].append(t)
        else:
            out.append([t])
    return out


def concat_results(parts: Sequence[tuple[Sequence[Target], RenderResult]]) -> RenderResult:
    """The renders of a layer's batches as one result (images and values concatenated)."""
    first = parts[0][1]
    return RenderResult(
        images=torch.cat([r.images for _, r in parts]),
        activation=torch.cat([r.activation for _, r in parts]),
        history=torch.empty(0),
        history_steps=torch.empty(0, dtype=torch.long),
        labels=[t.label for chunk, _ in parts for t in chunk],
        objective=first.objective,
        seconds=sum(r.seconds for _, r in parts),
        settings=first.settings,
    )


def folder(layer: str) -> str:
    """Folder (and metric path part) of a layer's pictures; ``logits`` for class logits."""
    return safe_name(layer) if layer else LOGITS_LAYER


def render_name(layer_folder: str, model_key: str, engine: str, reg: str) -> str:
    """One metric-key part for a render: ``features.0-thesis``; the engine and model appear
    only when not the defaults (``-torch_dreams``, ``-imagenet``). Never holds a ``/``."""
    parts = [layer_folder, reg]
    parts += [engine] if engine != "isic" and engine != reg else []
    parts += [model_key] if model_key != "model" else []
    return "-".join(p.replace("/", "_") for p in parts)


def stage_metric(kind: str, name: str = "") -> str:
    """``kind/name`` (or ``kind``): a metric key with at most one ``/`` level."""
    key = metric_key(f"{kind}/{name}" if name else kind)
    if key.count("/") > 1:
        raise ValueError(f"metric key {key!r} has more than one '/' level")
    return key


def picture_file(model_key: str, engine: str, reg: str, t: Target) -> str:
    """Artifact path of one picture, e.g. ``images/features.10/model_isic_thesis_ch0003.png``."""
    kind = "ch" if t.layer else ("neglogit" if t.sign < 0 else "logit")
    return f"images/{folder(t.layer)}/{model_key}_{engine}_{reg}_{kind}{t.channel:04d}.png"


def picture_row(
    t: Target,
    reached: float,
    engine: str,
    reg: str,
    model_key: str,
    file: str,
    natural: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The ``tables/activations.csv`` row of one picture (see :mod:`isic_tracking.interpret.fv_table`); ``natural``
    holds its natural-image columns (NaN when absent: no natural images)."""
    return {
        "layer": t.layer or LOGITS_LAYER,
        "channel": t.channel,
        "objective": objective_name(t.layer, t.channel, t.sign),
        "activation_reached": float(reached),
        "engine": engine,
        "regularization": reg,
        "model": model_key,
        "label": t.label,
        "file": file,
        **{c: float((natural or {}).get(c, float("nan"))) for c in NATURAL_COLUMNS},
        "selectivity": t.selectivity,
    }


def render_plan(
    models: Mapping[str, Any], engines: Sequence[str], regs: Sequence[str]
) -> Iterator[tuple[str, Any, str, str]]:
    """(model key, model, engine, preset) of every render; torch-dreams has its own preset."""
    for key, m in models.items():
        for engine in engines:
            for reg in regs if engine == "isic" else ["torch_dreams"]:
                yield key, m, engine, reg
