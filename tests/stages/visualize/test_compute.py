"""The ``visualize`` computation without MLflow, on a tiny real conv net and synthetic images:
the one natural pass (each batch read once, every model's references, the class histograms
only with logits), and the renders of a plan (one row and one PNG per picture, the natural
columns against the references, the metrics, the colour check of the class logits)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from isic_tracking.interpret.featvis import LOGITS
from isic_tracking.stages.visualize.compute import (
    NaturalPass,
    PlanModel,
    VisualizePlan,
    natural_pass,
    render_all,
)
from isic_tracking.stages.visualize.targets import Target, channel_targets, class_targets

pytestmark = pytest.mark.usefixtures("one_torch_thread")
MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
CONFIG = {"num_outputs": 1, "classes": ["benign", "malignant"]}


def _net(seed: int) -> nn.Sequential:
    """conv -> BatchNorm -> ReLU -> pool -> one binary logit (names ``0``, ``1``, ...)."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 1),
    )  # fmt: skip
    with torch.no_grad():
        net[1].running_mean.uniform_(-0.2, 0.2)
        net[1].running_var.uniform_(0.5, 2.0)
    return net.eval()


def _images(n: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    """Skin-coloured squares, a dark lesion in the middle: brown for 0, blue-grey for 1."""
    y = torch.arange(n) % 2
    x = torch.empty(n, 3, 16, 16)
    x[:] = torch.tensor([0.85, 0.7, 0.6])[:, None, None]
    lesion = torch.where(
        y[:, None] == 1, torch.tensor([0.3, 0.3, 0.45]), torch.tensor([0.45, 0.25, 0.1])
    )
    x[:, :, 4:12, 4:12] = lesion[:, :, None, None]
    x += 0.02 * torch.rand(x.shape, generator=torch.Generator().manual_seed(0))
    return x.clamp(0, 1), y


def _batches(calls: list[int] | None = None):
    x, y = _images()

    def batches():
        if calls is not None:
            calls.append(1)
        for i in range(0, len(x), 5):
            yield x[i : i + 5], y[i : i + 5]

    return batches


def _models() -> tuple[PlanModel, ...]:
    return PlanModel("model", _net(0), MEAN, STD), PlanModel("base", _net(1), MEAN, STD)


def _groups(logits: bool = True) -> dict[str, tuple[Target, ...]]:
    groups = {n: tuple(ts) for n, ts in channel_targets({"0": {1: "", 4: ""}}).items()}
    if logits:
        groups[LOGITS] = tuple(class_targets(CONFIG))
    return groups


def _plan(tmp_path: Path, natural: NaturalPass, groups, models=None, **kw) -> VisualizePlan:
    args = dict(
        models=models or _models(), groups=groups, engines=("isic",), presets=("none", "tuned"),
        classes=("benign", "malignant"), size=16, steps=2, seed=0, batch_size=4, device="cpu",
        amp=False, natural=natural, about_images="12 synthetic images", header="net",
        tags={}, out=tmp_path / "out",
    )  # fmt: skip
    return VisualizePlan(**{**args, **kw})


def _direct_max(net: nn.Module, channel: int) -> float:
    """The natural max of a filter's response: the BatchNorm's output, spatial mean, over
    every image, normalized as the render does."""
    x, _ = _images()
    with torch.no_grad():
        out = net[1](
            net[0]((x - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None])
        )
    return float(out[:, channel].mean(dim=(1, 2)).max())


def test_natural_pass_reads_each_batch_once_for_every_model():
    calls: list[int] = []
    models, groups = _models(), _groups()
    nat = natural_pass("data", _batches(calls), "12 synthetic images", models, groups, 2)
    assert calls == [1]  # one pass feeds both models, the colour basis and the histograms
    assert set(nat.refs) == {("model", "0"), ("base", "0"), ("model", LOGITS)}  # no base logits
    for m in models:
        ref = nat.refs[m.key, "0"]
        assert ref.n_images == 12
        for i, c in enumerate((1, 4)):
            assert float(ref.max[i]) == pytest.approx(_direct_max(m.module, c), rel=1e-5)
    assert nat.colours.startswith("data (12 synthetic images") and nat.colour is not None
    assert nat.hists is not None and nat.hists.shape[0] == 2


def test_natural_pass_without_images_or_logits():
    nat = natural_pass("data", None, "none (split=none)", _models(), _groups(), 2)
    assert nat.refs == {} and nat.hists is None and nat.colour is None
    assert nat.colours.startswith("imagenet (no natural images")
    nat = natural_pass("imagenet", _batches(), "12 images", _models(), _groups(False), 2)
    assert nat.hists is None and set(nat.refs) == {("model", "0"), ("base", "0")}


def test_render_all_writes_a_picture_and_a_row_per_target_model_and_preset(tmp_path):
    models, groups = _models(), _groups()
    nat = natural_pass("data", _batches(), "12 synthetic images", models, groups, 2)
    plan = _plan(tmp_path, nat, groups, models)
    result = render_all(plan)
    assert [lr.layer for lr in result.layers] == ["0", LOGITS]
    chans, logits = result.layers
    # 2 channels x 2 models x 2 presets; the logits (2 directions) of the model only
    assert {r.key for r in chans.renders} == {
        (k, "isic", p) for k in ("model", "base") for p in ("none", "tuned")
    }
    assert {r.key for r in logits.renders} == {
        ("model", "isic", "none"),
        ("model", "isic", "tuned"),
    }
    rows = pd.DataFrame(result.rows)
    assert len(rows) == 2 * 2 * 2 + 2 * 2
    assert all((plan.out / f).is_file() for f in rows["file"])
    assert rows["file"].is_unique
    for r in chans.renders:
        ref = nat.refs[r.model_key, "0"]
        for i, row in enumerate(r.rows):
            assert row["activation_reached"] == pytest.approx(float(r.result.activation[i]))
            assert row["natural_max"] == pytest.approx(float(ref.max[i]))
            if bool(ref.live[i]) and float(ref.max[i]) > 0:
                ratio = row["activation_reached"] / row["natural_max"]
                assert row["fv_over_natural_max"] == pytest.approx(ratio, rel=1e-4)
            else:
                assert math.isnan(row["fv_over_natural_max"])
    assert "activation_mean/0-tuned" in result.metrics
    assert "activation_mean/0-none-base" in result.metrics
    assert "fv_over_natural_max_frac/all-tuned" in result.metrics
    assert logits.colour_check is not None and chans.colour_check is None
    assert set(logits.colour_check.table["regularization"]) == {"none", "tuned"}
    assert "colour_distance/malignant-tuned" in result.metrics


def test_render_all_without_natural_images_leaves_the_natural_columns_empty(tmp_path):
    groups = _groups(logits=False)
    nat = natural_pass("data", None, "none (split=none)", _models(), groups, 2)
    plan = _plan(tmp_path, nat, groups, models=_models()[:1], presets=("none",))
    result = render_all(plan)
    rows = pd.DataFrame(result.rows)
    assert len(rows) == 2 and rows["natural_max"].isna().all()
    assert rows["fv_over_natural_max"].isna().all()
    assert not any(k.startswith("fv_over_natural") for k in result.metrics)
    assert set(result.metrics) == {"activation_mean/0-none", "seconds/0-none"}


def test_the_same_plan_renders_the_same_pictures(tmp_path):
    groups = _groups(logits=False)
    nat = natural_pass("imagenet", None, "none", _models(), groups, 2)
    first = render_all(_plan(tmp_path / "a", nat, groups, presets=("tuned",)))
    second = render_all(_plan(tmp_path / "b", nat, groups, presets=("tuned",)))
    for a, b in zip(first.layers[0].renders, second.layers[0].renders):
        assert torch.equal(a.result.images, b.result.images)
