"""Which pictures of a layer the per-layer verdict compares."""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from isic_tracking.stages.sanity.pictures import layer_objectives, run_layer_pictures

KW = dict(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), image_size=16, batch_size=8)


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 2),
    )  # fmt: skip


def _natural() -> tuple[torch.Tensor, torch.Tensor]:
    imgs = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    imgs[4:, 0] = 1.0  # class 1: red
    return imgs, torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])


def test_run_layer_pictures_keeps_the_layers_top_k_per_class_and_their_positions():
    model = _net()
    natural, cls = _natural()
    table = pd.DataFrame(
        {
            "kind": ["class_logit"] + ["channel"] * 10,
            "layer": [""] + ["0"] * 4 + ["2"] * 6,
            "channel": [0, 0, 1, 2, 3, 0, 1, 2, 3, 4, 5],
            "activation_reached": [9.0, 1, 2, 3, 4, 6, 5, 4, 3, 2, 1],
            "label": ["logit"] + [f"c{i}" for i in range(10)],
        }
    )
    rows, pos = run_layer_pictures(model, table, "2", natural, cls, ["a", "b"], 2, KW)
    assert (table.loc[pos.numpy(), "layer"] == "2").all()
    assert rows["channel"].tolist() == table.loc[pos.numpy(), "channel"].tolist()
    assert rows.groupby("target").size().max() <= 2 and set(rows["target"]) <= {0, 1}
    for _, d in rows.groupby("target"):  # the best-rendered pictures of each class first
        assert d["activation_reached"].is_monotonic_decreasing
    assert all(lb.endswith(("(a)", "(b)")) for lb in rows["label"])


def test_layer_objectives_are_the_layers_channels_per_class():
    model = _net()
    natural, cls = _natural()
    t = layer_objectives(model, "0", natural, cls, ["a", "b"], 2, 2, KW)
    assert (t["kind"] == "channel").all() and (t["layer"] == "0").all()
    assert t.groupby("target").size().tolist() == [2, 2]
    assert t["channel"].between(0, 3).all()
