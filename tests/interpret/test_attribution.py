"""Attribution against planted truth: hand-set models whose class evidence sits in a known
region and flows through a known filter."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.attribution import (
    agreement_metrics,
    attribution_top,
    class_mean_scores,
    class_score_fn,
    filter_attribution,
    gradcam_maps,
    mass_in_mask,
    overlay,
    ranking_agreement,
    side_by_side,
)
from tests.interpret.nets import no_hooks

S = 16  # image side


class ColourDetector(nn.Module):
    """Two hand-set 1x1 filters: channel 0 = relu(red - green), channel 1 = relu(green - red);
    class k's logit is the spatial mean of channel k. Red evidence is class 0's, green class 1's."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Conv2d(3, 2, 1, bias=False)
        with torch.no_grad():
            self.features.weight.zero_()
            self.features.weight[0, 0], self.features.weight[0, 1] = 1.0, -1.0
            self.features.weight[1, 1], self.features.weight[1, 0] = 1.0, -1.0
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.features(x)).mean(dim=(2, 3))


def _quadrants() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Grey images with a red patch in the top-left and a green one in the bottom-right
    quadrant (at slightly different places per image); the two quadrant masks."""
    imgs = torch.full((4, 3, S, S), 0.5)
    for i in range(4):
        imgs[i, :, 1 + i : 5 + i, 1:5] = torch.tensor([1.0, 0.0, 0.0])[:, None, None]
        imgs[i, :, 10:14, 9 + i // 2 : 13 + i // 2] = torch.tensor([0.0, 1.0, 0.0])[:, None, None]
    top_left = torch.zeros(S, S, dtype=torch.bool)
    top_left[: S // 2, : S // 2] = True
    bottom_right = torch.zeros(S, S, dtype=torch.bool)
    bottom_right[S // 2 :, S // 2 :] = True
    return imgs, top_left, bottom_right


def test_gradcam_mass_lands_in_the_planted_region_of_the_target_class():
    model = ColourDetector()
    imgs, top_left, bottom_right = _quadrants()
    red = gradcam_maps(model, "features", imgs, torch.zeros(4), batch_size=3)
    assert red.shape == (4, S, S)
    assert torch.allclose(red.flatten(1).amax(1), torch.ones(4))  # normalized per image
    assert (mass_in_mask(red, top_left) > 0.8).all()
    assert (mass_in_mask(red, bottom_right) < 0.1).all()
    green = gradcam_maps(model, "features", imgs, torch.ones(4))
    assert (mass_in_mask(green, bottom_right) > 0.8).all()
    assert (mass_in_mask(green, top_left) < 0.1).all()
    assert no_hooks(model)


class Decisive(nn.Module):
    """Four filters over one input channel; filter 0 responds most but the head ignores it,
    filter 2 (planted) carries the weight of the single binary logit."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Linear(4, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[:, 0, 0, 0] = torch.tensor([5.0, 1.0, 1.0, 1.0])
            self.head.weight.copy_(torch.tensor([[0.0, 0.1, 2.0, -0.3]]))
        self.eval()

    def forward(self, x):
        return self.head(torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3)))


@pytest.mark.parametrize("method", ["conductance", "grad_x_activation"])
def test_the_planted_decisive_filter_ranks_first(method):
    model = Decisive()
    imgs = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([1, 1, 1, 0, 0, 0])
    scores = filter_attribution(model, "bn", imgs, labels, method=method, n_steps=8)
    assert scores.shape == (6, 4)
    means = class_mean_scores(scores, labels, ["benign", "malignant"])
    top = attribution_top(means, top_n=2)
    assert top.loc[top["class"] == "malignant", "filter"].tolist()[0] == 2
    # towards benign (the negated logit) filter 2 pushes hardest the other way: ranked last
    assert means.loc["benign"].idxmin() == 2
    assert no_hooks(model)


def test_conductance_sums_to_the_score_difference_from_the_baseline():
    model = Decisive()
    imgs = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    target = torch.tensor([1, 0, 1])
    scores = filter_attribution(model, "bn", imgs, target, n_steps=32)
    f = class_score_fn(model)
    with torch.no_grad():
        diff = f(imgs) - f(torch.zeros_like(imgs))
    expected = diff[torch.arange(3), target]
    # within 1 %: the ReLU's kink between baseline and image costs the quadrature a little
    assert torch.allclose(scores.sum(dim=1), expected, rtol=0.01)


def test_conductance_runs_its_scaled_copies_a_batch_at_a_time():
    """Memory of one batch: the n_steps scaled copies of each image go through the model in
    chunks of at most ``batch_size`` inputs, with the same attributions as one big call."""
    model = Decisive()
    sizes: list[int] = []
    handle = model.register_forward_pre_hook(lambda _m, args: sizes.append(len(args[0])))
    imgs = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    target = torch.tensor([1, 0, 1, 0, 1, 0])
    chunked = filter_attribution(model, "bn", imgs, target, n_steps=16, batch_size=8)
    handle.remove()
    assert max(sizes) <= 8 and sum(sizes) >= 6 * 16
    whole = filter_attribution(model, "bn", imgs, target, n_steps=16, batch_size=6 * 16 * 2)
    torch.testing.assert_close(chunked, whole, rtol=1e-4, atol=1e-6)


