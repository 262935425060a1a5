"""The ``filters`` computation without MLflow, on planted truth: a 1x1-conv net whose filters
read the colours that mark each class (red: malignant, green: benign) and an artifact (a blue
ruler), whose binary logit reads the class filters; one dead filter and one constant one.
The rankings, the shortcut check, the ablation, the exemplars and the skips must find exactly
what was planted."""

from __future__ import annotations

import dataclasses
import logging

import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from isic_tracking.stages.filters.compute import FiltersPlan, ablate, compute_filters, dissection
from isic_tracking.stages.filters.config import FiltersConfig
from isic_tracking.stages.filters.probes import NO_MASKS

pytestmark = pytest.mark.usefixtures("one_torch_thread")
N, SIZE = 24, 8
# filter -> the input colour it reads: 0, 1 red; 2, 3 green; 4 blue; 5 minus blue (never
# positive: dead); 6 grey; 7 nothing but its bias (constant)
READS = [(1, 0, 0), (0.8, 0, 0), (0, 1, 0), (0, 0.8, 0), (0, 0, 1), (0, 0, -1), (0.3, 0.3, 0.3),
         (0, 0, 0)]  # fmt: skip
CONFIG = {"task": "binary", "classes": ["benign", "malignant"], "image_size": SIZE,
          "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}  # fmt: skip


def _net() -> nn.Sequential:
    conv = nn.Conv2d(3, len(READS), 1)
    head = nn.Linear(len(READS), 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(READS)[:, :, None, None])
        conv.bias.zero_()
        conv.bias[7] = 0.5
        head.weight.copy_(torch.tensor([[1.0, 1.0, -1.0, -1.0, 0, 0, 0, 0]]))
        head.bias.zero_()
    return nn.Sequential(conv, nn.ReLU(), nn.AdaptiveMaxPool2d(1), nn.Flatten(), head).eval()


class _Images(Dataset):
    """Grey-ish skin, a red (malignant) or green (benign) lesion; every third malignant image
    and every fourth image overall carries a blue ruler in a corner."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.y = torch.arange(N) % 2
        self.x = 0.1 * torch.rand(N, 3, SIZE, SIZE, generator=g)
        for i in range(N):
            self.x[i, 0 if self.y[i] == 1 else 1, 2:6, 2:6] += 1.0
        self.ruler = torch.tensor([i % 3 == 0 or i % 4 == 0 for i in range(N)])
        self.x[self.ruler, 2, :2, :] += 1.0

    def __len__(self) -> int:
        return N

    def __getitem__(self, i: int):
        return self.x[i], int(self.y[i]), i


def _plan(**settings) -> FiltersPlan:
    data = _Images()
    rows = pd.DataFrame({
        "image_id": [f"ISIC_{i:07d}" for i in range(N)], "label": data.y.numpy(),
        "artifact": ["ruler" if r else "none" for r in data.ruler.tolist()],
    })  # fmt: skip
    groups = pd.DataFrame({"ruler": data.ruler.numpy()})
    defaults = dict(top_n=2, ablate_k=2, ablate_draws=8, exemplars=3, device="cpu")
    cfg = FiltersConfig(model_uri="runs:/planted/checkpoint", **{**defaults, **settings})
    return FiltersPlan(
        cfg, _net(), CONFIG, ("0",), rows, "planted.csv", ("benign", "malignant"),
        "the planted images", groups, {"0": "0"}, DataLoader(data, batch_size=10), "cpu", {},
    )  # fmt: skip


def _top(table: pd.DataFrame, key: str, name: str) -> set[int]:
    return set(table.loc[table[key] == name, "filter"].astype(int))


def test_the_planted_filters_are_found_ablated_and_shown(caplog):
    plan = _plan(shortcut_artifact="ruler")
    with caplog.at_level(logging.INFO, logger="isic_tracking"):
        result = compute_filters(plan)
    report = result.report
    assert _top(report.class_top, "class", "malignant") == {0, 1}
    assert _top(report.class_top, "class", "benign") == {2, 3}
    assert 4 in _top(report.group_top, "group", "ruler")
    status = report.liveness["0"].set_index("filter")["status"]
    assert status[5] == "dead" and status[7] == "constant"
    assert not {5, 7} & set(result.most_activated["filter"])
    # the ruler's top filter recovers it: the planted shortcut check passes
    assert result.shortcut is not None and result.shortcut.filter == 4
    assert result.shortcut.passed and result.shortcut.layer == "0"
    # the logit reads the class filters: removing them drops it more than random filters
    verdicts = result.ablation.verdicts.set_index("name")
    assert verdicts.loc["malignant", "passed"] and verdicts.loc["benign", "passed"]
    assert (result.ablation.table["k"] == 2).all() and result.ablation.seconds > 0
    # no concept masks: no dissection, one line saying so
    assert result.dissection is None and NO_MASKS in caplog.messages
    paths = {g.path for g in result.exemplars}
    assert paths == {f"figures/exemplars/0/class_{c}.png" for c in ("benign", "malignant")} | {
        "figures/exemplars/0/group_ruler.png"
    }
    for g in result.exemplars:
        assert len(g.crops) == len(g.labels) == 3 * len(g.columns) and g.ncols == 3


def test_the_exemplars_of_a_red_filter_are_malignant_images():
    result = compute_filters(_plan())
    (grid,) = [g for g in result.exemplars if g.path.endswith("class_malignant.png")]
    ids = [label.split("\n")[0] for label in grid.labels]
    assert all(int(i[-7:]) % 2 == 1 for i in ids)  # odd images are the malignant ones


def test_off_switches_and_a_model_without_classes(caplog):
    plan = _plan(ablate_k=0, dissect=False, exemplars=0)
    result = compute_filters(plan)
    assert result.ablation is None and result.dissection is None and result.exemplars == ()
    assert result.shortcut is None
    no_classes = dataclasses.replace(_plan(), config={**CONFIG, "task": None})
    with caplog.at_level(logging.INFO, logger="isic_tracking"):
        assert ablate(no_classes, result.stats, result.report) is None
        assert dissection(plan) is None  # off
    assert "ablation needs a classifier of the analysed classes: skipped" in caplog.messages


def test_ablated_layers_last_all_names_and_unknown():
    from isic_tracking.errors import IsicInputError
    from isic_tracking.stages.filters.compute import ablated_layers

    ranked = ("a.0", "b.1", "c.2")
    assert ablated_layers("last", ranked) == ["c.2"]
    assert ablated_layers("all", ranked) == list(ranked)
    assert ablated_layers(" c.2, a.0 ", ranked) == ["a.0", "c.2"]  # shallow to deep
    with pytest.raises(IsicInputError, match=r"\['x'\] not among the ranked layers \(a.0, b.1"):
        ablated_layers("a.0,x", ranked)
