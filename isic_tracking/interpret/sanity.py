"""Path similarity: do feature visualizations activate a model like natural images do?

Geirhos et al. (2023, "Don't trust your eyes: on the (un)reliability of feature
visualizations") compare, layer by layer along the processing path, the activations caused
by a feature visualization with those caused by natural images of its class, using
Spearman's rank correlation. The thesis (§4.4.4, §5.4.2, §6.4.2, Figs. 33–37) applied this
to skin-lesion classifiers. A similarity only means something next to baselines, so every
curve is computed with the same code for

- ``natural_same_class``: each natural image vs the *other* natural images of its class,
- ``natural_other_classes``: each natural image vs the natural images of the other classes,
- ``noise``: random-noise images vs the natural images of the visualizations' classes,
- ``unregularized``: visualizations rendered without regularization vs natural images, and
  ``unregularized_vs_regularized``: each of them vs its regularized twin (same objective).

**Activation vector.** A layer's output ``[C, H, W]`` is reduced to one number per channel
(``pooling="mean"`` by default, ``"max"`` or ``"flatten"`` on request). Spatial pooling
makes the vector independent of *where* a feature appears: a visualization is optimized
for a channel, not for the spatial layout of a lesion photo, so comparing positions would
measure alignment rather than which features are present. It also keeps ``C`` floats per
layer and image (VGG16: at most 512) instead of up to ``64 x 224 x 224``. All images are
resized to the model's input size first, so the receptive fields cover the same fraction
of every image.

Everything is vectorized: one forward per batch hooks all layers (stopping after the
deepest), and per layer one batched similarity op covers every (query, natural) pair.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.choices import POOLINGS  # noqa: F401 (re-exported)
from isic_tracking.interpret.hooks import LayerRecorder, eval_mode
from isic_tracking.interpret.inputs import to_model_input
from isic_tracking.interpret.similarity import METRICS, similarity
from isic_tracking.utils import progress

#: Curve names, in plotting order; ``visualization`` is the quantity of interest.
COMPARISONS: tuple[str, ...] = (
    "visualization",
    "natural_same_class",
    "natural_other_classes",
    "noise",
    "unregularized",
    "unregularized_vs_regularized",
)


# --------------------------------------------------------------------------- activations


def _pool(out: Tensor, pooling: str) -> Tensor:
    out = out.detach().float()
    if out.dim() == 2 or pooling == "flatten":  # a view: the recorder copies it when needed
        return out.flatten(1)
    dims = (1,) if out.dim() == 3 else tuple(range(2, out.dim()))  # [B, T, C] tokens
    return out.mean(dims) if pooling == "mean" else out.amax(dims)


def activation_vectors(
    model: nn.Module,
    images: Tensor,
    layers: Sequence[str],
    *,
    mean: Sequence[float],
    std: Sequence[float],
    image_size: int | None = None,
    pooling: str = "mean",
    batch_size: int = 32,
    device: str | torch.device | None = None,
) -> dict[str, Tensor]:
    """One activation vector per image and layer, from one hooked forward per batch.

    Args:
        model: the classifier (put in eval mode for the call, its mode restored after).
        images: ``[N, 3, H, W]`` in ``[0, 1]`` (any device; moved batch by batch).
        layers: qualified module names; an unknown name raises :class:`IsicInputError`.
        mean, std: the model's input normalization.
        image_size: resize every image to this square size first (the model's input size).
        pooling: ``"mean"`` (spatial mean per channel, default), ``"max"`` or ``"flatten"``
            (the whole feature map). ``[B, T, C]`` token outputs are pooled over tokens.
        batch_size: images per forward.
        device: where the forward runs (default: the model's device).

    Returns:
        ``{layer: [N, D] float32}`` on ``device``, in the order of ``layers``. The forward
        stops after the deepest layer; a module that runs twice before that (ResNet's shared
        ReLU) is refused (the rules of :mod:`.hooks`).
    """
    if pooling not in POOLINGS:
        raise IsicInputError(f"unknown pooling {pooling!r}; choose one of {POOLINGS}")
    names = list(dict.fromkeys(layers))
    if not names:
        raise IsicInputError("no layer to compare: pass at least one layer name")
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    chunks: dict[str, list[Tensor]] = {n: [] for n in names}
    recorder = LayerRecorder(model, names, lambda _n, out: _pool(out, pooling))
    with eval_mode(model), recorder, torch.no_grad():
        for start in progress(range(0, images.shape[0], batch_size), desc="activations"):
            x = images[start : start + batch_size].to(device)
            for n, v in recorder(to_model_input(x, mean, std, image_size)).items():
                chunks[n].append(v)
    return {n: torch.cat(c) for n, c in chunks.items()}


# --------------------------------------------------------------------------- path similarity


def _masked_mean(s: Tensor, mask: Tensor) -> Tensor:
    """Row means of ``s`` over ``mask``, skipping NaN; NaN for a row with nothing to average."""
    keep = mask & ~torch.isnan(s)
    total = torch.where(keep, s, torch.zeros_like(s)).sum(dim=1)
    count = keep.sum(dim=1)
    return torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, float("nan")))


def path_similarity(
    query: Mapping[str, Tensor],
    natural: Mapping[str, Tensor],
    query_class: Tensor,
    natural_class: Tensor,
    metric: str = "spearman",
) -> Tensor:
    """Per layer, each query's mean similarity to the natural images of its class.

    Args:
        query: ``{layer: [V, D]}`` activation vectors of visualizations (or noise images).
        natural: ``{layer: [N, D]}`` of natural images, same layers.
        query_class: ``[V]`` target class of each query.
        natural_class: ``[N]`` class of each natural image.
        metric: ``spearman`` | ``pearson`` | ``cosine``.

    Returns:
        ``[L, V]`` in the order of ``query``'s layers.
    """
    rows = []
    for layer, q in query.items():
        n = natural[layer]
        same = query_class.to(q.device)[:, None] == natural_class.to(q.device)[None, :]
        rows.append(_masked_mean(similarity(q, n, metric), same))
    return torch.stack(rows)


def natural_baselines(
    natural: Mapping[str, Tensor], natural_class: Tensor, metric: str = "spearman"
) -> dict[str, Tensor]:
    """Natural vs natural: per layer and image, mean similarity to its class and to the rest.

    Returns ``{"natural_same_class": [L, N], "natural_other_classes": [L, N]}``; an image is
    never compared with itself.
    """
    same_rows, other_rows = [], []
    for act in natural.values():
        c = natural_class.to(act.device)
        eq = c[:, None] == c[None, :]
        eye = torch.eye(len(c), dtype=torch.bool, device=act.device)
        s = similarity(act, act, metric)
        same_rows.append(_masked_mean(s, eq & ~eye))
        other_rows.append(_masked_mean(s, ~eq))
    return {
        "natural_same_class": torch.stack(same_rows),
        "natural_other_classes": torch.stack(other_rows),
    }


def paired_similarity(
    a: Mapping[str, Tensor], b: Mapping[str, Tensor], metric: str = "spearman"
) -> Tensor:
    """Per layer, similarity of ``a[i]`` with ``b[i]`` (e.g. unregularized vs regularized
    twin): ``[L, V]``."""
    return torch.stack([similarity(x, b[layer], metric, paired=True) for layer, x in a.items()])


def layer_correlation(acts: Mapping[str, Tensor], metric: str = "spearman") -> Tensor:
    """Layer x layer correlation of the visualizations' activations (Figs. 36–37).

    Layers have different widths, so their activation vectors cannot be correlated
    directly. Instead each layer is summarized by how it relates the visualizations to
    each other, its ``[V, V]`` similarity matrix, and two layers are compared by the rank
    correlation of those matrices' upper triangles (representational similarity analysis,
    Kriegeskorte et al. 2008): 1 means both layers order the visualizations' pairwise
    similarities identically.

    Args:
        acts: ``{layer: [V, D]}`` with ``V >= 3`` (at least 3 pairs).
        metric: used within each layer; the comparison of layers is always Spearman.

    Returns:
        ``[L, L]``, symmetric, ones on the diagonal (NaN for a degenerate layer).
    """
    first = next(iter(acts.values()))
    v = first.shape[0]
    if v < 3:
        raise IsicInputError(f"layer correlation needs at least 3 visualizations, got {v}")
    iu = torch.triu_indices(v, v, offset=1, device=first.device)
    tri = torch.stack([similarity(x, x, metric)[iu[0], iu[1]] for x in acts.values()])
    bad = torch.isnan(tri).any(dim=1)  # a layer with a constant vector: undefined
    tri = torch.nan_to_num(tri, nan=0.0)
    corr = similarity(tri, tri, "spearman")
    corr[bad] = float("nan")
    corr[:, bad] = float("nan")
    return corr


# --------------------------------------------------------------------------- analysis


@dataclass
class PathSimilarityResult:
    """Everything the path-similarity analysis produces.

    Attributes:
        scores: one row per (comparison, layer, item): ``comparison, layer, depth, item,
            target, similarity`` (item = visualization / image index within its set).
        summary: per (comparison, layer): ``mean, std, median, n`` over items.
        layer_corr: ``[L, L]`` layer correlation of the visualizations (None with < 3).
        layers: layer names, shallow to deep.
        metric: the similarity metric.
        vectors: the compared activation vectors (standardized when asked), ``{set:
            ({layer: [Q, D]}, classes [Q])}`` for ``natural``, ``visualization``, ``noise``
            and each extra set: what :mod:`.versus_noise` bootstraps.
    """

    scores: pd.DataFrame
    summary: pd.DataFrame
    layer_corr: Tensor | None
    layers: list[str]
    metric: str
    vectors: dict[str, tuple[dict[str, Tensor], Tensor]] = field(default_factory=dict)


def _long(comparison: str, values: Tensor, layers: list[str], target: Tensor) -> pd.DataFrame:
    v = values.detach().cpu().numpy()
    n_items = v.shape[1]
    return pd.DataFrame(
        {
            "comparison": comparison,
            "layer": np.repeat(layers, n_items),
            "depth": np.repeat(np.arange(len(layers)), n_items),
            "item": np.tile(np.arange(n_items), len(layers)),
            "target": np.tile(target.detach().cpu().numpy(), len(layers)),
            "similarity": v.reshape(-1),
        }
    )


def summarize(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation, median and count of ``similarity`` per comparison and layer."""
    g = scores.groupby(["comparison", "depth", "layer"], sort=False)["similarity"]
    out = g.agg(mean="mean", std="std", median="median", n="count").reset_index()
    order = {c: i for i, c in enumerate(COMPARISONS)}
    out["_o"] = out["comparison"].map(order).fillna(len(order))
    return out.sort_values(["_o", "depth"]).drop(columns="_o").reset_index(drop=True)


#: metric name prefix of each comparison (``similarity/<layer>``, ``baseline_noise_mean``...)
METRIC_PREFIX = {
    "visualization": "similarity",
    "natural_same_class": "baseline_same_class",
    "natural_other_classes": "baseline_other_classes",
    "noise": "baseline_noise",
    "unregularized": "baseline_unregularized",
    "unregularized_vs_regularized": "unregularized_vs_regularized",
    "class_logit": "similarity_class_logit",
}


def summary_metrics(summary: pd.DataFrame) -> dict[str, float]:
    """Per comparison and layer its mean (``<prefix>/<layer>``), and over layers (``_mean``)."""
    metrics = {}
    for r in summary.itertuples():
        metrics[f"{METRIC_PREFIX.get(r.comparison, r.comparison)}/{r.layer}"] = r.mean
    for comp, part in summary.groupby("comparison"):
        metrics[f"{METRIC_PREFIX.get(comp, comp)}_mean"] = part["mean"].mean()
    return metrics


def _check_queries(
    metric: str, visualizations: Tensor, vis_class: Tensor, unregularized: Tensor | None
) -> None:
    """A clear error for an unknown metric, a class per visualization missing, or
    unregularized pictures that are not the visualizations' twins."""
    if metric not in METRICS:
        raise IsicInputError(f"unknown metric {metric!r}; choose one of {METRICS}")
    if len(visualizations) != len(vis_class):
        raise IsicInputError(f"{len(visualizations)} visualizations but {len(vis_class)} classes")
    if unregularized is not None and unregularized.shape[0] != visualizations.shape[0]:
        raise IsicInputError(
            f"{unregularized.shape[0]} unregularized visualizations for "
            f"{visualizations.shape[0]} regularized ones: they must be twins, row by row"
        )


def path_similarity_analysis(
    model: nn.Module,
    layers: Sequence[str],
    natural_images: Tensor,
    natural_class: Tensor,
    visualizations: Tensor,
    vis_class: Tensor,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    image_size: int | None = None,
    unregularized: Tensor | None = None,
    noise: Tensor | None = None,
    extra: Mapping[str, tuple[Tensor, Tensor]] | None = None,
    metric: str = "spearman",
    pooling: str = "mean",
    standardize: bool = False,
    batch_size: int = 32,
    device: str | torch.device | None = None,
) -> PathSimilarityResult:
    """Path similarity of visualizations and every baseline across ``layers``.

    Args:
        model: the classifier.
        layers: layer names, shallow to deep (e.g. ``conv_layers(model)``).
        natural_images: ``[N, 3, H, W]`` in ``[0, 1]``.
        natural_class: ``[N]`` their classes.
        visualizations: ``[V, 3, h, w]`` in ``[0, 1]`` (e.g. the top-5 per class).
        vis_class: ``[V]`` target class of each visualization.
        mean, std, image_size: the model's input normalization and size.
        unregularized: ``[V, 3, h, w]`` the same objectives rendered without regularization
            (row ``i`` twin of ``visualizations[i]``), or None.
        noise: ``[V', 3, h, w]`` noise images, compared with the natural images of the classes
            ``vis_class`` cycled over; None for no noise baseline.
        extra: more query sets compared like the visualizations, ``{name: (images,
            classes)}``, e.g. ``{"class_logit": ...}`` for class-logit visualizations next
            to channel ones; each becomes a comparison called ``name``.
        metric: ``spearman`` (default), ``pearson`` or ``cosine``.
        pooling: see :func:`activation_vectors`.
        standardize: z-score every unit by its mean and standard deviation over the natural
            images before comparing. Raw vectors (the default, as Geirhos et al.) share a
            strong common component, each channel's typical level, which lifts every
            comparison (noise included) towards 1 in deep layers; standardized vectors
            compare how each input *deviates* from typical natural activity.
        batch_size, device: forward settings.

    Returns:
        :class:`PathSimilarityResult`.
    """
    _check_queries(metric, visualizations, vis_class, unregularized)
    layers = list(layers)
    kw = dict(
        layers=layers, mean=mean, std=std, image_size=image_size, pooling=pooling,
        batch_size=batch_size, device=device,
    )  # fmt: skip
    nat = activation_vectors(model, natural_images, **kw)
    ref = {k: (v.mean(0), v.std(0).clamp_min(1e-8)) for k, v in nat.items()}

    def acts_of(images: Tensor) -> dict[str, Tensor]:
        acts = activation_vectors(model, images, **kw)
        if standardize:
            acts = {k: (v - ref[k][0]) / ref[k][1] for k, v in acts.items()}
        return acts

    if standardize:
        nat = {k: (v - ref[k][0]) / ref[k][1] for k, v in nat.items()}
    vis = acts_of(visualizations)
    dev = next(iter(nat.values())).device
    nat_c, vis_c = natural_class.to(dev).long(), vis_class.to(dev).long()

    vectors = {"natural": (nat, nat_c), "visualization": (vis, vis_c)}
    frames = [
        _long("visualization", path_similarity(vis, nat, vis_c, nat_c, metric), layers, vis_c)
    ]
    for name, vals in natural_baselines(nat, nat_c, metric).items():
        frames.append(_long(name, vals, layers, nat_c))
    queries: list[tuple[str, Tensor, Tensor]] = []
    if noise is not None:  # compared with the classes of the visualizations, cycled over
        queries.append(("noise", noise, vis_c.repeat(len(noise) // len(vis_c) + 1)[: len(noise)]))
    if unregularized is not None:
        queries.append(("unregularized", unregularized, vis_c))
    queries += [(name, imgs, cls.to(dev).long()) for name, (imgs, cls) in (extra or {}).items()]
    for name, imgs, cls in queries:
        acts = acts_of(imgs)
        frames.append(_long(name, path_similarity(acts, nat, cls, nat_c, metric), layers, cls))
        if name == "unregularized":  # and each twin against its regularized picture
            paired = paired_similarity(acts, vis, metric)
            frames.append(_long("unregularized_vs_regularized", paired, layers, vis_c))
        else:
            vectors[name] = (acts, cls)
    scores = pd.concat(frames, ignore_index=True)
    corr = layer_correlation(vis, metric) if len(visualizations) >= 3 else None
    return PathSimilarityResult(scores, summarize(scores), corr, layers, metric, vectors)
