"""Attribution towards a class: where in an image (Grad-CAM) and through which filters
(conductance) the model's evidence for the class flows.

The ``filters`` stage names class-specific filters by how often they fire on a class's images
(:mod:`.filters`): a filter can fire often on malignant images and still not move the
malignant logit. Attribution asks the other question, how much each filter (or each image
region) contributes to the class score, and the agreement of the two rankings says whether
the frequency ranking names the filters that matter.

- Grad-CAM (Selvaraju et al. 2017, "Grad-CAM: Visual explanations from deep networks via
  gradient-based localization", ICCV): per image, the layer's channels weighted by the
  spatial mean of the class score's gradient, summed, ReLU'd; upsampled to the image.
- Conductance (Dhamdhere, Sundararajan & Yan 2019, "How important is a neuron?", ICLR):
  integrated gradients of the class score through one unit, from a baseline (zeros: in the
  model's normalized input space, the data set's mean colour) to the image; summed over a
  channel's positions it is the filter's share of ``score(image) - score(baseline)``
  (completeness). Gradient x activation (Shrikumar et al. 2016) is its one-step, baseline-free
  approximation, ``n_steps`` times cheaper.

Why captum (``captum.attr.LayerGradCam``, ``LayerConductance``, ``LayerGradientXActivation``,
``LayerAttribution.interpolate``) rather than pytorch-grad-cam: captum is maintained by the
PyTorch team, its layer methods take any ``nn.Module`` of the model (our response modules:
the BatchNorm after a conv) through hooks it removes again, they run on the CPU, and one
library gives both the maps and the per-unit scores. pytorch-grad-cam covers only the maps.

A binary model has one logit, P(malignant): the score of class 1 is the logit, of class 0 its
negative (:func:`class_score_fn`), so "towards benign" is well defined too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from captum.attr import (
    LayerAttribution,
    LayerConductance,
    LayerGradCam,
    LayerGradientXActivation,
)
from scipy.stats import spearmanr
from torch import Tensor, nn

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.hooks import eval_mode
from isic_tracking.interpret.names import metric_key, safe_name
from isic_tracking.models import get_layer

#: per-filter attribution methods (``FiltersConfig.attribution``), ``none`` switches it off
METHODS: tuple[str, ...] = ("conductance", "grad_x_activation")
RANKING_COLUMNS = ["filter", "score", "rank"]
AGREEMENT_COLUMNS = ["jaccard", "spearman", "n_live"]


def class_score_fn(model: nn.Module) -> Callable[[Tensor], Tensor]:
    """``x -> [B, K]`` class scores: the logits, or ``[-z, z]`` for a single binary logit z."""

    def forward(x: Tensor) -> Tensor:
        out = model(x)
        out = out[:, None] if out.dim() == 1 else out
        return torch.cat([-out, out], dim=1) if out.shape[1] == 1 else out

    return forward


def _batches(images: Tensor, targets: Tensor, batch_size: int, device) -> list:
    if len(images) != len(targets):
        raise IsicInputError(f"{len(images)} images but {len(targets)} targets")
    if batch_size < 1:
        raise IsicInputError(f"batch_size must be >= 1, got {batch_size}")
    return [
        (images[i : i + batch_size].to(device), targets[i : i + batch_size].to(device).long())
        for i in range(0, len(images), batch_size)
    ]


def gradcam_maps(
    model: nn.Module,
    layer: str,
    images: Tensor,
    targets: Tensor,
    *,
    batch_size: int = 32,
) -> Tensor:
    """Grad-CAM of each image towards its target class, at the image's size.

    Args:
        model: the classifier (eval mode for the call, its mode restored after).
        layer: qualified name of the module whose output is attributed (e.g. the last conv's
            response, :func:`~isic_tracking.interpret.response.response_module`).
        images: ``[N, 3, H, W]`` model inputs (normalized as the model expects).
        targets: ``[N]`` class index per image (0 = benign for a binary model).
        batch_size: images per forward/backward (default 32).

    Returns:
        ``[N, H, W]`` float32 on the CPU, ReLU'd, bilinearly upsampled to ``H x W`` and divided
        by each image's maximum (an all-zero map stays zero).
    """
    device = next(model.parameters()).device
    cam = LayerGradCam(class_score_fn(model), get_layer(model, layer))
    maps = []
    with eval_mode(model):
        for x, t in _batches(images, targets, batch_size, device):
            a = cam.attribute(x, target=t, relu_attributions=True).detach()
            a = LayerAttribution.interpolate(a, tuple(x.shape[-2:]), interpolate_mode="bilinear")
            maps.append(a[:, 0].clamp_min(0).float().cpu())
    out = torch.cat(maps) if maps else torch.empty(0, *images.shape[-2:])
    peak = out.flatten(1).amax(dim=1).clamp_min(1e-12) if len(out) else out
    return out / peak[:, None, None] if len(out) else out


def filter_attribution(
    model: nn.Module,
    layer: str,
    images: Tensor,
    targets: Tensor,
    *,
    method: str = "conductance",
    n_steps: int = 16,
    batch_size: int = 32,
) -> Tensor:
    """Each filter's attribution towards each image's target class, summed over positions.

    Args:
        model, layer, images, targets, batch_size: as :func:`gradcam_maps`.
        method: ``conductance`` (integrated gradients through each unit from a zero baseline,
            ``n_steps`` forward/backward passes per image) or ``grad_x_activation`` (one pass).
        n_steps: integration steps of conductance (default 16; Gauss-Legendre).
        batch_size: images per forward/backward; conductance's scaled copies count as images.

    Returns:
        ``[N, C]`` float32 on the CPU (C: the layer's channels). With conductance, each row
        sums to about ``score(image) - score(zeros)``.
    """
    if method not in METHODS:
        raise IsicInputError(f"unknown attribution method {method!r}; choose one of {METHODS}")
    device = next(model.parameters()).device
    module, fn = get_layer(model, layer), class_score_fn(model)
    out = []
    # conductance evaluates n_steps scaled copies of every image: captum's internal batch
    # keeps each forward/backward at batch_size inputs (it must hold 2 x the images given),
    # so memory is that of one batch, not n_steps of them (21 GB at 64 ResNet50 images)
    per_call = max(1, batch_size // 2) if method == "conductance" else batch_size
    with eval_mode(model):
        for x, t in _batches(images, targets, per_call, device):
            if method == "conductance":
                a = LayerConductance(fn, module).attribute(
                    x, baselines=torch.zeros_like(x), target=t, n_steps=n_steps,
                    internal_batch_size=max(2 * len(x), batch_size),
                )  # fmt: skip
            else:
                a = LayerGradientXActivation(fn, module).attribute(x, target=t)
            a = a.detach().float()
            out.append((a.flatten(2).sum(dim=2) if a.dim() > 2 else a).cpu())
    if not out:
        raise IsicInputError("no images to attribute")
    return torch.cat(out)


def mass_in_mask(maps: Tensor, masks: Tensor) -> Tensor:
    """Per image, the share of the (non-negative) attribution mass inside a binary mask.

    Args:
        maps: ``[N, H, W]`` attribution maps (e.g. :func:`gradcam_maps`); negative values are
            clipped to 0.
        masks: ``[N, H, W]`` (or one ``[H, W]`` for all) boolean or 0/1 masks, same size.

    Returns:
        ``[N]`` in ``[0, 1]``; NaN for an image whose map is all zero (no mass to place).
    """
    if masks.dim() == 2:
        masks = masks.expand_as(maps)
    if maps.shape != masks.shape:
        raise IsicInputError(f"maps {tuple(maps.shape)} and masks {tuple(masks.shape)} differ")
    m = maps.float().clamp_min(0).flatten(1)
    total = m.sum(dim=1)
    inside = (m * masks.flatten(1).to(m.dtype).clamp(0, 1)).sum(dim=1)
    return torch.where(total > 0, inside / total.clamp_min(1e-30), torch.nan)


def class_mean_scores(
    scores: Tensor | np.ndarray, labels: Tensor | np.ndarray, class_names: Sequence[str]
) -> pd.DataFrame:
    """``[classes, C]`` mean attribution of each filter over each class's images (NaN for a
    class without images)."""
    s = np.asarray(scores, dtype=np.float64)
    lab = np.asarray(labels).reshape(-1)
    rows = [
        s[lab == k].mean(axis=0) if (lab == k).any() else np.full(s.shape[1], np.nan)
        for k in range(len(class_names))
    ]
    return pd.DataFrame(
        rows,
        index=pd.Index([str(c) for c in class_names], name="class"),
        columns=pd.RangeIndex(s.shape[1], name="filter"),
    )


def attribution_top(
    means: pd.DataFrame, top_n: int, live: np.ndarray | None = None, key: str = "class"
) -> pd.DataFrame:
    """The ``top_n`` live filters of each row of ``means`` by mean attribution (ties: lower
    index): rows ``<key>, filter, score, rank``."""
    if top_n < 1:
        raise IsicInputError(f"top_n must be >= 1, got {top_n}")
    cand = np.flatnonzero(np.ones(means.shape[1], bool) if live is None else live)
    rows = []
    for g in means.index:
        v = means.loc[g].to_numpy()[cand]
        order = cand[np.lexsort((cand, -np.nan_to_num(v, nan=-np.inf)))[:top_n]]
        for rank, f in enumerate(order, start=1):
            rows.append((g, int(f), float(means.loc[g].iloc[f]), rank))
    return pd.DataFrame(rows, columns=[key, *RANKING_COLUMNS])


def ranking_agreement(
    top_a: pd.DataFrame,
    top_b: pd.DataFrame,
    scores_a: pd.DataFrame,
    scores_b: pd.DataFrame,
    live: np.ndarray | None = None,
) -> pd.DataFrame:
    """How far two filter rankings agree, per group (first column of the top tables).

    Args:
        top_a, top_b: top tables (``<key>, filter, ..., rank``), e.g. the activation-frequency
            ``class_filters`` of one layer and :func:`attribution_top`.
        scores_a, scores_b: ``[groups, C]`` the full scores they rank (frequency percent,
            mean attribution).
        live: boolean ``[C]``: the filters both may rank (default all).

    Returns:
        index = group; ``jaccard`` of the two top sets, ``spearman`` rank correlation of the two
        scores over the live filters (NaN when one is constant), ``n_live``.
    """
    key = top_a.columns[0]
    keep = np.ones(scores_a.shape[1], bool) if live is None else np.asarray(live, bool)
    out = {}
    for g in scores_a.index:
        sa = set(top_a.loc[top_a[key].astype(str) == str(g), "filter"].astype(int))
        sb = set(top_b.loc[top_b[top_b.columns[0]].astype(str) == str(g), "filter"].astype(int))
        jac = len(sa & sb) / len(sa | sb) if sa | sb else np.nan
        a, b = scores_a.loc[g].to_numpy()[keep], scores_b.loc[g].to_numpy()[keep]
        ok = np.isfinite(a) & np.isfinite(b)
        constant = ok.sum() < 2 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0
        rho = np.nan if constant else float(spearmanr(a[ok], b[ok]).statistic)
        out[g] = (jac, rho, int(keep.sum()))
    return pd.DataFrame.from_dict(out, orient="index", columns=AGREEMENT_COLUMNS).rename_axis(key)


def overlay(image: Tensor, heat: Tensor, alpha: float = 0.5, cmap: str = "jet") -> Tensor:
    """``[3, h, w]`` image in 0..1 blended with a ``[h, w]`` map in 0..1 through a colormap."""
    from matplotlib import colormaps

    colour = colormaps[cmap](heat.detach().float().clamp(0, 1).cpu().numpy())[..., :3]
    colour = torch.from_numpy(colour).permute(2, 0, 1).float()
    return ((1 - alpha) * image.detach().float().cpu() + alpha * colour).clamp(0, 1)


def side_by_side(freq_top: pd.DataFrame, attr_top: pd.DataFrame) -> pd.DataFrame:
    """The two top-N lists of each (group, layer) next to each other, one row per rank:
    ``<key>, layer, rank, frequency_filter, attribution_filter, attribution_score`` (a rank
    one list lacks stays empty)."""
    key = freq_top.columns[0]
    by = [key, "layer", "rank"]
    a = freq_top[by + ["filter"]].rename(columns={"filter": "frequency_filter"})
    b = attr_top.rename(columns={attr_top.columns[0]: key, "filter": "attribution_filter"})
    b = b[by + ["attribution_filter", "score"]].rename(columns={"score": "attribution_score"})
    out = a.merge(b, on=by, how="outer").sort_values(by, kind="stable").reset_index(drop=True)
    for c in ("frequency_filter", "attribution_filter"):
        out[c] = out[c].astype("Int64")
    return out


def agreement_metrics(agreement: pd.DataFrame, layers: Sequence[str]) -> dict[str, float]:
    """``attribution_jaccard/<group>`` and ``attribution_spearman/<group>`` of the last layer,
    plus ``attribution_jaccard_<layer>/<group>`` (and spearman) per layer when there are
    several: one ``/`` level, like the recovery metrics."""
    key = agreement.columns[0]
    out: dict[str, float] = {}
    for _, r in agreement.iterrows():
        for m in ("jaccard", "spearman"):
            if r["layer"] == layers[-1]:
                out[f"attribution_{m}/{r[key]}"] = r[m]
            if len(layers) > 1:
                out[f"attribution_{m}_{safe_name(r['layer'])}/{r[key]}"] = r[m]
    return {metric_key(k): v for k, v in out.items()}
