"""The filters stage's attribution part, on a real run: Grad-CAM grids beside the class
exemplar grids, the attribution ranking next to the frequency ranking, and the switch-off."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from isic_tracking.interpret.activations import LayerStats
from isic_tracking.stages.filters.config import FiltersConfig
from isic_tracking.stages.filters.runner import run_filters
from isic_tracking.stages.filters.runner_attribution import class_sample
from tests.helpers import checkpoint_run

LAYER = "layer4.1.conv2"


def _cfg(model_run: str, manifest: Path, **kw) -> FiltersConfig:
    base = dict(
        model_uri=f"runs:/{model_run}/checkpoint", manifest=str(manifest), split="train",
        layers=f"layer3.1.conv2,{LAYER}", groups="none", exemplars=2, top_n=2,
        attribution_images=3, attribution_steps=4, device="cpu",
    )  # fmt: skip
    return FiltersConfig(**(base | kw))


def _table(run_id: str, path: str) -> pd.DataFrame:
    return pd.read_csv(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path))


def _files(run_id: str, path: str) -> set[str]:
    out = set()
    for f in MlflowClient().list_artifacts(run_id, path):
        out |= _files(run_id, f.path) if f.is_dir else {f.path}
    return out


def test_filters_logs_gradcam_beside_exemplars_and_the_attribution_ranking(
    mlflow_tracking, binary_manifest
):
    out = run_filters(_cfg(checkpoint_run(0), binary_manifest))
    rid = out.run_id
    files = _files(rid, "figures/exemplars")
    for cls in ("benign", "malignant"):
        grid = f"figures/exemplars/{LAYER}/class_{cls}.png"
        assert grid in files and grid.replace(".png", "_gradcam.png") in files
    top = _table(rid, "tables/attribution_filters.csv")
    assert list(top.columns) == ["class", "filter", "score", "rank", "layer"]
    assert (
        set(top["layer"]) == set(out.layers) and top.groupby(["class", "layer"]).size().max() == 2
    )
    # ranks follow the scores
    for _, d in top.groupby(["class", "layer"]):
        assert d.sort_values("rank")["score"].is_monotonic_decreasing
    agree = _table(rid, "tables/attribution_agreement.csv")
    freq = _table(rid, "tables/class_filters.csv")
    for r in agree.itertuples():
        a = set(freq.query("`class` == @r._1 and layer == @r.layer")["filter"])
        b = set(top.query("`class` == @r._1 and layer == @r.layer")["filter"])
        assert r.jaccard == len(a & b) / len(a | b)  # what it says: the logged top sets
        assert -1 <= r.spearman <= 1
    side = _table(rid, "tables/attribution_vs_frequency.csv")
    assert {"frequency_filter", "attribution_filter", "rank"} <= set(side.columns)
    m = MlflowClient().get_run(rid).data.metrics
    last = agree[agree["layer"] == LAYER].set_index("class")
    assert m["attribution_jaccard/malignant"] == last.loc["malignant", "jaccard"]
    assert "attribution_spearman_layer3.1.conv2/benign" in m


def test_attribution_and_gradcam_switch_off(mlflow_tracking, binary_manifest):
    out = run_filters(
        _cfg(checkpoint_run(0), binary_manifest, attribution="none", gradcam=False, layers=LAYER)
    )
    files = _files(out.run_id, "")
    assert f"figures/exemplars/{LAYER}/class_malignant.png" in files
    assert not [f for f in files if "gradcam" in f or "attribution" in f]
    assert not [k for k in MlflowClient().get_run(out.run_id).data.metrics if "attribution" in k]


def test_class_sample_draws_per_class_under_the_seed():
    import torch

    stats = LayerStats(
        name="x", max=torch.zeros(10, 1), mean=None, argmax=None, fmap_size=(1, 1),
        input_size=(1, 1), indices=torch.arange(10, 20), labels=torch.tensor([0] * 7 + [1] * 3),
    )  # fmt: skip
    a = class_sample(stats, 2, 2, seed=0)
    assert len(a) == 4 and set(a[:2]) <= set(range(10, 17)) and set(a[2:]) <= {17, 18, 19}
    assert (a == class_sample(stats, 2, 2, seed=0)).all()
    assert len(class_sample(stats, 2, 0, seed=0)) == 10  # 0: every image
