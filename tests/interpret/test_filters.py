"""Class/group-specific filters, Jaccard overlap, artifact recovery AUC."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.activations import activation_stats
from isic_tracking.interpret.filters import (
    artifact_recovery_auc,
    class_specific_filters,
    filter_percentages,
    filter_thresholds,
    group_mean_z,
    group_specific_filters,
    jaccard_overlap,
    membership,
    rank_auc,
)
from isic_tracking.stages.filters.report import filter_report

RED_FILTER = 5


def red_detector() -> nn.Module:
    """Random 8-filter conv net whose filter 5 is hand-set to 'red minus green and blue'."""
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 8, 3, padding=1)
    with torch.no_grad():
        conv.weight.mul_(0.3)
        conv.weight[RED_FILTER] = 0.0
        conv.weight[RED_FILTER, 0] = 1.0 / 9  # mean of red over a 3x3 window
        conv.weight[RED_FILTER, 1:] = -0.5 / 9
        conv.bias[RED_FILTER] = 0.0
    return nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 1))


def coloured_images(n: int = 60, size: int = 32, seed: int = 0):
    """Grey noise; class 1 ('malignant') images carry a red 6x6 blob somewhere."""
    g = torch.Generator().manual_seed(seed)
    x = 0.5 + 0.15 * torch.randn(n, 3, size, size, generator=g)
    y = (torch.arange(n) % 3 == 0).long()  # a third of the images are class 1
    for i in torch.nonzero(y).flatten().tolist():
        r, c = torch.randint(0, size - 6, (2,), generator=g).tolist()
        x[i, :, r : r + 6, c : c + 6] = torch.tensor([1.0, 0.1, 0.1])[:, None, None]
    return x, y


def test_hand_set_red_filter_ranks_first_for_the_red_class():
    x, y = coloured_images()
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    stats = activation_stats(red_detector(), loader, ["0"], "cpu")["0"]
    top = class_specific_filters(stats.max, stats.labels, ["benign", "malignant"], quantile=0.6)
    first = top[(top["class"] == "malignant") & (top["rank"] == 1)].iloc[0]
    assert first["filter"] == RED_FILTER
    assert first["percent"] == 100.0  # every red image is above the 0.6 quantile
    benign = top[top["class"] == "benign"]
    assert RED_FILTER not in set(benign["filter"].head(1))


def test_percentages_by_hand():
    # 4 images, 2 filters. quantile 0.5 thresholds: filter0 -> 2.5, filter1 -> 0.5
    acts = torch.tensor([[1.0, 0.0], [2.0, 1.0], [3.0, 0.0], [4.0, 1.0]])
    assert np.allclose(filter_thresholds(acts, 0.5), [2.5, 0.5])
    occ, pct = filter_percentages(acts, pd.Series(["a", "a", "b", "b"]), 0.5)
    assert occ.loc["a"].tolist() == [0, 1] and occ.loc["b"].tolist() == [2, 1]
    assert pct.loc["a"].tolist() == [0.0, 50.0] and pct.loc["b"].tolist() == [100.0, 50.0]
    top = class_specific_filters(acts, [0, 0, 1, 1], ["a", "b"], quantile=0.5, top_n=2)
    assert list(top.columns) == ["class", "filter", "occurrences", "percent", "rank", "mean_z"]
    assert top[top["class"] == "a"]["filter"].tolist() == [1, 0]
    assert top[top["class"] == "b"]["filter"].tolist() == [0, 1]
    assert top["rank"].tolist() == [1, 2, 1, 2]


def test_percentage_ties_are_broken_by_the_groups_mean_z():
    # both filters fire on exactly image 3 (class b: 50 %), but filter 1 is higher on b's other
    # image too, so it is the more b-specific filter and must rank first despite its index
    acts = torch.tensor([[0.0, 0.0], [0.1, 0.0], [0.2, 0.9], [1.0, 1.0]])
    top = class_specific_filters(acts, [0, 0, 1, 1], ["a", "b"], quantile=0.75, top_n=2)
    b = top[top["class"] == "b"]
    assert b["percent"].tolist() == [50.0, 50.0]
    assert b["filter"].tolist() == [1, 0] and b["mean_z"].is_monotonic_decreasing
    z = group_mean_z(acts, pd.Series(["a", "a", "b", "b"]))
    assert z.loc["a"].sum() == pytest.approx(-z.loc["b"].sum())  # z sums to 0 over images


def test_class_without_images_names_class_and_split():
    acts = torch.rand(6, 3)
    with pytest.raises(IsicInputError, match=r"'SCC'.*no images in val0"):
        class_specific_filters(acts, [0, 1, 0, 1, 0, 1], ["MEL", "NV", "SCC"], split="val0")
    with pytest.raises(IsicInputError, match="labels must lie"):
        class_specific_filters(acts, [0, 1, 0, 1, 0, 5], ["MEL", "NV"])
    with pytest.raises(IsicInputError, match="quantile"):
        class_specific_filters(acts, [0, 1, 0, 1, 0, 1], ["MEL", "NV"], quantile=1.5)


def test_membership_forms():
    m = membership(pd.Series(["hair", "none", "ruler|hair", None, "ink"]))
    assert sorted(m.columns) == ["hair", "ink", "ruler"]
    assert m["hair"].tolist() == [True, False, True, False, False]
    assert not m.iloc[1].any() and not m.iloc[3].any()  # none and NA are in no group
    flags = pd.DataFrame({"dark_corners": [1, 0, 0, 1, 0]})
    assert membership(flags)["dark_corners"].tolist() == [True, False, False, True, False]
    with pytest.raises(IsicInputError, match="must match"):
        membership(pd.Series(["hair"]), n=3)


def test_group_specific_filters_skip_none_and_small_groups():
    rng = np.random.default_rng(0)
    acts = rng.random((40, 6))
    groups = pd.Series(["none"] * 30 + ["hair"] * 8 + ["ruler"] * 2)
    acts[30:38, 4] += 2.0  # hair images fire filter 4
    top = group_specific_filters(acts, groups, quantile=0.8, top_n=3, min_images=3)
    assert set(top["group"]) == {"hair"}
    assert top.iloc[0]["filter"] == 4 and top.iloc[0]["percent"] == 100.0
    empty = group_specific_filters(acts, pd.Series(["none"] * 40))
    assert empty.empty and "group" in empty.columns


def test_jaccard_overlap():
    a = pd.DataFrame({"class": ["x", "x", "y", "y"], "filter": [1, 2, 2, 3], "rank": [1, 2, 1, 2]})
    b = pd.DataFrame({"group": ["hair", "hair"], "filter": [2, 3], "rank": [1, 2]})
    j = jaccard_overlap(a, b)
    assert j.loc["x", "hair"] == pytest.approx(1 / 3) and j.loc["y", "hair"] == 1.0
    self_j = jaccard_overlap(a)
    assert self_j.loc["x", "x"] == 1.0 and self_j.loc["x", "y"] == pytest.approx(1 / 3)
    # with a layer column the same filter index in two layers is not the same filter
    a2 = a.assign(layer=["l1", "l1", "l2", "l2"])
    b2 = b.assign(layer=["l1", "l2"])
    j2 = jaccard_overlap(a2, b2)
    assert j2.loc["x", "hair"] == pytest.approx(1 / 3)
    assert j2.loc["y", "hair"] == pytest.approx(1 / 3)


def test_rank_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 5, size=(50, 4)).astype(float)  # many ties
    pos = rng.random(50) < 0.3
    expected = [roc_auc_score(pos, scores[:, c]) for c in range(4)]
    assert np.allclose(rank_auc(scores, pos), expected)
    assert np.isnan(rank_auc(scores, np.zeros(50, bool))).all()


def test_artifact_recovery_auc_finds_planted_filter():
    rng = np.random.default_rng(2)
    acts = rng.random((60, 10))
    art = np.array(["none"] * 40 + ["ruler"] * 10 + ["ink"] * 10, dtype=object)
    acts[art == "ruler", 7] += 1.0  # a perfect ruler detector
    acts[art == "ink", 2] += 0.3  # a partial ink detector
    res = artifact_recovery_auc(acts, pd.Series(art), quantile=0.8).set_index("artifact")
    assert res.loc["ruler", "filter"] == 7 and res.loc["ruler", "auc"] == 1.0
    assert res.loc["ruler", "n_pos"] == 10 and res.loc["ruler", "n_neg"] == 50
    assert res.loc["ink", "best_filter"] == 2 and 0.5 < res.loc["ink", "best_auc"] <= 1.0
    assert res.loc["ink", "auc"] <= res.loc["ink", "best_auc"]


def test_filter_report_over_two_layers_with_groups():
    rng = np.random.default_rng(3)
    labels = np.array([0] * 20 + [1] * 20)
    art = pd.Series(["none"] * 30 + ["hair"] * 6 + ["benign"] * 4)  # a group named like a class
    l1 = rng.random((40, 5))
    l1[labels == 1, 3] += 1.0  # class-specific filter 3
    l1[30:36, 3] += 2.0  # hair images fire it too: outlier and class filters overlap
    l2 = rng.random((40, 4))
    l2[30:36, 0] += 1.0  # a hair-only filter in the second layer
    report = filter_report(
        {"l1": l1, "l2": l2}, labels, ["benign", "malignant"], art, 0.8, top_n=1, split="all"
    )
    assert list(report.class_top.columns) == [
        *("class", "filter", "occurrences", "percent", "rank", "mean_z", "layer")
    ]
    assert report.class_top["layer"].tolist() == ["l1", "l1", "l2", "l2"]
    mal = report.class_top.query("`class` == 'malignant' and layer == 'l1'").iloc[0]
    assert mal["filter"] == 3
    assert set(report.group_top["group"]) == {"hair", "group:benign"}
    hair = report.group_top.set_index(["group", "layer"])
    assert hair.loc[("hair", "l1"), "filter"] == 3 and hair.loc[("hair", "l2"), "filter"] == 0
    assert report.class_percent["l2"].shape == (2, 4)
    assert report.group_percent["l1"].shape == (2, 5)
    j = report.jaccard
    assert list(j.index) == list(j.columns) == ["benign", "malignant", "group:benign", "hair"]
    # malignant {(l1, 3), (l2, ?)} and hair {(l1, 3), (l2, 0)} share (l1, 3) at least
    assert j.loc["malignant", "hair"] >= 1 / 3 and np.allclose(np.diag(j), 1.0)
    rec = report.recovery.set_index(["artifact", "layer"])
    assert rec.loc[("hair", "l2"), "auc"] == 1.0 and rec.loc[("hair", "l2"), "filter"] == 0
    # no groups: classes only, empty group tables
    bare = filter_report({"l1": l1}, labels, ["benign", "malignant"])
    assert (
        bare.group_top.empty
        and bare.recovery.empty
        and list(bare.jaccard.index)
        == [
            "benign",
            "malignant",
        ]
    )
    with pytest.raises(IsicInputError, match="'malignant' has no images in val0"):
        filter_report({"l1": l1}, np.zeros(40, int), ["benign", "malignant"], split="val0")
