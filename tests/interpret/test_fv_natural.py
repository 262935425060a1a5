"""fv_over_natural_max: a visualization's activation against the same unit on natural images."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from isic_tracking.interpret import fv_natural
from isic_tracking.interpret.featvis import channel, class_logit


def test_reference_max_p99_and_liveness_on_planted_values():
    # columns: a live unit (0..99), a dead one (never positive), a constant one
    values = torch.stack(
        [torch.arange(100.0), -torch.arange(1.0, 101.0), torch.full((100,), 3.0)], 1
    )
    ref = fv_natural.reference(values)
    assert ref.max.tolist() == [99.0, -1.0, 3.0]
    assert ref.p99[0].item() == pytest.approx(98.01)
    assert ref.live.tolist() == [True, False, False]
    assert ref.n_images == 100


def test_ratio_is_reached_over_natural_and_nan_where_not_live():
    ref = fv_natural.reference(torch.tensor([[1.0, -1.0, 2.0], [2.0, -3.0, 2.0]]))
    r = fv_natural.ratio(torch.tensor([3.0, 5.0, 4.0]), ref.max, ref.live)
    assert r[0].item() == pytest.approx(1.5)
    assert math.isnan(r[1]) and math.isnan(r[2])


def test_summary_counts_the_live_ones_only():
    s = fv_natural.summary(torch.tensor([0.5, 1.0, 2.0, 3.0, float("nan")]))
    assert s == {"frac": 0.75, "median": 1.5, "live": 4.0, "not_live": 1.0}
    empty = fv_natural.summary(torch.tensor([float("nan")]))
    assert math.isnan(empty["frac"]) and empty["not_live"] == 1.0


class _Planted(nn.Module):
    """conv (one channel = R - B, one = mean colour) then a logit = channel 0's spatial mean."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(
                torch.tensor([[1.0, 0, -1], [1 / 3, 1 / 3, 1 / 3]])[..., None, None]
            )

    def forward(self, x):
        return self.conv(x).mean((2, 3))[:, :1]


def test_natural_values_are_the_objective_after_the_same_normalization():
    model = _Planted()
    red = torch.zeros(1, 3, 4, 4)
    red[:, 0] = 1.0
    grey = torch.full((1, 3, 4, 4), 0.5)
    mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)  # x -> 2x - 1
    objs = [channel("conv", 0), channel("conv", 1), class_logit(0), -class_logit(0)]
    values = fv_natural.natural_values(model, objs, [red, grey], mean, std)
    # red normalized: (1, -1, -1): R - B = 2, mean = -1/3; grey: all 0
    expected = torch.tensor([[2.0, -1 / 3, 2.0, -2.0], [0.0, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(values, expected)
    ref = fv_natural.reference(values)
    assert ref.live.tolist() == [True, False, True, False]
