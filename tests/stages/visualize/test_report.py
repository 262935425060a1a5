"""The visualize stage's report: its metrics, twins and colour report, on planted rows."""

from __future__ import annotations

import math

import pytest
import torch

from isic_tracking.interpret import fv_natural
from isic_tracking.interpret.colour_check import colour_histogram
from isic_tracking.stages.visualize.report import (
    colour_report,
    natural_columns,
    overall_metrics,
    render_metrics,
    twin_of,
)


def _row(ratio: float, layer: str = "features.0", reg: str = "tuned", model: str = "model"):
    return {"layer": layer, "regularization": reg, "model": model, "natural_max": 1.0,
            "fv_over_natural_max": ratio, "fv_over_natural_p99": ratio * 1.1}  # fmt: skip


def test_natural_columns_put_the_ratio_next_to_the_reference():
    ref = fv_natural.reference(torch.tensor([[1.0, -1.0], [2.0, -2.0]]))
    cols = natural_columns(torch.tensor([3.0, 1.0]), ref)
    assert cols[0]["natural_max"] == 2.0 and cols[0]["fv_over_natural_max"] == 1.5
    assert math.isnan(cols[1]["fv_over_natural_max"])  # never positive: not live
    assert natural_columns(torch.tensor([1.0]), None) == [{}]


def test_render_metrics_have_one_slash_and_count_the_live_filters():
    rows = [_row(0.5), _row(1.2), _row(2.0), _row(float("nan"))]
    m = render_metrics("features.0-tuned", torch.tensor([1.0, 2.0]), 3.0, rows)
    assert m["fv_over_natural_max_frac/features.0-tuned"] == pytest.approx(2 / 3)
    assert m["fv_over_natural_max_median/features.0-tuned"] == pytest.approx(1.2)
    assert m["live_filters/features.0-tuned"] == 3 and m["not_live_filters/features.0-tuned"] == 1
    assert m["activation_mean/features.0-tuned"] == 1.5
    assert all(k.count("/") == 1 for k in m)


def test_overall_is_per_preset_over_the_models_channels_only():
    rows = [_row(2.0), _row(0.5, "features.12"), _row(0.1, "logits"), _row(0.1, model="imagenet"),
            _row(0.2, reg="thesis")]  # fmt: skip
    assert overall_metrics(rows) == {
        "fv_over_natural_max_frac/all-tuned": 0.5, "fv_over_natural_max_frac/all-thesis": 0.0,
    }  # fmt: skip


def test_twin_is_the_unregularized_render_else_the_imagenet_base():
    done = [("model", "isic", "tuned"), ("model", "isic", "none"), ("base", "isic", "tuned")]
    assert twin_of(("model", "isic", "tuned"), done) == ("model", "isic", "none")
    assert twin_of(("model", "isic", "tuned"), done[::2]) == ("base", "isic", "tuned")
    assert twin_of(("model", "isic", "none"), done) is None
    assert twin_of(("base", "isic", "tuned"), done) is None


def test_colour_report_pairs_each_class_with_its_picture():
    brown, blue = torch.tensor([0.45, 0.29, 0.19]), torch.tensor([0.36, 0.42, 0.56])
    hists = torch.stack([colour_histogram(c.expand(50, 3)) for c in (brown, blue)])
    images = torch.stack(
        [blue[:, None, None].expand(3, 8, 8), brown[:, None, None].expand(3, 8, 8)]
    )
    rows = [{"label": "malignant"}, {"label": "benign"}]  # the binary order: + then - logit
    table, metrics, passed = colour_report(rows, images, ["benign", "malignant"], hists, "tuned")
    assert passed and table["passed"].all()
    assert metrics["colour_check_passed/tuned"] == 1.0
    assert metrics["colour_distance/benign-tuned"] < metrics["colour_nearest_other/benign-tuned"]
    assert "colour_check_chance_p/tuned" not in metrics  # 2 classes: never significant
