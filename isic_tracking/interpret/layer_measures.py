"""Per-layer measures of what fine-tuning changed and what a layer contributes, for a model and
the base it was fine-tuned from (same architecture, same layer names).

- **Linear CKA** (Kornblith et al., ICML 2019) between the two models' activations of a layer
  on the same images: ``||YᵀX||²_F / (||XᵀX||_F ||YᵀY||_F)`` with X, Y centred over rows.
  A row is one spatial position of one image (:func:`positions`: a seeded sample of positions,
  the same in both models), not the spatial average, which is blind at the first layer. :class:`StreamedCKA`
  accumulates the sums and cross products over batches in float64, so memory stays at
  ``(p1 + p2)²`` numbers whatever the number of images, and the value equals the one-batch
  formula (not the minibatch estimate of Nguyen et al. 2021, which is biased by batch size).
- **Relative weight change** ``||W_ft − W_base|| / ||W_base||`` over the layer's parameters
  (Matsoukas et al., CVPR 2022).
- **Reset criticality** (Zhang, Bengio & Singer, "Are all layers created equal?", 2019/2022):
  the drop of the task's validation metric when one layer is set back to its base weights
  (or re-randomized) and every other layer stays fine-tuned; :func:`swapped_layer` does the
  swap and undoes it.
- **Probe**: balanced accuracy of a k-nearest-neighbour classifier on the pooled activations,
  out of fold over the analysed images (how decodable the classes are at that layer).
- **Top-k overlap**: Jaccard of the k filters with the highest mean activation, base vs
  fine-tuned.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import Tensor, nn

from isic_tracking.errors import IsicInputError


def pooled(act: Tensor) -> Tensor:
    """One row per image: a conv map ``[n, C, H, W]`` averaged over space, else flattened."""
    return act.float().mean((2, 3)) if act.dim() == 4 else act.float().flatten(1)


def positions(act: Tensor, k: int, seed: int) -> Tensor:
    """One row per (image, spatial position): ``k`` positions of a conv map ``[n, C, H, W]``
    drawn under ``seed`` (the same ones for every image and for both models compared), as
    ``[n * k, C]``; a non-map activation stays one row per image.

    CKA over positions rather than over spatially averaged maps: averaging a conv layer that is
    linear in its input (the first one) leaves a linear function of each image's mean patch,
    which any two such layers share, so pooled CKA stays near 1 however the weights changed."""
    if act.dim() != 4:
        return act.float().flatten(1)
    n, c, h, w = act.shape
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(h * w, generator=gen)[: min(k, h * w)].to(act.device)
    return act.float().flatten(2)[:, :, idx].permute(0, 2, 1).reshape(-1, c)


class StreamedCKA:
    """Linear CKA of two activation matrices fed batch by batch (same images, same order)."""

    def __init__(self) -> None:
        self.n = 0
        self.sx = self.sy = self.xx = self.yy = self.xy = None

    def update(self, x: Tensor, y: Tensor) -> None:
        """Add a batch: ``x`` ``[n, p1]`` and ``y`` ``[n, p2]`` of the same ``n`` images."""
        if len(x) != len(y):
            raise IsicInputError(f"CKA needs the same images: {len(x)} vs {len(y)} rows")
        x, y = x.detach().double().cpu(), y.detach().double().cpu()
        if self.sx is None:
            self.sx, self.sy, self.xx, self.yy, self.xy = (
                x.sum(0),
                y.sum(0),
                x.T @ x,
                y.T @ y,
                y.T @ x,
            )
        else:  # in place: the sums keep their memory (the heap under them is not reshuffled)
            self.sx += x.sum(0)
            self.sy += y.sum(0)
            self.xx.addmm_(x.T, x)
            self.yy.addmm_(y.T, y)
            self.xy.addmm_(y.T, x)
        self.n += len(x)

    def value(self) -> float:
        """The CKA of everything fed so far (NaN when a side is constant)."""
        if self.n < 2:
            raise IsicInputError("CKA needs at least 2 images")
        n, mx, my = self.n, self.sx / self.n, self.sy / self.n
        cxx = self.xx - n * torch.outer(mx, mx)
        cyy = self.yy - n * torch.outer(my, my)
        cxy = self.xy - n * torch.outer(my, mx)
        denom = torch.linalg.norm(cxx) * torch.linalg.norm(cyy)
        if float(denom) <= 0.0:
            return float("nan")
        return float(torch.linalg.norm(cxy) ** 2 / denom)


def layer_parameters(model: nn.Module, layer: str) -> dict[str, Tensor]:
    """The layer's own parameters (weight, bias) by name."""
    return dict(model.get_submodule(layer).named_parameters(recurse=False))


