"""The ``sanity`` entry point: what it logs, and its messages on bad input."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from entrypoints import sanity
from tests.helpers import checkpoint_run, count_reads

LAYERS = "conv1,layer2.0.conv1,layer4.1.conv2"


def _args(model_run: str, manifest: Path, *extra: str) -> list[str]:
    return [
        "--model_uri", f"runs:/{model_run}/checkpoint", "--manifest", str(manifest),
        "--split", "train", "--layers", LAYERS, "--n_images", "3", "--steps", "2",
        "--top_k", "2", "--device", "cpu", *extra,
    ]  # fmt: skip


@pytest.mark.slow  # renders, randomizes and logs: ~10-35 s on 2 cores
def test_sanity_logs_similarity_baselines_figures_and_tags(
    mlflow_tracking, binary_manifest, monkeypatch
):
    model_run = checkpoint_run(0)
    ref_run = checkpoint_run(1)
    argv = _args(
        model_run, binary_manifest, "--randomize", "fc.1,conv1",
        "--reference_model_uri", f"runs:/{ref_run}/checkpoint",
    )  # fmt: skip
    reads = count_reads(monkeypatch)
    assert sanity.main(argv) == 0
    # the sampled natural images (3 per class) are decoded once for every measure
    assert len(reads) == 2 * 3 and set(reads.values()) == {1}
    client = MlflowClient()
    (run,) = client.search_runs(
        [mlflow.get_experiment_by_name("tests").experiment_id], "tags.`isic.stage` = 'sanity'"
    )
    m = run.data.metrics
    for layer in LAYERS.split(","):
        for prefix in (
            "similarity",
            "baseline_same_class",
            "baseline_other_classes",
            "baseline_noise",
            "baseline_unregularized",
            "unregularized_vs_regularized",
            "similarity_class_logit",
        ):
            assert -1.0 <= m[f"{prefix}/{layer}"] <= 1.0, f"{prefix}/{layer}"
    for level in ("trained_other_seed", "fc.1", "conv1"):
        assert f"randomization_spearman/{level}" in m and f"randomization_ssim/{level}" in m
    # the verdict against noise: per layer, a difference inside its interval, one level deep
    for layer in LAYERS.split(","):
        lo, d, hi = (m[f"fv_minus_noise{s}/{layer}"] for s in ("_lo", "", "_hi"))
        assert lo <= d <= hi
        assert m[f"natural_minus_noise_lo/{layer}"] <= m[f"natural_minus_noise_hi/{layer}"]
        assert f"class_logit_minus_noise/{layer}" in m
    assert all(k.count("/") <= 1 for k in m), [k for k in m if k.count("/") > 1]
    tags = run.data.tags
    assert tags["isic.sanity.verdict"] in {
        "closer than noise at every layer",
        "closer than noise at some layers",
        "not closer than noise at any layer",
    }
    assert tags["isic.sanity.verdict_layers"].startswith("conv1: ")
    assert tags["mlflow.note.content"].startswith("**Sanity: visualizations are ")
    assert "| layer | fv − noise | interval | verdict |" in tags["mlflow.note.content"]
    assert 0.0 <= m["transferability"] <= 1.0
    assert run.data.tags["model.source_run_id"] == model_run
    assert run.data.tags["isic.sanity.visualizations"] == "channel"
    arts = {
        a.path for d in ("figures", "tables") for a in client.list_artifacts(run.info.run_id, d)
    }
    assert {
        "figures/path_similarity.png",
        "figures/layer_correlation.png",
        "figures/randomization.png",
        "figures/visualizations.png",
        "tables/path_similarity.csv",
        "tables/visualizations.csv",
        "tables/transferability.csv",
        "tables/verdict.csv",
        "tables/versus_noise.csv",
    } <= arts
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="tables/verdict.csv", dst_path=tmp
        )
        verdicts = pd.read_csv(local)
    assert verdicts["layer"].tolist() == LAYERS.split(",")
    assert set(verdicts["verdict"]) <= {"closer", "not closer", "undecided"}
    assert (verdicts["lo"] <= verdicts["hi"]).all()


def _error(capsys, argv: list[str]) -> str:
    assert sanity.main(argv) == 2
    return capsys.readouterr().err


def test_bad_input_messages(mlflow_tracking, binary_manifest, capsys):
    model_run = checkpoint_run(0)
    err = _error(capsys, _args(model_run, binary_manifest, "--fv_run", model_run))
    assert "not a visualize run" in err and model_run in err
    err = _error(capsys, _args(model_run, binary_manifest, "--layers", "layer9.conv"))
    assert "'layer9.conv' does not exist" in err and "layer4.1.conv2" in err
    err = _error(capsys, _args(model_run, binary_manifest, "--n_images", "500"))
    assert "too few natural images" in err and "500 needed per class" in err
    assert "class 'malignant' has" in err
    err = _error(capsys, _args(model_run, binary_manifest, "--randomize", "fc.9"))
    assert "randomize: layer(s) ['fc.9'] do not exist" in err and "fc.1" in err


def _stage_runs(stage: str) -> list:
    exp = mlflow.get_experiment_by_name("tests").experiment_id
    return MlflowClient().search_runs(
        [exp], f"tags.`isic.stage` = '{stage}'", order_by=["attributes.start_time DESC"]
    )


@pytest.mark.slow  # a real visualize run first
def test_sanity_reads_a_visualize_run(mlflow_tracking, binary_manifest):
    from entrypoints import visualize

    model_run = checkpoint_run(0)
    uri = f"runs:/{model_run}/checkpoint"
    # channels 0..3 of the last conv, with and without regularization (the twins)
    assert (
        visualize.main(
            [
                "--model_uri",
                uri,
                "--layers",
                "layer4.1.conv2",
                "--channels",
                "0,1,2,3",
                "--regularization",
                "thesis,none",
                "--steps",
                "2",
                "--device",
                "cpu",
            ]
        )  # fmt: skip
        == 0
    )
    (vis_run,) = _stage_runs("visualize")
    argv = _args(model_run, binary_manifest, "--fv_run", vis_run.info.run_id, "--randomize", "none")
    assert sanity.main(argv) == 0
    run = _stage_runs("sanity")[0]
    assert run.data.tags["isic.fv_run"] == vis_run.info.run_id
    m = run.data.metrics
    for layer in LAYERS.split(","):
        assert f"similarity/{layer}" in m
        assert f"unregularized_vs_regularized/{layer}" in m  # the run's `none` twins
        assert f"similarity_class_logit/{layer}" in m  # rendered here: the run has none
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="tables/visualizations.csv", dst_path=tmp
        )
        table = pd.read_csv(local)
    channels = table[table["kind"] == "channel"]
    assert set(channels["channel"]) <= {0, 1, 2, 3}
    assert channels.groupby("target").size().max() <= 2  # top_k=2 per class
    assert set(channels["regularization"]) == {"thesis"}
    assert set(channels["target"]) <= {0, 1}


@pytest.mark.slow  # a real visualize run first
def test_sanity_on_a_visualize_run_of_another_size_without_class_logits(
    mlflow_tracking, binary_manifest, caplog
):
    """The model takes 64 px, the visualize run rendered at 48 px and has no class-logit
    pictures: sanity renders those (and its noise) at the run's size, instead of failing to
    stack 48 px and 64 px pictures (the demo's crash)."""
    from entrypoints import visualize

    model_run = checkpoint_run(0)
    argv = ["--model_uri", f"runs:/{model_run}/checkpoint", "--layers", "layer4.1.conv2",
            "--channels", "0,1,2", "--image_size", "48", "--steps", "2", "--device", "cpu"]  # fmt: skip
    assert visualize.main(argv) == 0
    (vis_run,) = _stage_runs("visualize")
    argv = _args(model_run, binary_manifest, "--fv_run", vis_run.info.run_id, "--randomize", "fc.1")
    with caplog.at_level("INFO", logger="isic_tracking"):
        assert sanity.main(argv) == 0
    said = [
        r.getMessage() for r in caplog.records if r.name == "isic_tracking.stages.sanity.runner"
    ]
    assert said[-1].startswith("sanity: visualizations are ")  # the conclusion comes last
    assert " than noise at " in said[-1] and "95% bootstrap interval" in said[-1]
    run = _stage_runs("sanity")[0]
    assert run.data.params["render_size"] == "48"
    assert run.data.params["colours_resolved"].startswith("data (")  # its natural images
    assert f"similarity_class_logit/{LAYERS.split(',')[-1]}" in run.data.metrics
    assert "randomization_ssim/fc.1" in run.data.metrics  # renders at 48 px compared with 48 px
