"""Dataset exemplars: top images per filter and the crop around the maximum."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.activations import activation_stats
from isic_tracking.interpret.exemplars import (
    default_crop_size,
    exemplar_crops,
    fmap_to_box,
    top_exemplars,
)


def test_fmap_to_box_centres_and_clamps():
    # 14x14 map over 224 px: cell (7, 3) is centred at (120, 56); a 64 px crop around it
    assert fmap_to_box(7, 3, (14, 14), (224, 224), 64) == (88, 24, 152, 88)
    # corners are shifted inside, never shrunk
    assert fmap_to_box(0, 13, (14, 14), (224, 224), 64) == (0, 160, 64, 224)
    assert fmap_to_box(0, 0, (4, 4), (32, 32), 100) == (0, 0, 32, 32)
    assert default_crop_size((14, 14), (224, 224)) == 64
    assert default_crop_size((32, 32), (32, 32)) == 16


def spot_detector() -> nn.Module:
    """Stride-4 conv summing the input (a spot detector) then a head."""
    conv = nn.Conv2d(3, 2, 4, stride=4, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.weight[1].fill_(-1.0)
    return nn.Sequential(conv, nn.Flatten(), nn.LazyLinear(1))


def test_top_exemplars_find_the_bright_images_and_crop_the_spot():
    g = torch.Generator().manual_seed(0)
    x = 0.1 * torch.rand(12, 3, 32, 32, generator=g)
    spots = {3: (20, 8, 5.0), 7: (4, 28, 4.0), 10: (16, 16, 3.0)}  # image: (row, col, brightness)
    for i, (r, c, v) in spots.items():
        x[i, :, r : r + 2, c : c + 2] = v
    ds = TensorDataset(x, torch.zeros(12, dtype=torch.long), torch.arange(50, 62))
    loader = torch.utils.data.DataLoader(ds, batch_size=5)
    stats = activation_stats(spot_detector(), loader, ["0"], "cpu")["0"]
    assert stats.fmap_size == (8, 8)
    ex = top_exemplars(stats, [0], k=3, crop_size=8)
    assert ex["row"].tolist() == [3, 7, 10]  # ordered by activation
    assert ex["dataset_index"].tolist() == [53, 57, 60]  # data-set indices, not rows
    assert ex["activation"].is_monotonic_decreasing
    for e in ex.itertuples():
        r, c, _ = spots[e.row]
        assert e.y0 <= r < e.y1 and e.x0 <= c < e.x1  # the crop holds the spot
        assert (e.y1 - e.y0, e.x1 - e.x0) == (8, 8)
    crops = exemplar_crops(ex, lambda i: ds[i - 50])  # get_image may return (x, y, idx)
    assert [tuple(c.shape) for c in crops] == [(3, 8, 8)] * 3
    assert crops[0].max() == 5.0  # the spot itself, not a neighbouring patch
    with pytest.raises(IsicInputError, match="filter 9 does not exist"):
        top_exemplars(stats, [9])


def test_exemplars_need_argmax():
    stats = activation_stats(spot_detector(), [torch.rand(2, 3, 8, 8)], ["0"], reduce=("max",))
    with pytest.raises(IsicInputError, match="argmax"):
        top_exemplars(stats["0"], [0])