def relative_weight_change(tuned: nn.Module, base: nn.Module, layer: str) -> float:
    """``||W_ft − W_base||_F / ||W_base||_F`` over the layer's parameters together."""
    a, b = layer_parameters(tuned, layer), layer_parameters(base, layer)
    if not b:
        raise IsicInputError(f"layer {layer!r} has no parameters")
    diff = sum(float((a[k].detach().double() - b[k].detach().double()).pow(2).sum()) for k in b)
    norm = sum(float(b[k].detach().double().pow(2).sum()) for k in b)
    return (diff / norm) ** 0.5 if norm > 0 else float("nan")


@contextlib.contextmanager
def swapped_layer(model: nn.Module, layer: str, source: nn.Module | None, seed: int = 0):
    """Within the block, ``layer``'s parameters are ``source``'s (reset to base) or, with
    ``source=None``, freshly initialized under ``seed`` (re-randomized); restored after."""
    module = model.get_submodule(layer)
    saved = {k: v.detach().clone() for k, v in module.named_parameters(recurse=False)}
    with torch.no_grad():
        if source is not None:
            for k, v in source.get_submodule(layer).named_parameters(recurse=False):
                getattr(module, k).copy_(v)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                if not hasattr(module, "reset_parameters"):
                    raise IsicInputError(f"layer {layer!r} cannot be re-initialized")
                module.reset_parameters()
    try:
        yield model
    finally:
        with torch.no_grad():
            for k, v in saved.items():
                getattr(module, k).copy_(v)


def top_k_jaccard(mean_a: Tensor, mean_b: Tensor, k: int) -> float:
    """Jaccard overlap of the ``k`` channels with the highest mean activation in each."""
    k = min(k, len(mean_a))
    a = set(torch.topk(mean_a, k).indices.tolist())
    b = set(torch.topk(mean_b, k).indices.tolist())
    return len(a & b) / len(a | b)


def probe_predictions(
    features: np.ndarray, labels: np.ndarray, seed: int, folds: int = 5, k: int = 5
) -> np.ndarray:
    """Out-of-fold class predictions of a k-nearest-neighbour probe on standardized features
    (stratified folds; fewer when a class has fewer images).

    k-NN, as Matsoukas et al. (CVPR 2022) measure layer by layer, rather than a logistic
    regression: pooled activations of a *random* conv layer already carry each image's mean
    colour, which a linear model on standardized features reads off (0.92 balanced accuracy on
    the synthetic demo's last layer at random init) without saying anything about what the
    layer learned; neighbourhoods in the layer's space do (0.81 at random init, 0.98 after
    fine-tuning)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    smallest = int(np.bincount(labels).min(initial=0)) if len(labels) else 0
    folds = min(folds, max(2, smallest))
    clf = make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=k))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return cross_val_predict(clf, features, labels, cv=cv)


def balanced_accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Mean recall over the classes present in ``labels``."""
    classes = np.unique(labels)
    return float(np.mean([(predicted[labels == c] == c).mean() for c in classes]))


def bootstrap_interval(
    labels: np.ndarray,
    stat,
    n_boot: int = 500,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile interval of ``stat(index array)`` over images resampled with replacement
    within each class (so every replicate keeps the class counts)."""
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    values = []
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(g, len(g)) for g in groups])
        values.append(stat(idx))
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if not len(values):
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))
