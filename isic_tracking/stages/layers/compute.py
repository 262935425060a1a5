"""The ``layers`` stage's computation, without MLflow: a fine-tuned model and its base on the
same natural images, per layer (shallow to deep) every measure of
:mod:`isic_tracking.interpret.layer_measures`, with 95 % bootstrap intervals over images where
a measure depends on the sample.

One pass over the images feeds both models and keeps, per layer, the streamed CKA sums (over
sampled spatial positions), the pooled activations (for the probes and the top-k filters) and
the fine-tuned model's class scores; then every reset and re-randomization is one more
forward per layer over the images, read again from ``batches()`` (the runner's images are
decoded once, :class:`~isic_tracking.data.decoded.DecodedImages`): memory does not grow with
the images beyond the pooled activations, which are copied into blocks allocated ahead, and the
CKA sums are added in place (nothing small per batch left between the feature maps the heap
reuses). The peak is one batch's feature maps: the runner picks the batch
(:func:`~isic_tracking.interpret.batch_fit.fitted_batch`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor, nn

from isic_tracking.data.transforms import normalize
from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.featvis import channel, render
from isic_tracking.interpret.filters import rank_auc
from isic_tracking.interpret.hooks import LayerRecorder, frozen_eval
from isic_tracking.interpret.layer_measures import (
    StreamedCKA,
    balanced_accuracy,
    bootstrap_interval,
    pooled,
    positions,
    probe_predictions,
    relative_weight_change,
    swapped_layer,
    top_k_jaccard,
)
from isic_tracking.interpret.row_blocks import RowBlocks, expected_rows
from isic_tracking.train.engine import class_scores

MONITORS = ("roc_auc", "balanced_accuracy", "accuracy", "loss")


@dataclass(frozen=True)
class LayersPlan:
    """What to measure, resolved once by the runner.

    Attributes:
        layers: layer names, shallow to deep.
        task: ``binary`` or ``multiclass``.
        monitor: the task's validation metric without ``val_`` (one of :data:`MONITORS`).
        mean, std: the models' input normalization.
        top_k: filters per layer for the overlap and the pictures.
        n_boot: bootstrap replicates of every interval.
        fv_steps: steps of the before/after pictures (0: none).
        fv_size: their size.
        seed: of the probes' folds, the re-randomization, the bootstrap and the pictures.
        positions: spatial positions per image in the CKA (:func:`positions`).
    """

    layers: tuple[str, ...]
    task: str
    monitor: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    top_k: int = 5
    n_boot: int = 500
    fv_steps: int = 32
    fv_size: int = 64
    seed: int = 0
    positions: int = 64


@dataclass
class LayerRow:
    """The measures of one layer (a row of ``tables/layers.csv``)."""

    depth: int
    layer: str
    cka: float
    weight_change: float
    reset_drop: float
    reset_drop_low: float
    reset_drop_high: float
    rerandomize_drop: float
    rerandomize_drop_low: float
    rerandomize_drop_high: float
    probe_base: float
    probe_base_low: float
    probe_base_high: float
    probe_tuned: float
    probe_tuned_low: float
    probe_tuned_high: float
    topk_jaccard: float
    fv_same: float
    fv_other: float

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


@dataclass
class LayersResult:
    """Every layer's row, the fine-tuned model's metric on the images, and what they were."""

    rows: list[LayerRow]
    metric: float
    n_images: int


def monitor_value(labels: np.ndarray, probs: np.ndarray, monitor: str) -> float:
    """The monitored metric of class probabilities (binary: ``P(class 1)`` ``[n]``;
    multiclass ``[n, C]``), computed directly so thousands of bootstrap replicates stay cheap."""
    multi = probs.ndim == 2
    predicted = probs.argmax(1) if multi else (probs >= 0.5).astype(int)
    if monitor == "balanced_accuracy":
        return balanced_accuracy(labels, predicted)
    if monitor == "accuracy":
        return float((predicted == labels).mean())
    if monitor == "loss":
        p = (
            probs[np.arange(len(labels)), labels]
            if multi
            else np.where(labels == 1, probs, 1 - probs)
        )
        return float(-np.log(np.clip(p, 1e-12, 1.0)).mean())
    if monitor == "roc_auc":
        if multi:
            from sklearn.metrics import roc_auc_score

            if len(np.unique(labels)) < probs.shape[1]:
                return float("nan")
            return float(roc_auc_score(labels, probs, multi_class="ovr"))
        # ties count one half (a saturated or collapsed model has many): chance is 0.5
        return float(rank_auc(probs[:, None], labels == 1)[0])
    raise IsicInputError(f"layers cannot score monitor {monitor!r}; use one of {MONITORS}")


def _probs(logits: Tensor, task: str) -> np.ndarray:
    """The scores the training metrics use: ``P(class 1)`` ``[n]`` (binary), else ``[n, C]``."""
    scores = class_scores(logits, task)
    return (scores.flatten() if task == "binary" else scores).numpy()


@dataclass
class _Pass:
    """What one pass over the images keeps: per-image rows in blocks allocated ahead
    (:class:`~isic_tracking.interpret.row_blocks.RowBlocks`), so that nothing small per
    batch stays between the feature maps the allocator reuses."""

    labels: np.ndarray
    cka: dict[str, StreamedCKA]
    tuned: dict[str, RowBlocks]
    base: dict[str, RowBlocks]
    logits: RowBlocks


@torch.no_grad()
def _one_pass(
    model: nn.Module, base: nn.Module, batches: Iterable[tuple[Tensor, Tensor]], plan: LayersPlan
) -> _Pass:
    """Both models on every image: streamed CKA sums, pooled activations, the model's logits."""
    layers = list(plan.layers)
    rows = expected_rows(batches)
    acc = _Pass(np.empty(0, int), {n: StreamedCKA() for n in layers},
                {n: RowBlocks(rows) for n in layers}, {n: RowBlocks(rows) for n in layers},
                RowBlocks(rows))  # fmt: skip
    labels = RowBlocks(rows)
    device = next(model.parameters()).device
    depth = {n: i for i, n in enumerate(layers)}
    batch = [0]

    def keep(name: str, out: Tensor) -> tuple[Tensor, Tensor]:
        # the same positions in both models: seeded by (seed, batch, layer)
        seed = (plan.seed * 1_000_003 + batch[0] * 1_009 + depth.get(name, 0)) % 2**31
        return pooled(out).cpu(), positions(out, plan.positions, seed).cpu()

    same = base is model  # one set of hooks: a second recorder on it would stop the first
    with (
        LayerRecorder(model, [*layers, ""], keep) as rec_t,
        LayerRecorder(base, [] if same else layers, keep) as rec_b,
    ):
        for x, y, *_ in batches:
            x = normalize(x.float(), plan.mean, plan.std).to(device)
            t = rec_t(x)
            b = t if same else rec_b(x)
            batch[0] += 1
            for n in layers:
                acc.cka[n].update(t[n][1], b[n][1])
                acc.tuned[n].add(t[n][0])
                acc.base[n].add(b[n][0])
            acc.logits.add(t[""][0])
            labels.add(torch.as_tensor(y).long().reshape(-1))
    joined = labels.joined()
    if joined is None:
        raise IsicInputError("layers: the analysed split has no images")
    acc.labels = joined.numpy()
    return acc


