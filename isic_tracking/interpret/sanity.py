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
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor, nn

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.similarity import METRICS, similarity
from isic_tracking.models import get_layer
from isic_tracking.utils import progress

POOLINGS: tuple[str, ...] = ("mean", "max", "flatten")
#: Curve names, in plotting order; ``visualization`` is the quantity of interest.
COMPARISONS: tuple[str, ...] = (
    "visualization",
    "natural_same_class",
    "natural_other_classes",
    "noise",
    "unregularized",
    "unregularized_vs_regularized",
)


# --------------------------------------------------------------------------- images


def to_model_input(
    images: Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    image_size: int | None = None,
) -> Tensor:
    """``[B, 3, H, W]`` images in ``[0, 1]`` -> normalized model input (resized if asked)."""
    x = images.float()
    if image_size and tuple(x.shape[-2:]) != (image_size, image_size):
        x = F.interpolate(
            x, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True
        )
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


def load_images(df: pd.DataFrame, image_size: int) -> Tensor:
    """A manifest's images as ``[N, 3, S, S]`` floats in ``[0, 1]``, via the eval transform.

    The same decoding and resize + centre crop as evaluation
    (:func:`isic_tracking.data.transforms.build_transforms` with ``train=False``), without
    the normalization, which :func:`to_model_input` applies.
    """
    from isic_tracking.data.dataset import ManifestDataset
    from isic_tracking.data.transforms import build_transforms

    ds = ManifestDataset(df, build_transforms(image_size, train=False, mean=None))
    if len(ds) == 0:
        return torch.empty(0, 3, image_size, image_size)
    return torch.stack([ds[i][0] for i in progress(range(len(ds)), desc="images")])


