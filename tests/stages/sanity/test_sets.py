"""Which visualizations sanity compares: objective tables, a visualize run's rows, twins,
targets, and the metric names of the summary (fast: before this, only slow stage tests)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.randomization import resolve_levels
from isic_tracking.interpret.sanity import summary_metrics
from isic_tracking.stages.sanity.sets import (
    logit_target,
    objective_table,
    one_of,
    ordered,
    render_table,
    run_visualizations,
    table_objective,
    twins,
)
from tests.interpret.featvis.conftest import make_tiny_cnn

CLASSES = ["benign", "malignant"]


def test_objective_table_binary_minimizes_the_one_logit_for_benign():
    t = objective_table(CLASSES, 1, "conv", torch.tensor([[4, 1], [2, 4]]))
    logits = t[t["kind"] == "class_logit"]
    assert logits[["channel", "sign", "target"]].values.tolist() == [[0, -1.0, 0], [0, 1.0, 1]]
    assert logits["objective"].tolist() == ["-class_logit(0)", "class_logit(0)"]
    assert logits["label"].tolist() == ["class benign", "class malignant"]
    chans = t[t["kind"] == "channel"]
    assert chans[["channel", "target"]].values.tolist() == [[4, 0], [1, 0], [2, 1], [4, 1]]
    assert chans["label"].iloc[0] == "conv:4 (benign)"
    assert chans["objective"].iloc[0] == "channel(conv, 4)"
    multi = objective_table(["a", "b", "c"], 3, None, None)
    assert multi["channel"].tolist() == [0, 1, 2] and set(multi["sign"]) == {1.0}


def test_logit_target_from_label_sign_or_index():
    assert logit_target("malignant", "class_logit(0)", 0, CLASSES) == 1
    assert logit_target("", "-class_logit(0)", 0, CLASSES) == 0  # negated one logit: benign
    assert logit_target("", "class_logit(0)", 0, CLASSES) == 1
    assert logit_target("", "class_logit(2)", 2, ["a", "b", "c"]) == 2


def test_one_of_prefers_and_falls_back():
    t = pd.DataFrame({"engine": ["torch_dreams", "isic", "isic"], "x": [1, 2, 3]})
    assert one_of(t, "engine", ["isic"])["x"].tolist() == [2, 3]
    assert one_of(t, "engine", ["maco"])["x"].tolist() == [1]  # the first value present
    assert one_of(t, "nope", ["isic"]) is t


def _run_table() -> pd.DataFrame:
    """A visualize run's table: two presets + twins, a second engine, the ImageNet base, logits."""
    rows = []
    for model in ("model", "imagenet"):
        for engine, regs in (("isic", ["fourier", "thesis", "none"]), ("torch_dreams", ["td"])):
            for reg in regs:
                for ch in (0, 3):
                    rows.append(
                        dict(layer="conv", channel=ch, objective=f"channel(conv, {ch})",
                             engine=engine, regularization=reg, model=model, label=f"conv:{ch}",
                             file=f"{model}_{engine}_{reg}_{ch}.png")
                    )  # fmt: skip
    for sign, label in (("", "malignant"), ("-", "benign")):
        rows.append(
            dict(layer="logits", channel=0, objective=f"{sign}class_logit(0)", engine="isic",
                 regularization="thesis", model="model", label=label, file=f"logit{sign}.png")
        )  # fmt: skip
    return pd.DataFrame(rows)


def test_run_visualizations_keeps_the_models_isic_thesis_pictures_and_their_twins():
    t = run_visualizations(_run_table(), CLASSES, source="visualize run r")
    assert set(t["model"]) == {"model"} and set(t["engine"]) == {"isic"}
    assert t["regularization"].tolist() == ["thesis"] * 4 + ["none"] * 2
    channels = t[t["kind"] == "channel"]
    assert channels["target"].tolist() == [-1] * 4 and channels["label"].iloc[0] == "conv:0"
    logits = t[t["kind"] == "class_logit"]
    assert logits["layer"].tolist() == ["", ""] and logits["sign"].tolist() == [1.0, -1.0]
    assert logits["target"].tolist() == [1, 0]
    assert logits["label"].tolist() == ["class malignant", "class benign"]
    none = _run_table().assign(model="imagenet")
    with pytest.raises(IsicInputError, match="visualize run r has no visualizations"):
        run_visualizations(none, CLASSES, source="visualize run r")


