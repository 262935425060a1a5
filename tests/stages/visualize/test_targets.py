"""What visualize renders: channel specs, class targets, filters tables, batches, names."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.featvis.render import RenderResult
from isic_tracking.interpret.names import metric_key, safe_name
from isic_tracking.stages.visualize.targets import (
    Target,
    channel_targets,
    check_filters_table,
    choices,
    chunks,
    class_targets,
    concat_results,
    folder,
    most_activated,
    objective,
    parse_channels,
    picture_file,
    picture_row,
    render_plan,
    top_from_table,
)


def test_choices_and_channel_specs():
    assert choices("thesis, none,thesis", ["thesis", "none", "maco"], "preset") == [
        "thesis",
        "none",
    ]
    with pytest.raises(IsicInputError, match=r"unknown preset \['fancy'\]; choose from a, b"):
        choices("a,fancy", ["a", "b"], "preset")
    with pytest.raises(IsicInputError, match="unknown preset ' , '"):
        choices(" , ", ["a"], "preset")
    assert parse_channels(" top_n ") == "top_n" and parse_channels("classes") == "classes"
    assert parse_channels("3, 17,42") == [3, 17, 42]
    with pytest.raises(IsicInputError, match="channels='first'"):
        parse_channels("first")


def test_class_targets_binary_logit_both_ways_and_one_per_class():
    binary = class_targets({"classes": ["benign", "malignant"], "num_outputs": 1})
    assert [(t.channel, t.sign, t.label) for t in binary] == [
        (0, 1.0, "malignant"),
        (0, -1.0, "benign"),
    ]
    multi = class_targets({"classes": ["a", "b"], "num_outputs": 3})
    assert [(t.channel, t.label) for t in multi] == [(0, "a"), (1, "b"), (2, "2")]
    assert class_targets({"num_outputs": 1})[0].label == "malignant"


def test_top_from_a_filters_table():
    table = pd.DataFrame(
        {
            "class": ["benign", "benign", "malignant", "malignant", "benign"],
            "filter": [7, 9, 9, 40, 2],
            "percent": [50.0, 40.0, 60.0, 30.0, 90.0],
            "rank": [1, 2, 1, 2, 1],
            "layer": ["last", "last", "last", "last", "first"],
        }
    )
    assert top_from_table(table, "last", "last", 2) == {
        9: "malignant, benign",
        7: "benign",
        40: "malignant",
    }
    assert top_from_table(table, "last", "last", 1) == {9: "malignant", 7: "benign"}
    assert top_from_table(table, "middle", "last", 2) is None
    old = table[table["layer"] == "last"].drop(columns=["layer", "class", "percent"])
    assert list(top_from_table(old, "last", "last", 1)) == [7, 9]  # no layer: the last layer's
    assert top_from_table(old, "first", "last", 1) is None
    with pytest.raises(IsicInputError, match=r"run x: t.csv lacks column\(s\) \['rank'\]"):
        check_filters_table(table.drop(columns="rank"), "run x: t.csv")


def test_most_activated_and_labels():
    max_acts = torch.tensor([[0.0, 5.0, 1.0], [0.0, 3.0, 2.0]])
    assert most_activated(max_acts, 2) == [1, 2]
    targets = channel_targets({"conv": {4: "benign", 2: ""}})
    assert [(t.layer, t.channel, t.label) for t in targets["conv"]] == [
        ("conv", 4, "conv:4 (benign)"),
        ("conv", 2, "conv:2"),
    ]


def test_chunks_keep_one_sign_per_batch_and_objectives():
    ts = [Target("", 0, 1.0), Target("", 0, -1.0), Target("", 1, -1.0), Target("", 2, -1.0)]
    assert [[t.channel for t in c] for c in chunks(ts, 2)] == [[0], [0, 1], [2]]
    assert objective([Target("conv", 1), Target("conv", 3)]).name.startswith("channel(conv")
    neg = objective(ts[1:3])
    assert neg({"": torch.tensor([[2.0, 5.0], [1.0, 4.0]])}).tolist() == [-2.0, -4.0]


def test_concat_results_joins_batches_in_order():
    def part(n, start):
        return RenderResult(
            images=torch.full((n, 3, 4, 4), float(start)), activation=torch.arange(start, start + n),
            history=torch.empty(0), history_steps=torch.empty(0), labels=[], objective="o",
            seconds=1.5, settings={"steps": 2},
        )  # fmt: skip

    a, b = [Target("c", 0, label="c:0")], [Target("c", 1, label="c:1"), Target("c", 2, label="c:2")]
    res = concat_results([(a, part(1, 0)), (b, part(2, 1))])
    assert res.activation.tolist() == [0, 1, 2] and res.images.shape == (3, 3, 4, 4)
    assert res.labels == ["c:0", "c:1", "c:2"] and res.seconds == 3.0


def test_file_names_rows_and_plan():
    logit = Target("", 0, -1.0, "benign")
    assert folder("") == "logits" and folder("a/b c") == "a_b_c"
    assert picture_file("model", "isic", "thesis", logit) == (
        "images/logits/model_isic_thesis_neglogit0000.png"
    )
    assert picture_file("imagenet", "isic", "none", Target("features.10", 3)) == (
        "images/features.10/imagenet_isic_none_ch0003.png"
    )
    row = picture_row(logit, 0.25, "isic", "thesis", "model", "f.png")
    assert row["layer"] == "logits" and row["objective"] == "-class_logit(0)"
    assert row["activation_reached"] == 0.25 and row["label"] == "benign"
    plan = list(render_plan({"model": 1, "imagenet": 2}, ["isic", "torch_dreams"], ["a", "b"]))
    assert [(k, e, r) for k, _, e, r in plan] == [
        ("model", "isic", "a"), ("model", "isic", "b"), ("model", "torch_dreams", "torch_dreams"),
        ("imagenet", "isic", "a"), ("imagenet", "isic", "b"),
        ("imagenet", "torch_dreams", "torch_dreams"),
    ]  # fmt: skip
    assert safe_name("layer4.1/x y") == "layer4.1_x_y"
    assert metric_key("recovery_auc/ink (blue)") == "recovery_auc/ink _blue_"
