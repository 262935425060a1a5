"""Dataset exemplars: the images that excite a filter most, cropped around the maximum.

Borowski et al. (2021), "Exemplary natural images explain CNN activations better than
state-of-the-art feature visualization" (ICLR): natural exemplars help people predict a
unit's response better than synthetic feature visualizations, so the analysis stages show
both. The crop is centred on the input pixel that corresponds to the feature-map position of
the filter's maximum (feature-map position -> input pixels by the input / map size ratio,
i.e. the layer's effective stride).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from isic_tracking.data.transforms import denormalize
from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.activations import LayerStats

EXEMPLAR_COLUMNS = [
    *("filter", "rank", "row", "dataset_index", "activation"),
    *("fy", "fx", "y0", "x0", "y1", "x1"),
]


def default_crop_size(fmap_size: tuple[int, int], input_size: tuple[int, int]) -> int:
    """Four effective strides, at least 16 px and at most the image (64 px for VGG16's last
    conv on 224 px images, whose effective stride is 16)."""
    stride = max(input_size[0] / fmap_size[0], input_size[1] / fmap_size[1])
    return int(min(max(round(4 * stride), 16), min(input_size)))


def fmap_to_box(
    fy: int,
    fx: int,
    fmap_size: tuple[int, int],
    input_size: tuple[int, int],
    crop_size: int,
) -> tuple[int, int, int, int]:
    """Input-pixel box ``(y0, x0, y1, x1)`` of side ``crop_size`` centred on feature-map cell
    ``(fy, fx)``; shifted (not shrunk) to stay inside the image, so every crop has one size."""
    h, w = input_size
    size_y, size_x = min(crop_size, h), min(crop_size, w)
    cy = (fy + 0.5) * h / fmap_size[0]
    cx = (fx + 0.5) * w / fmap_size[1]
    y0 = int(np.clip(round(cy - size_y / 2), 0, h - size_y))
    x0 = int(np.clip(round(cx - size_x / 2), 0, w - size_x))
    return y0, x0, y0 + size_y, x0 + size_x


def top_exemplars(
    stats: LayerStats,
    filters: Sequence[int],
    k: int = 8,
    crop_size: int | None = None,
) -> pd.DataFrame:
    """The ``k`` images with the highest max activation of each filter and their crop boxes.

    Args:
        stats: one layer's statistics with ``max`` and ``argmax``.
        filters: filter indices (e.g. a group's top filters).
        k: exemplars per filter (default 8).
        crop_size: side of the crop in input pixels (default :func:`default_crop_size`).

    Returns:
        DataFrame ``filter, rank, row, dataset_index, activation, fy, fx, y0, x0, y1, x1``:
        ``row`` is the row in ``stats``, ``dataset_index`` the data-set index; ``(fy, fx)`` the
        feature-map position of the max and ``y0:y1, x0:x1`` the crop in the model's input.
    """
    if stats.max is None or stats.argmax is None:
        raise IsicInputError("exemplars need max and argmax statistics (reduce=max,argmax)")
    if k < 1:
        raise IsicInputError(f"k must be >= 1, got {k}")
    crop = crop_size or default_crop_size(stats.fmap_size, stats.input_size)
    rows = []
    for f in filters:
        f = int(f)
        if not 0 <= f < stats.num_filters:
            raise IsicInputError(
                f"filter {f} does not exist in layer {stats.name!r} ({stats.num_filters} filters)"
            )
        vals, order = torch.sort(stats.max[:, f], descending=True, stable=True)
        for rank, (r, v) in enumerate(zip(order[:k].tolist(), vals[:k].tolist()), start=1):
            fy, fx = stats.location(r, f)
            box = fmap_to_box(fy, fx, stats.fmap_size, stats.input_size, crop)
            rows.append((f, rank, r, int(stats.indices[r]), float(v), fy, fx, *box))
    return pd.DataFrame(rows, columns=EXEMPLAR_COLUMNS)


def exemplar_crops(
    exemplars: pd.DataFrame,
    get_image: Callable[[int], Tensor],
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> list[Tensor]:
    """Crop each exemplar row's box out of its image.

    Args:
        exemplars: output of :func:`top_exemplars`.
        get_image: data-set index -> the ``[3, H, W]`` tensor the model saw (eval transform),
            e.g. ``lambda i: dataset[i][0]``.
        mean, std: the normalization to undo for display (None: images shown as given).

    Returns:
        One ``[3, h, w]`` float tensor in 0..1 per exemplar row, in row order.
    """
    crops = []
    cache: dict[int, Tensor] = {}
    for ex in exemplars.itertuples(index=False):
        if ex.dataset_index not in cache:
            img = get_image(int(ex.dataset_index))
            img = img[0] if isinstance(img, (tuple, list)) else img
            img = img.detach().float().cpu()
            cache[ex.dataset_index] = denormalize(img, mean, std) if mean is not None else img
        img = cache[ex.dataset_index]
        crops.append(img[:, ex.y0 : ex.y1, ex.x0 : ex.x1].clone())
    return crops