def test_mass_in_mask_shares_and_edge_cases():
    maps = torch.tensor(
        [[[1.0, 3.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]], [[-2.0, 1.0], [1.0, 2.0]]]
    )
    mask = torch.tensor([[True, False], [False, True]])
    share = mass_in_mask(maps, mask)
    assert share[0] == pytest.approx(0.25) and math.isnan(share[1])
    assert share[2] == pytest.approx(0.5)  # the negative value is clipped, not subtracted
    with pytest.raises(IsicInputError, match="differ"):
        mass_in_mask(maps, torch.ones(3, 3, 3, dtype=torch.bool))


def test_ranking_agreement_on_hand_made_rankings():
    freq_top = pd.DataFrame(
        {"class": ["a", "a", "b", "b"], "filter": [0, 1, 2, 3], "rank": [1, 2, 1, 2]}
    )
    attr_top = pd.DataFrame(
        {"class": ["a", "a", "b", "b"], "filter": [1, 2, 2, 3], "rank": [1, 2, 1, 2]}
    )
    freq = pd.DataFrame([[4.0, 3, 2, 1], [1.0, 2, 4, 3]], index=["a", "b"])
    attr = pd.DataFrame([[1.0, 2, 3, 4], [1.0, 2, 4, 3]], index=["a", "b"])
    out = ranking_agreement(freq_top, attr_top, freq, attr)
    assert out.loc["a", "jaccard"] == pytest.approx(1 / 3)  # {0,1} vs {1,2}
    assert out.loc["b", "jaccard"] == 1.0
    assert out.loc["a", "spearman"] == pytest.approx(-1.0)
    assert out.loc["b", "spearman"] == pytest.approx(1.0)
    live = np.array([True, True, True, False])
    dead_out = ranking_agreement(freq_top, attr_top, freq, attr, live)
    assert dead_out.loc["b", "n_live"] == 3
    assert dead_out.loc["b", "spearman"] == pytest.approx(1.0)  # 1,2,4 vs 1,2,4
    flat = attr.copy()
    flat.loc["a"] = 0.0
    assert math.isnan(ranking_agreement(freq_top, attr_top, freq, flat).loc["a", "spearman"])


def test_attribution_top_ranks_live_filters_only_and_breaks_ties_by_index():
    means = pd.DataFrame([[5.0, 1.0, 1.0, 9.0]], index=pd.Index(["a"], name="class"))
    top = attribution_top(means, top_n=3, live=np.array([True, True, True, False]))
    assert top["filter"].tolist() == [0, 1, 2] and top["rank"].tolist() == [1, 2, 3]
    with pytest.raises(IsicInputError, match="top_n"):
        attribution_top(means, top_n=0)


def test_bad_inputs_are_clear_errors():
    model = ColourDetector()
    imgs = torch.rand(2, 3, S, S)
    with pytest.raises(IsicInputError, match="2 images but 3 targets"):
        gradcam_maps(model, "features", imgs, torch.zeros(3))
    with pytest.raises(IsicInputError, match="unknown attribution method"):
        filter_attribution(model, "features", imgs, torch.zeros(2), method="lrp")


def test_overlay_blends_the_colormap_into_the_image():
    img = torch.zeros(3, 4, 4)
    heat = torch.zeros(4, 4)
    heat[0, 0] = 1.0
    out = overlay(img, heat, alpha=1.0)
    assert out.shape == (3, 4, 4) and 0 <= out.min() and out.max() <= 1
    assert not torch.equal(out[:, 0, 0], out[:, 3, 3])  # hot and cold cells differ


def test_side_by_side_and_metrics_of_the_agreement():
    freq_top = pd.DataFrame(
        {"class": ["a", "a"], "filter": [0, 1], "rank": [1, 2], "layer": ["conv", "conv"]}
    )
    attr_top = pd.DataFrame(
        {"class": ["a"], "filter": [7], "score": [0.5], "rank": [1], "layer": ["conv"]}
    )
    both = side_by_side(freq_top, attr_top)
    assert both["frequency_filter"].tolist() == [0, 1]
    assert both["attribution_filter"].iloc[0] == 7 and pd.isna(both["attribution_filter"].iloc[1])
    agreement = pd.DataFrame(
        {"class": ["a", "a"], "layer": ["conv1", "block/2"], "jaccard": [0.5, 0.25]}
        | {"spearman": [0.1, -0.2], "n_live": [4, 4]}
    )
    m = agreement_metrics(agreement, ["conv1", "block/2"])
    assert m["attribution_jaccard/a"] == 0.25 and m["attribution_spearman/a"] == -0.2
    assert m["attribution_jaccard_conv1/a"] == 0.5 and m["attribution_spearman_block_2/a"] == -0.2
    assert agreement_metrics(agreement.iloc[:1], ["conv1"]) == {
        "attribution_jaccard/a": 0.5,
        "attribution_spearman/a": 0.1,
    }
