"""Dead and constant filters (issue 18, item 4): the definition on planted channels, and that
no ranking of the filters stage (class, group, recovery, most activated) picks one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.filters import (
    artifact_recovery_auc,
    class_specific_filters,
    group_specific_filters,
)
from isic_tracking.interpret.liveness import (
    CONSTANT,
    DEAD,
    LIVE,
    filter_liveness,
    inactive_filters,
    live_mask,
    liveness_counts,
    most_activated_table,
)
from isic_tracking.interpret.response import response_layers
from isic_tracking.models.small_cnn import SmallCNN
from isic_tracking.stages.filters.report import filter_report
from isic_tracking.stages.visualize.targets import most_activated

ZERO, CONST, NEG, TINY, LIVE_CH, NOISY_CONST = range(6)


def planted(n: int = 40, seed: int = 0) -> np.ndarray:
    """``[n, 6]`` max activations: a zero channel, a positive constant one, a negative
    (varying) one, one positive only at float round-off, a live one, a constant one with
    float32 round-off noise."""
    rng = np.random.default_rng(seed)
    a = np.zeros((n, 6))
    a[:, CONST] = 2.5
    a[:, NEG] = -0.5 + 0.2 * rng.random(n)  # the dead filters: max -0.012 .. -0.033
    a[:, TINY] = 1e-8 * rng.random(n)
    a[:, LIVE_CH] = rng.normal(1.0, 0.5, n)
    a[:, NOISY_CONST] = 300.0 + 1e-5 * rng.random(n)
    return a


def test_liveness_of_planted_channels():
    t = filter_liveness(torch.tensor(planted(), dtype=torch.float32)).set_index("filter")
    assert t["status"].tolist() == [DEAD, CONSTANT, DEAD, DEAD, LIVE, CONSTANT]
    assert t.loc[CONST, "max"] == pytest.approx(2.5) and t.loc[CONST, "std"] == pytest.approx(0)
    assert t.loc[NEG, "max"] < 0 and t.loc[LIVE_CH, "std"] > 0.1
    assert live_mask(planted()).tolist() == [False, False, False, False, True, False]
    # one positive image is enough to be live; zero tolerances make the round-off channel live
    one = planted()
    one[3, NEG] = 0.4
    assert filter_liveness(one)["status"][NEG] == LIVE
    assert filter_liveness(planted(), dead_tol=0.0)["status"][TINY] == CONSTANT
    assert filter_liveness(planted(), dead_tol=0.0, constant_tol=0.0)["status"][TINY] == LIVE
    # the tolerances are relative to the layer's scale: the same layer at 1e-8 keeps its
    # statuses (a random-init network's deep layers peak at 1e-8)
    small = filter_liveness(planted() * 1e-8)["status"].tolist()
    assert small == [DEAD, CONSTANT, DEAD, DEAD, LIVE, CONSTANT]
    assert filter_liveness(np.zeros((3, 2)))["status"].tolist() == [DEAD, DEAD]
    with pytest.raises(IsicInputError, match=r"\[images, filters\]"):
        filter_liveness(np.zeros(5))


def test_inactive_table_and_counts():
    liveness = {"conv1": filter_liveness(planted()), "conv2": filter_liveness(planted()[:, 4:5])}
    table = inactive_filters(liveness)
    assert list(table.columns) == ["layer", "filter", "status", "max", "std"]
    assert table["filter"].tolist() == [ZERO, CONST, NEG, TINY, NOISY_CONST]
    assert set(table["layer"]) == {"conv1"}
    assert liveness_counts(liveness) == {
        "conv1": {LIVE: 1, DEAD: 3, CONSTANT: 2},
        "conv2": {LIVE: 1, DEAD: 0, CONSTANT: 0},
    }


def tempting(n: int = 60, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Max activations where dead and constant filters would win every ranking.

    Filter 0 is dead but follows class 1 (and the artifact) perfectly; filter 1 is a
    constant 0.5 (z = 0 beats the live filters' negative mean z of class 0); filters 2, 3
    are live, weakly class-specific.
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    a = np.empty((n, 4))
    a[:, 0] = -1.0 + 0.5 * labels + 0.01 * rng.random(n)
    a[:, 1] = 0.5
    a[:, 2] = rng.normal(0.0, 1.0, n) + 0.8 * labels
    a[:, 3] = rng.normal(0.0, 1.0, n) + 0.4 * labels
    return a, labels


def test_no_ranking_holds_a_dead_or_constant_filter():
    acts, labels = tempting()
    top = class_specific_filters(acts, labels, ["a", "b"], quantile=0.9, top_n=4)
    assert set(top["filter"]) == {2, 3}  # fewer rows than top_n: only two are live
    assert top.groupby("class").size().tolist() == [2, 2]
    art = pd.Series(np.where(labels == 1, "ruler", "none"))
    gtop = group_specific_filters(acts, art, quantile=0.9, top_n=4)
    assert set(gtop["filter"]) == {2, 3}
    rec = artifact_recovery_auc(acts, art, quantile=0.9).iloc[0]
    assert rec["filter"] == 2 and rec["best_filter"] in (2, 3)  # dead filter 0 has AUC 1.0
    assert rec["best_auc"] < 1.0


def test_report_lists_the_inactive_filters_and_ranks_only_live_ones():
    acts, labels = tempting()
    art = pd.Series(np.where(labels == 1, "ruler", "none"))
    report = filter_report({"conv": acts}, labels, ["a", "b"], art, quantile=0.9, top_n=4)
    assert report.liveness["conv"]["status"].tolist() == [DEAD, CONSTANT, LIVE, LIVE]
    for table in (report.class_top, report.group_top):
        assert set(table["filter"]) == {2, 3}
    assert set(report.recovery["best_filter"]) <= {2, 3}


def test_all_dead_layer_has_empty_rankings():
    acts = -np.ones((10, 3))
    labels = np.arange(10) % 2
    report = filter_report({"conv": acts}, labels, ["a", "b"], pd.Series(["ruler"] * 10))
    assert report.class_top.empty and report.group_top.empty and report.recovery.empty


def test_most_activated_skips_dead_and_constant_filters():
    max_acts = torch.tensor([[-0.01, -3.0, 0.3, 0.1], [-0.02, 0.5, 0.3, 0.2]])
    # means: -0.015 (dead), -1.25 (live), 0.3 (constant), 0.15 (live)
    assert most_activated(max_acts, 2) == [3, 1]


def test_most_activated_table_ranks_live_filters_by_mean_max():
    max_acts = torch.tensor([[-0.01, -3.0, 0.3, 0.1], [-0.02, 0.5, 0.3, 0.2]])
    table = most_activated_table(max_acts, 5)
    assert list(table["filter"]) == [3, 1] and list(table["rank"]) == [1, 2]
    assert table["mean_max"].tolist() == pytest.approx([0.15, -1.25])
    assert table["max"].tolist() == pytest.approx([0.2, 0.5])


def test_response_is_read_after_the_batchnorm_that_follows_a_conv():
    assert response_layers(SmallCNN(1), ["features.0", "features.12"]) == {
        "features.1": "features.0",
        "features.13": "features.12",
    }
    plain = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.BatchNorm2d(2))
    assert response_layers(plain, ["0", "2"]) == {"0": "0", "2": "2"}  # BN of other width

    class Block(nn.Module):  # torchvision / timm ResNet naming: convN -> bnN
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)
            self.conv2 = nn.Conv2d(4, 4, 3)

    assert response_layers(nn.Sequential(Block()), ["0.conv1", "0.conv2"]) == {
        "0.bn1": "0.conv1",
        "0.conv2": "0.conv2",
    }


def test_a_negative_batchnorm_weight_revives_a_filter_whose_conv_output_is_negative():
    """Why the response is read after the BatchNorm: conv max < 0 on every image, yet the
    BatchNorm (weight -1) makes the ReLU's input positive -- live, not dead."""
    from torch.utils.data import DataLoader, TensorDataset

    from isic_tracking.interpret.activations import activation_stats

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 1, 1, bias=False), nn.BatchNorm2d(1), nn.ReLU())
    with torch.no_grad():
        model[0].weight.fill_(-1.0)
        model[1].weight.fill_(-1.0)
    model.eval()
    loader = DataLoader(TensorDataset(torch.rand(8, 3, 6, 6)), batch_size=4)
    conv = activation_stats(model, loader, ["0"], reduce=("max",))["0"].max
    bn = activation_stats(model, loader, list(response_layers(model, ["0"])), reduce=("max",))
    assert filter_liveness(conv)["status"][0] == DEAD
    assert filter_liveness(bn["1"].max)["status"][0] == LIVE


def test_response_stats_are_keyed_by_the_layer_and_read_after_its_batchnorm():
    from torch.utils.data import DataLoader, TensorDataset

    from isic_tracking.interpret.response import response_stats

    model = nn.Sequential(nn.Conv2d(3, 2, 1, bias=False), nn.BatchNorm2d(2), nn.ReLU())
    with torch.no_grad():
        model[0].weight.fill_(-1.0)
        model[1].weight.copy_(torch.tensor([-1.0, 1.0]))
    model.eval()
    loader = DataLoader(TensorDataset(torch.rand(8, 3, 6, 6)), batch_size=4)
    stats = response_stats(model, loader, ["0"], reduce=("max",))
    assert list(stats) == ["0"] and stats["0"].name == "0"
    # channel 0's negative BatchNorm weight makes it live; channel 1 stays dead
    assert filter_liveness(stats["0"].max)["status"].tolist() == [LIVE, DEAD]