def noise_images(n: int, image_size: int, seed: int = 0) -> Tensor:
    """``n`` uniform-noise images ``[n, 3, S, S]`` in ``[0, 1]``: the noise baseline."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, image_size, image_size, generator=g)


def images_per_class(df: pd.DataFrame, n_images: int, classes: Sequence[str]) -> int:
    """``n_images``, or the smallest class's count when a class has fewer (a small split of
    the multiclass demo); never below 2, so :func:`sample_per_class` still names a class
    too small for same-class pairs."""
    counts = df["label_name"].astype(str).value_counts()
    return max(2, min([int(n_images)] + [int(counts.get(c, 0)) for c in classes]))


def sample_per_class(
    df: pd.DataFrame,
    n_images: int,
    classes: Sequence[str],
    seed: int = 0,
    where: str = "the manifest",
) -> pd.DataFrame:
    """``n_images`` random rows of each class (by ``label_name``), in class order.

    Raises:
        IsicInputError: a class has fewer than ``n_images`` rows (or fewer than 2: the
            same-class baseline needs pairs); the message gives every class's count.
    """
    if n_images < 2:
        raise IsicInputError(f"n_images must be >= 2 (same-class pairs), got {n_images}")
    counts = df["label_name"].astype(str).value_counts()
    short = {c: int(counts.get(c, 0)) for c in classes if counts.get(c, 0) < n_images}
    if short:
        have = ", ".join(f"{c}: {int(counts.get(c, 0))}" for c in classes)
        raise IsicInputError(
            f"too few natural images in {where}: "
            + ", ".join(f"class {c!r} has {k}" for c, k in short.items())
            + f", {n_images} needed per class (n_images). Available: {have}. "
            "Lower n_images or choose another split."
        )
    parts = [
        df[df["label_name"].astype(str) == c].sample(n=n_images, random_state=seed) for c in classes
    ]
    return pd.concat(parts).reset_index(drop=True)


# --------------------------------------------------------------------------- activations


class _StopForward(Exception):
    """Raised once every hooked layer has fired: the rest of the network is not needed."""


def _pool(out, pooling: str) -> Tensor:
    if isinstance(out, (tuple, list)):
        out = out[0]
    out = out.detach().float()
    if out.dim() == 2 or pooling == "flatten":  # copy: an inplace ReLU may follow
        return out.flatten(1).clone()
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
        ``{layer: [N, D] float32}`` on ``device``, in the order of ``layers``. A module that
        runs several times per forward (ResNet's shared ReLU) contributes its first call.
    """
    if pooling not in POOLINGS:
        raise IsicInputError(f"unknown pooling {pooling!r}; choose one of {POOLINGS}")
    names = list(dict.fromkeys(layers))
    if not names:
        raise IsicInputError("no layer to compare: pass at least one layer name")
    modules = {n: get_layer(model, n) for n in names}
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    current: dict[str, Tensor] = {}
    chunks: dict[str, list[Tensor]] = {n: [] for n in names}

    def make_hook(name: str):
        def hook(_module, _inputs, output):
            if name not in current:
                current[name] = _pool(output, pooling)
            if len(current) == len(modules):
                raise _StopForward

        return hook

    handles = [m.register_forward_hook(make_hook(n)) for n, m in modules.items()]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            for start in progress(range(0, images.shape[0], batch_size), desc="activations"):
                x = images[start : start + batch_size].to(device)
                current.clear()
                try:
                    model(to_model_input(x, mean, std, image_size))
                except _StopForward:
                    pass
                missing = [n for n in names if n not in current]
                if missing:
                    raise IsicInputError(f"layers {missing} did not run in the forward pass")
                for n in names:
                    chunks[n].append(current[n])
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
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

    Returns:
        ``{"natural_same_class": [L, N], "natural_other_classes": [L, N]}``; an image is
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
    """Per layer, similarity of ``a[i]`` with ``b[i]`` (e.g. unregularized vs regularized twin).

    Returns:
        ``[L, V]``.
    """
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
    """

    scores: pd.DataFrame
    summary: pd.DataFrame
    layer_corr: Tensor | None
    layers: list[str]
    metric: str


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
    if metric not in METRICS:
        raise IsicInputError(f"unknown metric {metric!r}; choose one of {METRICS}")
    if len(visualizations) != len(vis_class):
        raise IsicInputError(f"{len(visualizations)} visualizations but {len(vis_class)} classes")
    if unregularized is not None and unregularized.shape[0] != visualizations.shape[0]:
        raise IsicInputError(
            f"{unregularized.shape[0]} unregularized visualizations for "
            f"{visualizations.shape[0]} regularized ones: they must be twins, row by row"
        )
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

    frames = [
        _long("visualization", path_similarity(vis, nat, vis_c, nat_c, metric), layers, vis_c)
    ]
    for name, vals in natural_baselines(nat, nat_c, metric).items():
        frames.append(_long(name, vals, layers, nat_c))
    if noise is not None:
        noise_c = vis_c.repeat(len(noise) // len(vis_c) + 1)[: len(noise)]
        acts = acts_of(noise)
        frames.append(
            _long("noise", path_similarity(acts, nat, noise_c, nat_c, metric), layers, noise_c)
        )
    if unregularized is not None:
        unreg = acts_of(unregularized)
        frames.append(
            _long("unregularized", path_similarity(unreg, nat, vis_c, nat_c, metric), layers, vis_c)
        )
        frames.append(
            _long(
                "unregularized_vs_regularized",
                paired_similarity(unreg, vis, metric),
                layers,
                vis_c,
            )
        )
    for name, (imgs, cls) in (extra or {}).items():
        acts = acts_of(imgs)
        cls = cls.to(dev).long()
        frames.append(_long(name, path_similarity(acts, nat, cls, nat_c, metric), layers, cls))
    scores = pd.concat(frames, ignore_index=True)
    corr = layer_correlation(vis, metric) if len(visualizations) >= 3 else None
    return PathSimilarityResult(scores, summarize(scores), corr, layers, metric)


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


# --------------------------------------------------------------------------- figures

_STYLE = {
    "visualization": dict(color="C3", lw=2.5, label="visualization vs natural (same class)"),
    "natural_same_class": dict(color="C0", lw=1.5, label="natural vs natural, same class"),
    "natural_other_classes": dict(color="C2", lw=1.5, label="natural vs natural, other classes"),
    "noise": dict(color="0.4", lw=1.5, ls="--", label="noise vs natural"),
    "unregularized": dict(color="C1", lw=1.5, label="unregularized visualization vs natural"),
    "unregularized_vs_regularized": dict(
        color="C4", lw=1.5, ls=":", label="unregularized vs regularized visualization"
    ),
    "class_logit": dict(color="C5", lw=2, label="class-logit visualization vs natural"),
}


def plot_path_similarity(
    summary: pd.DataFrame, metric: str = "spearman", title: str | None = None
) -> Figure:
    """Mean similarity (band: ± one standard deviation) across depth, one line per comparison."""
    layers = summary.drop_duplicates("depth").sort_values("depth")["layer"].tolist()
    fig = Figure(figsize=(max(6.0, 0.35 * len(layers) + 3), 4.5), layout="constrained")
    ax = fig.add_subplot()
    for comp, part in summary.groupby("comparison", sort=False):
        part = part.sort_values("depth")
        style = dict(_STYLE.get(comp, dict(label=comp)))
        x, m, s = part["depth"].to_numpy(), part["mean"].to_numpy(), part["std"].fillna(0)
        ax.plot(x, m, marker="o", ms=3, **style)
        ax.fill_between(x, m - s.to_numpy(), m + s.to_numpy(), color=style.get("color"), alpha=0.12)
    ax.set_xticks(range(len(layers)), layers, rotation=60, ha="right", fontsize=7)
    ax.set_xlabel("layer (shallow → deep)")
    ax.set_ylabel(f"{metric} similarity")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_title(title or "Path similarity of feature visualizations")
    ax.legend(fontsize=7, loc="best")
    return fig


def plot_layer_correlation(corr: Tensor, layers: Sequence[str], title: str | None = None) -> Figure:
    """Heatmap of :func:`layer_correlation`."""
    n = len(layers)
    size = max(4.5, 0.3 * n + 2)
    fig = Figure(figsize=(size + 1, size), layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(corr.detach().cpu().numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(n), layers, rotation=90, fontsize=7)
    ax.set_yticks(range(n), layers, fontsize=7)
    fig.colorbar(im, ax=ax, label="Spearman of the visualizations' similarity matrices")
    ax.set_title(title or "Layer x layer correlation of visualization activations")
    return fig


def plot_image_grid(
    images: Tensor, labels: Sequence[str] | None = None, ncols: int = 6, title: str | None = None
) -> Figure:
    """The visualizations used, one labelled tile each (``[B, 3, H, W]`` in ``[0, 1]``)."""
    n = images.shape[0]
    ncols = max(1, min(ncols, n))
    nrows = max(1, -(-n // ncols))
    fig = Figure(figsize=(1.8 * ncols, 1.9 * nrows + 0.4), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < n:
            ax.imshow(images[i].detach().cpu().permute(1, 2, 0).clamp(0, 1).numpy())
            if labels is not None:
                ax.set_title(labels[i], fontsize=7)
    if title:
        fig.suptitle(title)
    return fig
