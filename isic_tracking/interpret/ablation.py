"""Ablation: do the filters named for a class (or an artifact) carry that class's score?

A ranking says which filters *fire* on a group's images; it does not say the decision uses
them. Here the ranked filters of a layer are removed with a forward hook on the layer's
response module (the one whose output ranked them, :mod:`.response`) and the drop of the
class's score is measured on the group's images. Two ways to remove a filter (Meyes et al.
2019; Hooker et al. 2019 for why a single ablation needs a baseline):

* ``zero``: its map is set to 0 (after a BatchNorm: the pre-activation 0, ReLU passes nothing);
* ``mean``: its map is set to its mean activation over the analysed images, everywhere, which
  keeps the next layer's input on the data's scale and removes only what varies per image.

The baseline is the same removal of ``k`` random live filters of that layer, ``draws`` times:
the top-k drop is reported with the random drops' mean, 95th percentile and the share of
random drops below it. A target *passes* when its top-k drop on its own images is above the
random drops' 95th percentile in every variant.

A class's score is its logit (binary models: ``z`` for the positive class, ``-z`` for the
other, the log-odds of each) and its probability (sigmoid / softmax). Every removal shares the
same forward pass per batch (images decoded once), and the random draws are shared by all
targets of a layer, so a layer costs ``1 + variants x (targets + draws)`` forwards per batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.activations import _unpack
from isic_tracking.interpret.hooks import eval_mode
from isic_tracking.models import get_layer
from isic_tracking.utils import progress

VARIANTS: tuple[str, ...] = ("zero", "mean")
SCORES: tuple[str, ...] = ("logit", "prob")
#: Columns of :func:`ablation_table`.
ABLATION_COLUMNS = [
    *("kind", "name", "layer", "variant", "score", "images", "k", "filters", "n_images"),
    *("drop", "random_mean", "random_q95", "percentile", "n_draws", "passed"),
]


@dataclass(frozen=True)
class AblationTarget:
    """One set of filters to remove and where its effect is measured.

    Attributes:
        kind: ``class`` or ``artifact``.
        name: the class or artifact.
        layer: the ranked layer (its response module is hooked).
        filters: the top-k filters of the target.
        score: index of the class whose score is measured.
        own: bool ``[N]``: the images the filters were named for (a class's images; the
            malignant images that carry the artifact).
        other: bool ``[N]``: the images to contrast (the other classes' images; the malignant
            images without the artifact).
    """

    kind: str
    name: str
    layer: str
    filters: tuple[int, ...]
    score: int
    own: np.ndarray
    other: np.ndarray


@dataclass
class AblationPass:
    """The scores of one pass over the images: ``base`` ``[N, K]`` logits without removal,
    ``removed`` ``[S, V, N, K]`` logits per removed set and variant; ``labels``, ``indices``
    ``[N]`` as the loader yielded them."""

    base: Tensor
    removed: Tensor
    labels: Tensor
    indices: Tensor


class _Replace:
    """Forward hook that overwrites some channels of a module's output (nothing when unset)."""

    def __init__(self) -> None:
        self.channels: list[int] = []
        self.values: Tensor | None = None

    def __call__(self, _module: nn.Module, _inputs, output: Tensor) -> Tensor | None:
        if not self.channels:
            return None
        out = output.clone()
        shape = (-1,) + (1,) * (out.dim() - 2)
        out[:, self.channels] = self.values[self.channels].to(out.dtype).view(shape)
        return out


@contextlib.contextmanager
def replacing(model: nn.Module, module: str) -> Iterator[_Replace]:
    """A :class:`_Replace` hook on ``module`` for the block; removed afterwards, also on error."""
    hook = _Replace()
    handle = get_layer(model, module).register_forward_hook(hook)
    try:
        yield hook
    finally:
        handle.remove()


def removal_values(means: Tensor, variant: str) -> Tensor:
    """What a removed channel is set to: ``0`` (``zero``) or its mean activation (``mean``)."""
    if variant == "zero":
        return torch.zeros_like(means)
    if variant == "mean":
        return means
    raise IsicInputError(f"unknown ablation variant {variant!r}; choose from {VARIANTS}")


