"""Which visualizations the sanity analysis compares, and with which class.

Rendered here: the class logits and, per class, its most class-selective channels of the
deepest conv layer (:func:`objective_table`). From a ``visualize`` run: its table
(:mod:`isic_tracking.interpret.fv_table`) narrowed to the fine-tuned model's pictures of one engine and one preset
plus their unregularized ``none`` twins (:func:`run_visualizations`, :func:`twins`), each
channel given the class it is most selective for (:func:`channel_classes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret import featvis as fv
from isic_tracking.interpret.featvis.param import ColourBasis
from isic_tracking.interpret.featvis.presets import preset
from isic_tracking.interpret.fv_table import objective_name, parse_objective
from isic_tracking.interpret.response import response_module

#: the columns that identify an objective: a regularized picture and its twin share them
OBJECTIVE_KEY = ["kind", "layer", "channel", "sign"]


@dataclass
class Visuals:
    """The visualizations compared, with their twins and the class-logit set."""

    main: pd.DataFrame  # kind, layer, channel, target, label, ... one row per image
    images: Tensor
    twins: Tensor | None  # unregularized twin of each main row, or None
    logits: pd.DataFrame  # class-logit visualizations (transferability, extra curve)
    logit_images: Tensor
    rendered_logits: bool  # rendered here with this run's settings (randomization reuses them)


def ordered(model: nn.Module, names: Sequence[str]) -> list[str]:
    """Layer names sorted shallow to deep (definition order)."""
    order = {n: i for i, (n, _) in enumerate(model.named_modules())}
    return sorted(names, key=order.__getitem__)


# --------------------------------------------------------------------------- channel classes


def _class_profile(acts: Tensor, labels: Tensor, n_classes: int) -> Tensor:
    """``[K, C]`` per-class channel means, standardized per channel over all images."""
    labels = labels.to(acts.device)
    onehot = F.one_hot(labels, n_classes).to(acts.dtype)  # [N, K]
    counts = onehot.sum(dim=0).clamp_min(1)[:, None]
    means = onehot.T @ acts / counts
    z = (means - acts.mean(dim=0)) / acts.std(dim=0).clamp_min(1e-8)
    return z


def class_selective_channels(acts: Tensor, labels: Tensor, k: int, n_classes: int) -> Tensor:
    """The ``k`` channels most selective for each class: ``[K, k]`` channel indices.

    Selectivity of channel ``c`` for class ``y``: the class's mean activation minus the
    mean over all images, in units of the channel's standard deviation.
    """
    z = _class_profile(acts, labels, n_classes)
    return z.topk(min(k, z.shape[1]), dim=1).indices


def channel_classes(acts: Tensor, labels: Tensor, channels: Tensor, n_classes: int) -> Tensor:
    """The class each channel is most selective for (target class of its visualization)."""
    z = _class_profile(acts, labels, n_classes)
    return z[:, channels.to(z.device)].argmax(dim=0)


def select_top(table: pd.DataFrame, k: int = 5, by: str = "activation_reached") -> pd.DataFrame:
    """The ``k`` rows with the highest ``by`` per ``target`` class (all rows without ``by``)."""
    if by not in table.columns:
        return table.groupby("target", sort=True).head(k)
    return (
        table.sort_values(by, ascending=False, kind="stable")
        .groupby("target", sort=True)
        .head(k)
        .sort_values(["target", by], ascending=[True, False])
    )


# --------------------------------------------------------------------------- rendered here


def objective_table(
    classes: Sequence[str], num_outputs: int, layer: str | None, channels: Tensor | None
) -> pd.DataFrame:
    """What to render: the class logit of every class, then channels (with their target class)."""
    rows = []
    for c, name in enumerate(classes):
        if num_outputs == 1:  # one logit = P(malignant): benign pictures minimize it
            rows.append(dict(kind="class_logit", layer="", channel=0, sign=1.0 if c else -1.0))
        else:
            rows.append(dict(kind="class_logit", layer="", channel=c, sign=1.0))
        r = rows[-1]
        r.update(
            target=c, label=f"class {name}", objective=objective_name("", r["channel"], r["sign"])
        )
    for c, chans in enumerate([] if channels is None else channels.tolist()):
        for ch in chans:
            rows.append(
                dict(kind="channel", layer=layer, channel=int(ch), sign=1.0, target=c)
                | dict(label=f"{layer}:{int(ch)} ({classes[c]})")
                | dict(objective=objective_name(layer, int(ch)))
            )
    return pd.DataFrame(rows)


def table_objective(table: pd.DataFrame, model: nn.Module | None = None) -> fv.Objective:
    """One per-element objective for rows of one kind (class logits or channels of one layer);
    with ``model``, channels are read where that model's filter responses are (after the
    layer's BatchNorm, :func:`~isic_tracking.interpret.response.response_module`), as
    ``visualize`` renders them."""
    kinds = table["kind"].unique().tolist()
    if kinds == ["channel"]:
        (layer,) = table["layer"].unique().tolist()
        read = response_module(model, layer) if model is not None else layer
        return fv.channels(read, table["channel"].astype(int).tolist())
    idx = torch.tensor(table["channel"].to_numpy(dtype="int64"))
    sign = torch.tensor(table["sign"].to_numpy(dtype="float32"))
    labels = table["label"].tolist()

    def fn(acts):
        out = acts[fv.LOGITS].float()
        return out[torch.arange(out.shape[0], device=out.device), idx.to(out.device)] * sign.to(
            out.device
        )

    return fv.Objective(fn, "signed class logits", [fv.LOGITS], len(table), labels)


def render_table(
    model: nn.Module,
    table: pd.DataFrame,
    *,
    steps: int,
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
    regularization: str,
    seed: int,
    colour: ColourBasis | None = None,
) -> tuple[Tensor, Tensor]:
    """Render every row of ``table`` (one batch per kind/layer): images ``[B, 3, S, S]``, values;
    ``colour``: the basis of the data-colour presets (:func:`isic_tracking.interpret.featvis.presets.preset`)."""
    images = torch.empty(len(table), 3, size, size)
    reached = torch.empty(len(table))
    groups = table.groupby(["kind", "layer"], sort=False).indices
    for idx in groups.values():
        res = fv.render(
            model,
            table_objective(table.iloc[idx], model),
            size=size,
            steps=steps,
            seed=seed,
            mean=mean,
            std=std,
            **preset(regularization, colour),
        )
        images[idx] = res.images.float()
        reached[idx] = res.activation.float()
    return images, reached


def at_size(images: Tensor, size: int) -> Tensor:
    """``[B, 3, H, W]`` images resized to ``size`` x ``size`` (unchanged when they are)."""
    if tuple(images.shape[-2:]) == (size, size):
        return images
    return F.interpolate(
        images.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True
    ).clamp(0, 1)


# --------------------------------------------------------------------------- from a visualize run


def logit_target(label: str, objective: str, channel: int, classes: Sequence[str]) -> int:
    """Class of a class-logit visualization: its label when it names a class, else the logit
    index (with one logit, a negated objective is the first class, benign)."""
    if label in classes:
        return list(classes).index(label)
    if len(classes) == 2 and parse_objective(objective)[1] < 0:
        return 0
    return 1 if len(classes) == 2 else int(channel)


def one_of(table: pd.DataFrame, column: str, preferred: Sequence[str]) -> pd.DataFrame:
    """Rows of one value of ``column`` (the first preferred one present, else the first)."""
    if column not in table.columns or table[column].nunique() <= 1:
        return table
    values = table[column].astype(str)
    keep = next((v for v in preferred if (values == v).any()), values.iloc[0])
    return table[values == keep]


def run_visualizations(table: pd.DataFrame, classes: Sequence[str], source: str) -> pd.DataFrame:
    """The rows of a visualize run's table (:func:`isic_tracking.interpret.fv_table.read_activations`) to compare,
    with ``kind`` (class_logit / channel), ``sign``, ``target`` and a ``label``.

    Keeps the fine-tuned model's pictures (not the ImageNet base's), one engine (ours when
    present) and, of the regularization presets, ``thesis`` (or the first) plus ``none``
    (the twins).
    """
    if "model" in table.columns:
        table = table[table["model"].astype(str) == "model"]
    table = one_of(table, "engine", ["isic"])
    if "regularization" in table.columns:
        regs = table["regularization"].astype(str)
        main = one_of(table[regs != "none"], "regularization", ["thesis"])
        table = pd.concat([main, table[regs == "none"]]) if len(main) else table
    table = table.reset_index(drop=True)
    if table.empty:
        raise IsicInputError(f"{source} has no visualizations of the model")
    table["layer"] = table["layer"].fillna("").astype(str).replace("logits", "")
    objective = table.get("objective", pd.Series("", index=table.index)).fillna("").astype(str)
    table["objective"] = objective
    parsed = [parse_objective(o) for o in objective]
    is_logit = (table["layer"] == "").to_numpy() | np.array([p[0] for p in parsed], dtype=bool)
    table["kind"] = np.where(is_logit, "class_logit", "channel")
    table.loc[is_logit, "layer"] = ""
    table["sign"] = np.array([p[1] for p in parsed], dtype=float)
    labels = table.get("label", pd.Series("", index=table.index)).fillna("").astype(str)
    table["target"] = [
        logit_target(lb, o, int(c), classes) if k == "class_logit" else -1
        for lb, o, c, k in zip(labels, objective, table["channel"], table["kind"])
    ]
    table["label"] = [
        f"class {classes[t]}" if k == "class_logit" else f"{ly}:{int(c)}"
        for ly, c, k, t in zip(table["layer"], table["channel"], table["kind"], table["target"])
    ]
    return table


def twins(table: pd.DataFrame, images: Tensor) -> tuple[pd.DataFrame, Tensor, Tensor | None]:
    """Split a run's rows into regularized ones and their ``none`` twins (same objective):
    (regularized rows, their images, the twin of each, or None when some have none)."""
    if "regularization" not in table.columns:
        return table, images, None
    none = (table["regularization"].astype(str) == "none").to_numpy()
    if none.all() or not none.any():
        return table, images, None
    reg, unreg = table[~none].reset_index(drop=True), table[none].reset_index(drop=True)
    pos = {tuple(r): i for i, r in enumerate(unreg[OBJECTIVE_KEY].itertuples(index=False))}
    match = [pos.get(tuple(r)) for r in reg[OBJECTIVE_KEY].itertuples(index=False)]
    if any(m is None for m in match):
        return reg, images[torch.tensor(~none)], None
    return reg, images[torch.tensor(~none)], images[torch.tensor(none)][match]
