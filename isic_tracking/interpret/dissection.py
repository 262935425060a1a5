"""Network Dissection (Bau et al. 2017, "Network Dissection: Quantifying Interpretability of
Deep Visual Representations"): where in an image does a unit respond, and is that a concept?

For unit ``c`` of a layer, its threshold ``T_c`` is the ``quantile`` (0.995 in the paper) of its
activations over every position of every analysed image. Its map of each image is upsampled
(bilinear) to the image size and thresholded at ``T_c``; the IoU with concept ``k``'s mask is
pooled over the data set: ``sum_i |A_i ∩ M_ik| / sum_i |A_i ∪ M_ik|``. A unit is labelled with
its best concept when that IoU reaches ``min_iou`` (0.04 in the paper).

A ceiling to read the IoUs by: a unit that fires on a share ``a`` of all pixels (about
``1 - quantile``) and a concept that covers a share ``p`` reach at most ``min(a, p) / max(a, p)``.
A concept much larger than ``a`` (the lesion: a third of the pixels) cannot pass 0.04 at
``quantile`` 0.995; the table states each concept's pixel share and that ceiling.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.activations import _unpack
from isic_tracking.interpret.hooks import LayerRecorder, eval_mode
from isic_tracking.utils import progress

#: Bau et al. 2017: the top 0.5 % of a unit's activations, labelled above IoU 0.04.
BAU_QUANTILE = 0.995
BAU_MIN_IOU = 0.04


def feature_maps(
    model: nn.Module, loader: Iterable, modules: Sequence[str], device: str | torch.device = "cpu"
) -> tuple[dict[str, Tensor], Tensor]:
    """Every feature map of ``modules`` over ``loader``: ``({module: [N, C, h, w] float16},
    [N] data-set indices)``; the forward stops after the last hooked module."""
    maps: dict[str, list[Tensor]] = {m: [] for m in modules}
    indices, seen = [], 0
    model.to(device)
    keep = lambda _n, out: out.detach().to(torch.float16).cpu()  # noqa: E731
    with eval_mode(model), LayerRecorder(model, modules, keep) as rec, torch.inference_mode():
        for batch in progress(loader, desc="dissection maps"):
            x, _, idx = _unpack(batch)
            for name, m in rec(x.to(device)).items():
                if m.dim() != 4:
                    raise IsicInputError(f"{name!r} outputs {tuple(m.shape)}: not a feature map")
                maps[name].append(m)
            n = int(x.shape[0])
            indices.append(torch.arange(seen, seen + n) if idx is None else torch.as_tensor(idx))
            seen += n
    if seen == 0:
        raise IsicInputError("the loader yielded no images: is the split empty?")
    return {m: torch.cat(v) for m, v in maps.items()}, torch.cat(indices).long()


def unit_thresholds(maps: Tensor, quantile: float = BAU_QUANTILE) -> Tensor:
    """``[C]``: each unit's ``quantile`` over all positions of all images of ``[N, C, h, w]``
    (the ``ceil(quantile * n)``-th smallest value, no interpolation)."""
    if not 0.0 < quantile < 1.0:
        raise IsicInputError(f"dissect_quantile={quantile}: a level in (0, 1), e.g. 0.995")
    flat = maps.transpose(0, 1).reshape(maps.shape[1], -1)
    k = min(flat.shape[1], max(1, math.ceil(quantile * flat.shape[1])))
    return torch.stack([row.float().kthvalue(k).values for row in flat])


def pooled_iou(maps: Tensor, masks: Tensor, thresholds: Tensor, chunk: int = 16) -> Tensor:
    """``[C, K]`` IoU of each unit's thresholded, upsampled maps with each concept's masks,
    intersection and union summed over the images before dividing (0 where the union is empty).

    Args:
        maps: ``[N, C, h, w]`` feature maps.
        masks: bool ``[N, K, H, W]`` concept masks at the image size.
        thresholds: ``[C]`` from :func:`unit_thresholds`.
        chunk: images upsampled at once (memory: ``chunk x C x H x W`` booleans).
    """
    if maps.shape[0] != masks.shape[0]:
        raise IsicInputError(f"{maps.shape[0]} feature maps but {masks.shape[0]} masks")
    size = tuple(masks.shape[-2:])
    n_units, n_concepts = maps.shape[1], masks.shape[1]
    inter = torch.zeros(n_units, n_concepts, dtype=torch.float64)
    fired = torch.zeros(n_units, dtype=torch.float64)
    covered = masks.flatten(2).sum(dim=(0, 2)).double()
    thr = thresholds.float().view(1, -1, 1, 1)
    for i in range(0, maps.shape[0], chunk):
        up = F.interpolate(maps[i : i + chunk].float(), size=size, mode="bilinear",
                           align_corners=False)  # fmt: skip
        act = (up > thr).flatten(2).float()  # [b, C, HW]
        m = masks[i : i + chunk].flatten(2).float()  # [b, K, HW]
        inter += torch.einsum("bcp,bkp->ck", act, m).double()
        fired += act.sum(dim=(0, 2)).double()
    union = fired[:, None] + covered[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(inter)).float()


def dissection_table(
    iou: Tensor,
    layer: str,
    concepts: Sequence[str],
    min_iou: float = BAU_MIN_IOU,
    pixel_share: Sequence[float] | None = None,
    fire_share: float | None = None,
) -> pd.DataFrame:
    """One row per unit, best first: ``layer, unit, concept, iou, labelled`` (best concept,
    its IoU, ``iou >= min_iou``; ``concept`` is ``""`` where every IoU is 0), ``ceiling`` (the
    best IoU a unit firing on ``fire_share`` of the pixels can reach with that concept, from
    its ``pixel_share``; NaN when not given) and ``iou_<concept>`` for every concept."""
    values = iou.numpy()
    best = values.argmax(axis=1)
    best_iou = values.max(axis=1)
    names = np.asarray([str(c) for c in concepts], dtype=object)
    table = pd.DataFrame(
        {
            "layer": layer,
            "unit": np.arange(values.shape[0]),
            "concept": np.where(best_iou > 0, names[best], ""),
            "iou": best_iou,
            "labelled": best_iou >= min_iou,
        }
    )
    if pixel_share is not None and fire_share is not None:
        p = np.asarray(pixel_share, dtype=float)[best]
        table["ceiling"] = np.minimum(p, fire_share) / np.maximum(np.maximum(p, fire_share), 1e-12)
    else:
        table["ceiling"] = np.nan
    for k, name in enumerate(names):
        table[f"iou_{name}"] = values[:, k]
    return table.sort_values("iou", ascending=False, kind="stable").reset_index(drop=True)


def dissect(
    maps: Tensor,
    masks: Tensor,
    concepts: Sequence[str],
    layer: str,
    quantile: float = BAU_QUANTILE,
    min_iou: float = BAU_MIN_IOU,
) -> pd.DataFrame:
    """Network Dissection of one layer's ``[N, C, h, w]`` maps against bool ``[N, K, H, W]``
    concept masks of the same images: :func:`dissection_table` of :func:`pooled_iou`."""
    if masks.shape[1] != len(concepts):
        raise IsicInputError(f"{masks.shape[1]} mask channels but {len(concepts)} concept names")
    iou = pooled_iou(maps, masks, unit_thresholds(maps, quantile))
    share = masks.flatten(2).float().mean(dim=(0, 2)).tolist()
    return dissection_table(iou, layer, concepts, min_iou, share, 1.0 - quantile)
