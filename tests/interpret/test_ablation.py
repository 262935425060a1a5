"""Ablation against hand-set models whose class logits read known channels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.ablation import (
    ABLATION_COLUMNS,
    ablation_pass,
    ablation_table,
    ablation_verdicts,
    artifact_targets,
    class_scores,
    class_targets,
    random_sets,
)
from isic_tracking.stages.filters.report import filter_report
from tests.interpret.nets import no_hooks

C = 32  # channels; class 1 fires 0 and 1, class 0 fires 2 and 3, the rest is noise


def _images(n: int = 40, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.rand(n, C, 6, 6, generator=g)  # noise in [0, 1) everywhere
    x[y == 1, 0:2] += 2.0
    x[y == 0, 2:4] += 2.0
    return x, y


def _net(read: dict[int, tuple[int, int]]) -> nn.Sequential:
    """Identity 1x1 conv -> ReLU -> mean pool -> linear read-out: logit k = sum of read[k]."""
    conv = nn.Conv2d(C, C, 1, bias=False)
    head = nn.Linear(C, 2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(C)[:, :, None, None])
        head.weight.zero_()
        for k, chans in read.items():
            head.weight[k, list(chans)] = 1.0
    return nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)


RELEVANT = {1: (0, 1), 0: (2, 3)}  # the logits read what the classes fire
IRRELEVANT = {1: (8, 9), 0: (10, 11)}  # the logits read noise channels


def _run(read, draws: int = 30):
    x, y = _images()
    loader = [(x[i : i + 16], y[i : i + 16], torch.arange(i, min(i + 16, len(x))))
              for i in range(0, len(x), 16)]  # fmt: skip
    model = _net(read)
    maxes = x.flatten(2).amax(2)  # the identity conv's max response
    report = filter_report({"0": maxes}, y, ["benign", "malignant"], top_n=2)
    targets = class_targets(report.class_top, "0", 2, y.numpy(), ["benign", "malignant"])
    live = np.ones(C, dtype=bool)
    sets = [t.filters for t in targets] + random_sets(live, 2, draws, seed=0)
    means = x.mean(dim=(0, 2, 3))
    result = ablation_pass(model, loader, "0", sets, means)
    assert no_hooks(model)
    return targets, result, ablation_table(result, targets)


def test_ranked_filters_that_carry_the_class_beat_random_filters():
    targets, result, table = _run(RELEVANT)
    assert {t.name: t.filters for t in targets} == {"benign": (2, 3), "malignant": (0, 1)}
    assert list(table.columns) == [*ABLATION_COLUMNS, "random"]
    # zeroing both read-out channels leaves the malignant logit at exactly 0
    assert torch.allclose(result.removed[1, 0, :, 1], torch.zeros(40), atol=1e-6)
    own = table[(table["images"] == "own") & (table["score"] == "logit")]
    for r in own.itertuples():
        assert r.drop > r.random_q95 + 0.5 and r.percentile == 1.0 and r.passed, r
    verdicts = ablation_verdicts(table)
    assert verdicts["passed"].all() and set(verdicts["name"]) == {"benign", "malignant"}
    # on the other class's images the class's channels hold only noise: a smaller drop
    other = table[(table["images"] == "other") & (table["score"] == "logit")]
    assert (other["drop"].to_numpy() < own["drop"].to_numpy() - 1.0).all()


def test_ranked_filters_the_decision_ignores_do_not_pass():
    targets, _, table = _run(IRRELEVANT)
    assert {t.name: t.filters for t in targets} == {"benign": (2, 3), "malignant": (0, 1)}
    own = table[(table["images"] == "own") & (table["variant"] == "zero")]
    assert np.allclose(own["drop"], 0.0, atol=1e-6)  # the read-out never sees them
    assert not ablation_verdicts(table)["passed"].any()


def test_artifact_targets_measure_the_malignant_score_on_images_with_the_artifact():
    top = pd.DataFrame({"group": ["ruler", "ruler", "hair"], "filter": [4, 5, 6],
                        "rank": [1, 2, 1], "layer": "L"})  # fmt: skip
    members = pd.DataFrame({"ruler": [1, 1, 0, 0], "hair": [0, 0, 1, 0]}).astype(bool)
    labels = np.array([1, 0, 0, 1])
    (ruler,) = artifact_targets(top, "L", 2, members, labels, malignant=1)  # hair: no malignant
    assert ruler.filters == (4, 5) and ruler.score == 1
    assert ruler.own.tolist() == [True, False, False, False]
    assert ruler.other.tolist() == [False, False, False, True]


def test_class_scores_of_one_binary_logit_and_bad_inputs():
    z = torch.tensor([[2.0], [-1.0]])
    assert torch.equal(class_scores(z, "logit"), torch.tensor([[-2.0, 2.0], [1.0, -1.0]]))
    assert torch.allclose(class_scores(z, "prob").sum(-1), torch.ones(2))
    with pytest.raises(IsicInputError, match="live filters"):
        random_sets(np.array([True, False, True]), 3, 5, seed=0)
    sets = random_sets(np.array([True, False, True, True]), 2, 50, seed=1)
    assert all(1 not in s and len(set(s)) == 2 for s in sets)
    assert sets == random_sets(np.array([True, False, True, True]), 2, 50, seed=1)