@torch.no_grad()
def _swap_scores(model, base, layer, batches, plan) -> dict[str, np.ndarray]:
    """Class probabilities with ``layer`` reset to the base and re-randomized: one more pass
    over the images each (``batches()`` reads them again; keeping every input in memory
    would grow with the images, 600 KB each at 224 px)."""
    device = next(model.parameters()).device
    out = {}
    for name, source in (("reset", base), ("rerandomize", None)):
        images = batches()
        logits = RowBlocks(expected_rows(images))
        with swapped_layer(model, layer, source, seed=plan.seed):
            for x, *_ in images:
                logits.add(model(normalize(x.float(), plan.mean, plan.std).to(device)).cpu())
        out[name] = _probs(logits.joined(), plan.task)
    return out


def _drop(labels, full, swapped, plan) -> tuple[float, float, float]:
    """Metric of the fine-tuned model minus the swapped one (losses: swapped minus model, so a
    positive drop always means worse), with a paired bootstrap interval."""
    sign = -1.0 if plan.monitor == "loss" else 1.0

    def stat(idx):
        return sign * (monitor_value(labels[idx], full[idx], plan.monitor)
                       - monitor_value(labels[idx], swapped[idx], plan.monitor))  # fmt: skip

    lo, hi = bootstrap_interval(labels, stat, plan.n_boot, plan.seed)
    return stat(np.arange(len(labels))), lo, hi