def ablation_pass(
    model: nn.Module,
    loader: Iterable,
    module: str,
    channel_sets: Sequence[Sequence[int]],
    means: Tensor,
    variants: Sequence[str] = VARIANTS,
    device: str | torch.device = "cpu",
) -> AblationPass:
    """The model's logits over ``loader`` as is and with each channel set of ``module``'s
    output removed in each variant; images are read once, every removal reuses the batch.

    Args:
        model: a classifier returning ``[B, K]`` logits.
        loader: ``(x, y)`` or ``(x, y, idx)`` batches of normalized images.
        module: qualified name of the hooked module (a layer's response module).
        channel_sets: the sets to remove, one forward each per variant.
        means: ``[C]`` mean activation per channel (the ``mean`` variant's values).
        variants: any of :data:`VARIANTS`.
    """
    values = [removal_values(means.float().to(device), v) for v in variants]
    base, removed, labels, indices = [], [], [], []
    seen = 0
    model.to(device)
    with eval_mode(model), replacing(model, module) as hook, torch.inference_mode():
        for batch in progress(loader, desc=f"ablation {module}"):
            x, y, idx = _unpack(batch)
            x = x.to(device)
            hook.channels = []
            base.append(model(x).float().cpu())
            per_set = []
            for channels in channel_sets:
                hook.channels = [int(c) for c in channels]
                per_variant = []
                for v in values:
                    hook.values = v
                    per_variant.append(model(x).float().cpu())
                per_set.append(torch.stack(per_variant))
            removed.append(torch.stack(per_set) if per_set else torch.empty(0))
            labels.append(torch.as_tensor(y).reshape(-1).long())
            n = int(x.shape[0])
            indices.append(torch.arange(seen, seen + n) if idx is None else torch.as_tensor(idx))
            seen += n
    if seen == 0:
        raise IsicInputError("the loader yielded no images: is the split empty?")
    removed_all = torch.cat(removed, dim=2) if channel_sets else torch.empty(0)
    return AblationPass(torch.cat(base), removed_all, torch.cat(labels), torch.cat(indices))


def class_scores(logits: Tensor, kind: str) -> Tensor:
    """``[..., K]`` scores per class from ``[..., L]`` logits: ``logit`` (a single binary logit
    ``z`` becomes ``[-z, z]``, the log-odds of each class) or ``prob`` (sigmoid / softmax)."""
    if logits.shape[-1] == 1:
        z = logits[..., 0]
        pair = torch.stack([-z, z], dim=-1)
        return pair if kind == "logit" else torch.sigmoid(pair)
    if kind == "logit":
        return logits
    if kind == "prob":
        return torch.softmax(logits, dim=-1)
    raise IsicInputError(f"unknown score {kind!r}; choose from {SCORES}")


def random_sets(
    live: np.ndarray, k: int, draws: int, seed: int | Sequence[int]
) -> list[tuple[int, ...]]:
    """``draws`` sets of ``k`` distinct live filters (indices where ``live`` is True), seeded."""
    pool = np.flatnonzero(live)
    if len(pool) < k:
        raise IsicInputError(
            f"ablate_k={k} but the layer has {len(pool)} live filters; lower ablate_k"
        )
    rng = np.random.default_rng(seed)
    return [tuple(sorted(int(f) for f in rng.choice(pool, k, replace=False))) for _ in range(draws)]


def _mean_drop(base: Tensor, removed: Tensor, rows: np.ndarray, score: int) -> Tensor:
    """Mean over ``rows`` of ``base - removed`` at class ``score`` (``removed`` ``[..., N, K]``)."""
    sel = torch.as_tensor(rows, dtype=torch.bool)
    return (base[sel, score] - removed[..., sel, score]).mean(dim=-1)


def top_filters(top: pd.DataFrame, key: str, layer: str, k: int) -> dict[str, tuple[int, ...]]:
    """``{class or group: its filters of rank <= k in layer, sorted}`` from a top-N table."""
    rows = top[(top["layer"] == layer) & (top["rank"] <= k)].sort_values("rank")
    return {
        str(name): tuple(sorted(int(f) for f in d["filter"]))
        for name, d in rows.groupby(key, sort=False)
    }


