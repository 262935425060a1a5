"""The per-layer sanity verdict on a tiny real sanity run: one verdict per pictured layer, the
deepest one equal to the stage's main verdict (whose names stay)."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from isic_tracking.stages.sanity.config import SanityConfig
from isic_tracking.stages.sanity.runner import run_sanity
from isic_tracking.stages.sanity.runner_per_layer import log_layer_verdicts
from tests.helpers import checkpoint_run

LAYERS = "conv1,layer2.0.conv1,layer4.1.conv2"
FIRST, LAST = "conv1", "layer4.1.conv2"


def _cfg(model_run: str, manifest, **kw) -> SanityConfig:
    base = dict(
        model_uri=f"runs:/{model_run}/checkpoint", manifest=str(manifest), split="train",
        layers=LAYERS, n_images=3, steps=2, top_k=2, randomize="none", n_boot=50, device="cpu",
    )  # fmt: skip
    return SanityConfig(**(base | kw))


@pytest.mark.slow  # renders two layers' pictures and logs: ~15-35 s on 2 cores
def test_sanity_logs_one_verdict_per_pictured_layer(mlflow_tracking, binary_manifest):
    out = run_sanity(_cfg(checkpoint_run(0), binary_manifest))
    rid = out.run_id
    own = pd.read_csv(
        mlflow.artifacts.download_artifacts(
            run_id=rid, artifact_path="tables/verdict_per_layer.csv"
        )
    )
    assert own["layer"].tolist() == [FIRST, LAST] and own["depth"].tolist() == [0, 2]
    assert set(own["verdict"]) <= {"closer", "not closer", "undecided"}
    assert own["path_layers"].eq(3).all()
    client = MlflowClient()
    m = client.get_run(rid).data.metrics
    # the deepest pictured layer is the main set: the same difference as the main verdict's
    assert m[f"layer_fv_minus_noise/{LAST}"] == m[f"fv_minus_noise/{LAST}"]
    assert m[f"layer_fv_minus_noise/{FIRST}"] == own["difference"][0]
    history = client.get_metric_history(rid, "layer_fv_minus_noise")
    assert sorted(h.step for h in history) == [0, 2]
    tags = client.get_run(rid).data.tags
    assert tags["isic.sanity.pictured_layer_verdicts"].startswith(f"{FIRST}: ")
    assert "isic.sanity.verdict" in tags  # the main verdict stays
    arts = {a.path for a in client.list_artifacts(rid, "figures")}
    assert "figures/verdict_per_layer.png" in arts and "figures/path_similarity.png" in arts


@pytest.mark.slow  # renders and logs: ~10-30 s on 2 cores
def test_fv_layers_none_logs_no_per_layer_verdict(mlflow_tracking, binary_manifest):
    out = run_sanity(_cfg(checkpoint_run(0), binary_manifest, fv_layers="none"))
    m = MlflowClient().get_run(out.run_id).data.metrics
    assert f"fv_minus_noise/{LAST}" in m and not [k for k in m if k.startswith("layer_fv")]
    assert log_layer_verdicts(None, [], None, None, None, [], metric="spearman", pooling="mean",
                              standardize=False, n_boot=1, level=0.9, seed=0).empty  # fmt: skip


@pytest.mark.slow  # a real visualize run first
def test_a_visualize_run_of_two_layers_gives_two_verdicts(mlflow_tracking, binary_manifest):
    from entrypoints import visualize

    model_run = checkpoint_run(0)
    argv = ["--model_uri", f"runs:/{model_run}/checkpoint", "--layers", f"{FIRST},{LAST}",
            "--channels", "0,1,2", "--steps", "2", "--device", "cpu"]  # fmt: skip
    assert visualize.main(argv) == 0
    vis_run = mlflow.search_runs(filter_string="tags.`isic.stage` = 'visualize'").run_id.iloc[0]
    out = run_sanity(_cfg(model_run, binary_manifest, fv_run=vis_run))
    own = pd.read_csv(
        mlflow.artifacts.download_artifacts(
            run_id=out.run_id, artifact_path="tables/verdict_per_layer.csv"
        )
    )
    assert own["layer"].tolist() == [FIRST, LAST] and (own["n"] <= 2 * 2).all()
    m = MlflowClient().get_run(out.run_id).data.metrics
    assert m[f"layer_fv_minus_noise/{LAST}"] == m[f"fv_minus_noise/{LAST}"]