def _probe(features: Tensor, labels: np.ndarray, plan: LayersPlan) -> tuple[float, float, float]:
    predicted = probe_predictions(features.numpy(), labels, plan.seed)
    lo, hi = bootstrap_interval(
        labels, lambda idx: balanced_accuracy(labels[idx], predicted[idx]), plan.n_boot, plan.seed
    )
    return balanced_accuracy(labels, predicted), lo, hi


def picture_similarity(model: nn.Module, base: nn.Module, layer: str, channels: Sequence[int],
                       plan: LayersPlan) -> tuple[float, float]:  # fmt: skip
    """Pictures of the same filters rendered in both models (same seed and settings): the mean
    correlation of a filter's picture before and after (same), and of different filters'
    pictures across the models (other: the baseline a "same" value must beat)."""
    if plan.fv_steps <= 0 or len(channels) < 2:
        return float("nan"), float("nan")
    pics = []
    for m in (model, base):
        res = render(m, channel(layer, list(channels)), size=plan.fv_size, steps=plan.fv_steps,
                     seed=plan.seed, mean=plan.mean, std=plan.std,
                     device=next(m.parameters()).device)  # fmt: skip
        flat = res.images.flatten(1).double()
        flat = flat - flat.mean(1, keepdim=True)
        pics.append(flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-12))
    corr = pics[0] @ pics[1].T
    same = float(corr.diagonal().mean())
    off = ~torch.eye(len(channels), dtype=torch.bool)
    return same, float(corr[off].mean())


def compare_layers(
    model: nn.Module,
    base: nn.Module,
    batches: Callable[[], Iterable[tuple[Tensor, Tensor]]],
    plan: LayersPlan,
) -> LayersResult:
    """Every measure for every layer of ``plan`` (see the module docstring)."""
    with frozen_eval(model), frozen_eval(base):
        acc = _one_pass(model, base, batches(), plan)
        labels = acc.labels
        full = _probs(acc.logits.joined(), plan.task)
        rows = []
        for depth, layer in enumerate(plan.layers):
            t, b = acc.tuned[layer].joined(), acc.base[layer].joined()
            swaps = _swap_scores(model, base, layer, batches, plan)
            top = torch.topk(t.mean(0), min(plan.top_k, t.shape[1])).indices.tolist()
            rows.append(LayerRow(
                depth, layer, acc.cka[layer].value(), relative_weight_change(model, base, layer),
                *_drop(labels, full, swaps["reset"], plan),
                *_drop(labels, full, swaps["rerandomize"], plan),
                *_probe(b, labels, plan), *_probe(t, labels, plan),
                top_k_jaccard(t.mean(0), b.mean(0), plan.top_k),
                *picture_similarity(model, base, layer, top, plan),
            ))  # fmt: skip
    return LayersResult(rows, monitor_value(labels, full, plan.monitor), len(labels))