def class_targets(
    top: pd.DataFrame, layer: str, k: int, labels: np.ndarray, classes: Sequence[str]
) -> list[AblationTarget]:
    """One target per class with ranked filters in ``layer``: its own images against the
    others' (``labels`` ``[N]`` index ``classes``, in data-set order)."""
    labels = np.asarray(labels)
    names = [str(c) for c in classes]
    return [
        AblationTarget("class", name, layer, filters, names.index(name), labels == i, labels != i)
        for name, filters in top_filters(top, "class", layer, k).items()
        for i in [names.index(name)]
    ]


def artifact_targets(
    top: pd.DataFrame,
    layer: str,
    k: int,
    members: pd.DataFrame,
    labels: np.ndarray,
    malignant: int,
) -> list[AblationTarget]:
    """One target per artifact group with ranked filters in ``layer`` and malignant images
    that carry it: the malignant score on those images against malignant images without it
    (``members`` bool ``[N, groups]``, ``labels`` ``[N]``, both in data-set order)."""
    mal = np.asarray(labels) == malignant
    out = []
    for name, filters in top_filters(top, "group", layer, k).items():
        if name not in members.columns:
            continue
        has = members[name].to_numpy(dtype=bool)
        if (mal & has).any():
            out.append(AblationTarget("artifact", name, layer, filters, malignant, mal & has,
                                      mal & ~has))  # fmt: skip
    return out


def _drop_row(
    target: AblationTarget, images: str, top: Tensor, rand: Tensor, n: int
) -> dict[str, object]:
    r = rand.numpy()
    drop = float(top)
    q95 = float(np.quantile(r, 0.95)) if len(r) else np.nan
    return {
        "kind": target.kind, "name": target.name, "layer": target.layer, "images": images,
        "k": len(target.filters), "filters": " ".join(map(str, target.filters)), "n_images": n,
        "drop": drop, "random_mean": float(r.mean()) if len(r) else np.nan, "random_q95": q95,
        "percentile": float((r < drop).mean()) if len(r) else np.nan, "n_draws": len(r),
        "passed": bool(drop > q95), "random": r,
    }  # fmt: skip


def ablation_table(
    result: AblationPass,
    targets: Sequence[AblationTarget],
    variants: Sequence[str] = VARIANTS,
) -> pd.DataFrame:
    """The drops of every target (columns :data:`ABLATION_COLUMNS`).

    ``result.removed`` holds the targets' sets first (in order), then the random draws. One
    row per target, variant, score (``logit``, ``prob``) and images (``own``, ``other``; a side
    without images is left out); ``drop`` is the mean over those images of the score before
    minus after removing the target's filters, ``random_*`` the same for the random sets,
    whose drops are kept in the last column, ``random`` (an array per row, for figures).
    """
    n_t = len(targets)
    idx = result.indices.numpy()
    rows = []
    for score in SCORES:
        base = class_scores(result.base, score)
        removed = class_scores(result.removed, score)
        for ti, t in enumerate(targets):
            for vi, variant in enumerate(variants):
                for images, mask in (("own", t.own), ("other", t.other)):
                    sel = np.asarray(mask, dtype=bool)[idx]
                    if not sel.any():
                        continue
                    top = _mean_drop(base, removed[ti, vi], sel, t.score)
                    rand = _mean_drop(base, removed[n_t:, vi], sel, t.score)
                    row = _drop_row(t, images, top, rand, int(sel.sum()))
                    rows.append({**row, "variant": variant, "score": score})
    return pd.DataFrame(rows, columns=[*ABLATION_COLUMNS, "random"])


def ablation_verdicts(table: pd.DataFrame) -> pd.DataFrame:
    """Per target (``kind, name, layer``): ``passed`` when its top-k logit drop on its own
    images is above the random draws' 95th percentile in every variant; with those drops."""
    own = table[(table["images"] == "own") & (table["score"] == "logit")]
    rows = []
    for (kind, name, layer), d in own.groupby(["kind", "name", "layer"], sort=False):
        row = {"kind": kind, "name": name, "layer": layer, "passed": bool(d["passed"].all())}
        for r in d.itertuples(index=False):
            row[f"drop_{r.variant}"] = r.drop
            row[f"random_q95_{r.variant}"] = r.random_q95
            row[f"percentile_{r.variant}"] = r.percentile
        rows.append(row)
    return pd.DataFrame(rows)