def test_twins_pair_each_regularized_picture_with_its_none_twin():
    t = run_visualizations(_run_table(), CLASSES, source="r")
    images = torch.arange(len(t), dtype=torch.float32)[:, None, None, None].expand(-1, 3, 2, 2)
    reg, reg_images, twin = twins(t, images)
    # rows 0, 1: thesis channels 0, 3; rows 2, 3: logits (thesis only); rows 4, 5: the twins
    assert reg["kind"].tolist() == ["channel", "channel", "class_logit", "class_logit"]
    assert reg_images[:, 0, 0, 0].tolist() == [0, 1, 2, 3]
    assert twin is None  # the logits have no twin: no unregularized baseline
    channels = t[t["kind"] == "channel"].reset_index(drop=True)
    swapped = channels.iloc[[0, 1, 3, 2]].reset_index(drop=True)  # twins in the other order
    reg, _, tw = twins(swapped, images[[0, 1, 5, 4]])
    assert reg["channel"].tolist() == [0, 3]
    assert tw[:, 0, 0, 0].tolist() == [4, 5]  # matched by objective, not by position
    no_twin = channels.iloc[[0, 1, 3]].reset_index(drop=True)  # channel 0's twin is gone
    assert twins(no_twin, images[:3])[2] is None
    assert twins(t.drop(columns="regularization"), images)[2] is None


def test_table_objective_signs_the_logits_and_render_table_fills_every_row():
    t = objective_table(CLASSES, 1, "6", torch.tensor([[1], [2]]))
    acts = {"": torch.tensor([[0.5], [0.5]])}
    logit = table_objective(t[t["kind"] == "class_logit"])
    assert logit(acts).tolist() == [-0.5, 0.5]
    model = make_tiny_cnn(num_outputs=1)
    images, reached = render_table(
        model, t, steps=1, size=32, mean=(0.5,) * 3, std=(0.25,) * 3, regularization="none", seed=0
    )
    assert images.shape == (4, 3, 32, 32) and torch.isfinite(reached).all()
    again, _ = render_table(
        model, t, steps=1, size=32, mean=(0.5,) * 3, std=(0.25,) * 3, regularization="none", seed=0
    )
    assert torch.equal(images, again)  # seeded


def test_ordered_layers_and_randomization_levels():
    model = make_tiny_cnn()
    assert ordered(model, ["6", "0", "3"]) == ["0", "3", "6"]
    assert resolve_levels(model, "none") == []
    assert resolve_levels(model, "auto")[0] == "9"  # the head first
    assert resolve_levels(model, " 9, 3") == ["9", "3"]
    with pytest.raises(IsicInputError, match=r"randomize: layer\(s\) \['7x'\] do not exist.*9"):
        resolve_levels(model, "9,7x")
    assert resolve_levels(nn.Sequential(nn.Conv2d(3, 3, 1)), "auto") == ["0"]


def test_summary_metrics_names():
    summary = pd.DataFrame(
        {
            "comparison": ["visualization", "visualization", "noise", "custom"],
            "layer": ["a", "b", "a", "a"],
            "mean": [0.2, 0.4, 0.1, 0.5],
        }
    )
    assert summary_metrics(summary) == pytest.approx(
        {
            "similarity/a": 0.2,
            "similarity/b": 0.4,
            "baseline_noise/a": 0.1,
            "custom/a": 0.5,
            "similarity_mean": 0.3,
            "baseline_noise_mean": 0.1,
            "custom_mean": 0.5,
        }
    )


def test_table_objective_reads_a_channel_after_its_batchnorm_when_given_the_model():
    import pandas as pd

    from isic_tracking.models import create_model
    from isic_tracking.stages.sanity.sets import table_objective

    model = create_model("smallcnn", 2)
    table = pd.DataFrame({"kind": ["channel"] * 2, "layer": ["features.12"] * 2, "channel": [3, 5]})
    assert table_objective(table).layers == ("features.12",)
    assert table_objective(table, model).layers == ("features.13",)  # conv -> BatchNorm
