"""Network Dissection against a hand-set conv layer whose units copy known concept masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.dissection import (
    dissect,
    feature_maps,
    pooled_iou,
    unit_thresholds,
)
from tests.interpret.nets import no_hooks

S = 32
CONCEPTS = ["ruler", "ink", "sticker"]


def _masks(n: int = 24, seed: int = 0) -> torch.Tensor:
    """bool [n, 3, S, S]: a ruler band along the top edge of half the images, ink blobs on
    others, a sticker disc in a corner of a third."""
    g = torch.Generator().manual_seed(seed)
    masks = torch.zeros(n, 3, S, S, dtype=torch.bool)
    yy, xx = torch.meshgrid(torch.arange(S), torch.arange(S), indexing="ij")
    for i in range(n):
        if i % 2 == 0:
            masks[i, 0, :4] = True
        cy, cx = torch.randint(8, S - 8, (2,), generator=g)
        if i % 3 != 0:
            masks[i, 1] = (yy - cy) ** 2 + (xx - cx) ** 2 <= 9
        if i % 3 == 0:
            masks[i, 2] = (yy - (S - 6)) ** 2 + (xx - 6) ** 2 <= 16
    return masks


def _copying_layer() -> nn.Conv2d:
    """Unit 0: a blurred, stride-2 copy of input channel 0 (the ruler mask); unit 1 of channel
    1 (the ink mask); unit 2 of channel 2 (noise, no concept)."""
    conv = nn.Conv2d(3, 3, 3, stride=2, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        for c in range(3):
            conv.weight[c, c] = 1.0 / 9.0
    return conv


def _images(masks: torch.Tensor) -> torch.Tensor:
    noise = torch.rand(masks.shape[0], 1, S, S, generator=torch.Generator().manual_seed(1))
    return torch.cat([masks[:, :2].float(), noise], dim=1)


def test_a_unit_that_copies_a_mask_is_labelled_with_that_concept():
    masks = _masks()
    model = nn.Sequential(
        _copying_layer(), nn.ReLU(), nn.Flatten(), nn.Linear(3 * (S // 2) ** 2, 2)
    )
    loader = [(x, torch.zeros(len(x))) for x in _images(masks).split(8)]
    maps, idx = feature_maps(model, loader, ["0"])
    assert no_hooks(model) and maps["0"].shape == (24, 3, S // 2, S // 2)
    assert idx.tolist() == list(range(24))
    share = masks[:, 0].float().mean().item()  # the ruler's share of all pixels
    table = dissect(maps["0"], masks, CONCEPTS, "0", quantile=1 - share, min_iou=0.04)
    by_unit = table.set_index("unit")
    ruler, ink, noise = by_unit.loc[0], by_unit.loc[1], by_unit.loc[2]
    assert ruler["concept"] == "ruler" and ruler["iou"] > 0.5 and ruler["labelled"]
    assert ruler["iou_ink"] < 0.04 and ruler["iou_sticker"] < 0.04
    assert ink["concept"] == "ink" and ink["labelled"] and ink["iou_ruler"] < 0.04
    assert not noise["labelled"] and noise["iou"] < 0.04
    assert table["iou"].is_monotonic_decreasing
    assert 0 < ruler["ceiling"] <= 1.0


def test_thresholds_are_the_top_quantile_over_all_positions_of_all_images():
    maps = torch.randn(10, 4, 5, 5)
    thr = unit_thresholds(maps, 0.9)
    flat = maps.transpose(0, 1).reshape(4, -1).numpy()
    expected = np.quantile(flat, 0.9, axis=1, method="inverted_cdf")
    assert np.allclose(thr.numpy(), expected)
    with pytest.raises(IsicInputError, match="dissect_quantile"):
        unit_thresholds(maps, 1.0)


def test_iou_is_pooled_over_images_not_averaged():
    # image 0: the unit fires exactly on the mask (4 px); image 1: on 4 px, mask empty.
    maps = torch.zeros(2, 1, 4, 4)
    maps[:, 0, :2, :2] = 1.0
    masks = torch.zeros(2, 1, 4, 4, dtype=torch.bool)
    masks[0, 0, :2, :2] = True
    iou = pooled_iou(maps, masks, torch.tensor([0.5]))
    assert iou.item() == pytest.approx(4 / 8)  # per-image mean would be (1 + 0) / 2
    with pytest.raises(IsicInputError, match="masks"):
        pooled_iou(maps, masks[:1], torch.tensor([0.5]))
