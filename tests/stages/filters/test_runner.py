"""The `filters` stage against a real sqlite MLflow store and a model trained by `train`."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from entrypoints.filters import main
from isic_tracking.config import TrainConfig
from isic_tracking.data.manifest import read_manifest, write_manifest
from isic_tracking.stages.train.runner import run_training
from tests.helpers import count_reads

TINY = "timm:test_resnet"
# torchvision: a missing cached file fails fast (timm asks the hub, which retries for ~50 s)
BASE = "mobilenet_v3_small"


@pytest.fixture
def trained(mlflow_tracking: str, binary_manifest: Path, tmp_path: Path):
    cfg = TrainConfig(
        manifest=str(binary_manifest),
        arch=TINY,
        folds=2,
        epochs=1,
        batch_size=16,
        image_size=48,
        work_dir=str(tmp_path / "work"),
    )
    return run_training(cfg)


def _artifacts(client: MlflowClient, run_id: str, path: str = "") -> set[str]:
    out = set()
    for f in client.list_artifacts(run_id, path):
        out |= _artifacts(client, run_id, f.path) if f.is_dir else {f.path}
    return out


@pytest.mark.slow
def test_filters_stage_logs_tables_figures_metrics_and_model_tags(trained, capsys):
    uri = f"models:/{trained.model_name}@champion"
    assert main(["--model_uri", uri, "--exemplars", "2", "--top_n", "3", "--device", "cpu"]) == 0
    runs = mlflow.search_runs(filter_string="tags.`isic.stage` = 'filters'")
    assert len(runs) == 1
    run = MlflowClient().get_run(runs.run_id.iloc[0])
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    assert tags["model.name"] == trained.model_name and tags["model.train_run_id"] == trained.run_id
    assert "model.version" in tags
    assert params["split"] == "val0" and params["quantile"] == "0.95"

    files = _artifacts(MlflowClient(), run.info.run_id)
    layer = params["layers_resolved"]
    assert layer and "," not in layer  # default: the last conv layer only
    expected = {
        "tables/class_filters.csv",
        "figures/class_top.png",
        f"figures/class_heatmap_{layer}.png",
        "tables/group_filters.csv",
        "tables/jaccard.csv",
        "tables/recovery_auc.csv",
        "figures/exemplars/" + layer + "/class_benign.png",
        "figures/exemplars/" + layer + "/class_malignant.png",
    }
    assert expected <= files, expected - files
    top = pd.read_csv(
        mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="tables/class_filters.csv"
        )
    )
    assert list(top.columns) == [
        *("class", "filter", "occurrences", "percent", "rank", "mean_z", "layer")
    ]
    assert set(top["class"]) == {"benign", "malignant"} and top["rank"].max() == 3

    # the validation images of fold 0 carry synthetic artifacts: one AUC metric per group
    rows = read_manifest(params["manifest"])
    groups = pd.read_csv(
        mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="tables/group_filters.csv"
        )
    )
    assert set(groups["group"]) <= set(rows["artifact"]) - {"none"}
    for g in set(groups["group"]):
        assert 0.0 <= metrics[f"recovery_auc/{g}"] <= 1.0
    assert f"figures/exemplars/{layer}/group_{sorted(groups['group'])[0]}.png" in files
    # dead / constant filters: counted, listed, never ranked; metric keys one `/` level deep
    assert "tables/inactive_filters.csv" in files
    inactive = pd.read_csv(
        mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="tables/inactive_filters.csv"
        )
    )
    assert list(inactive.columns) == ["layer", "filter", "status", "max", "std"]
    assert metrics["dead_filters"] == (inactive["status"] == "dead").sum()
    assert metrics[f"constant_filters/{layer}"] == (inactive["status"] == "constant").sum()
    assert not set(inactive["filter"]) & (set(top["filter"]) | set(groups["filter"]))
    most = pd.read_csv(  # Table 10: the most activated live filters, what visualize renders
        mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="tables/most_activated.csv"
        )
    )
    assert list(most.columns) == ["rank", "filter", "mean_max", "max", "layer"]
    assert not set(most["filter"]) & set(inactive["filter"])
    assert most["mean_max"].is_monotonic_decreasing
    assert all(k.count("/") <= 1 for k in metrics), sorted(metrics)
    assert params["response_layers"] != layer  # timm test_resnet: conv -> bn

    assert main(["--model_uri", uri, "--split", "val7", "--device", "cpu"]) == 2
    assert "has no fold 7" in capsys.readouterr().err


def test_bad_layer_and_bad_model_uri_are_clear_errors(mlflow_tracking: str, capsys):
    base = ["--allow_random", "true", "--device", "cpu", "--split", "all"]
    assert main(["--model_uri", f"pretrained:{BASE}", "--layers", "nope", *base]) == 2
    err = capsys.readouterr().err
    assert "error: layer 'nope' does not exist" in err and "conv layers are: " in err
    assert main(["--model_uri", "models:/no-such-model@champion", *base]) == 2
    assert "no registered model 'no-such-model'" in capsys.readouterr().err
    assert main(["--model_uri", "s3://somewhere", *base]) == 2
    assert "cannot resolve model URI" in capsys.readouterr().err
    # nothing was logged for bad input
    assert mlflow.search_runs(filter_string="tags.`isic.stage` = 'filters'").empty


def test_class_without_images_and_zscore_groups_on_an_imagenet_base(
    mlflow_tracking: str, binary_manifest: Path, tmp_path: Path, capsys
):
    df = read_manifest(binary_manifest)
    benign_only = tmp_path / "benign.csv"
    write_manifest(df[df["label_name"] == "benign"], benign_only)
    base = ["--model_uri", f"pretrained:{BASE}", "--allow_random", "true", "--device", "cpu"]
    base += ["--image_size", "48"]
    code = main([*base, "--manifest", str(benign_only), "--split", "all"])
    assert code == 2
    err = capsys.readouterr().err
    assert "class 'malignant' has no images in split 'all'" in err and "benign.csv" in err
    # a base model has no training run: no folds to take val0 from
    assert main([*base, "--manifest", str(binary_manifest)]) == 2
    assert "needs the folds of a training run" in capsys.readouterr().err

    args = [*base, "--manifest", str(binary_manifest), "--split", "train", "--groups", "zscore"]
    assert main([*args, "--exemplars", "0"]) == 0
    run_id = mlflow.search_runs(filter_string="tags.`isic.stage` = 'filters'").run_id.iloc[0]
    run = MlflowClient().get_run(run_id)
    assert run.data.tags["model.uri"] == f"pretrained:{BASE}"
    files = _artifacts(MlflowClient(), run_id)
    assert "tables/group_filters.csv" in files and not any("exemplars" in f for f in files)
    assert "recovery_auc/zscore_outlier" in run.data.metrics


def test_runner_returns_the_report_it_logged(mlflow_tracking: str, binary_manifest: Path):
    from isic_tracking.stages.filters.config import FiltersConfig
    from isic_tracking.stages.filters.runner import run_filters

    cfg = FiltersConfig(
        model_uri=f"pretrained:{BASE}", manifest=str(binary_manifest), split="train",
        groups="none", exemplars=0, image_size=48, top_n=2, device="cpu", allow_random=True,
    )  # fmt: skip
    out = run_filters(cfg)
    assert (
        out.n_grids == 0
        and out.n_images == (read_manifest(binary_manifest)["split"] == "train").sum()
    )
    logged = pd.read_csv(
        mlflow.artifacts.download_artifacts(
            run_id=out.run_id, artifact_path="tables/class_filters.csv"
        )
    )
    assert logged["filter"].tolist() == out.report.class_top["filter"].tolist()
    assert set(logged["layer"]) == set(out.layers) and out.report.group_top.empty
    run = MlflowClient().get_run(out.run_id)
    # mobilenet_v3's last conv is followed by its BatchNorm: the response is read there
    layer = out.layers[0]
    assert run.data.params["response_layers"] == layer.rsplit(".", 1)[0] + ".1"
    counts = out.report.liveness[layer]["status"].value_counts()
    assert run.data.metrics["dead_filters"] == counts.get("dead", 0)
    assert run.data.metrics[f"constant_filters/{layer}"] == counts.get("constant", 0)


def test_shortcut_check_of_a_group_the_split_lacks_is_refused_before_any_run(
    mlflow_tracking: str, binary_manifest: Path, capsys
):
    args = ["--model_uri", f"pretrained:{BASE}", "--allow_random", "true", "--device", "cpu"]
    args += ["--manifest", str(binary_manifest), "--split", "train", "--image_size", "48"]
    assert main([*args, "--groups", "none", "--shortcut_artifact", "ruler"]) == 2
    assert "shortcut_artifact='ruler': no image of split 'train'" in capsys.readouterr().err
    assert mlflow.search_runs(filter_string="tags.`isic.stage` = 'filters'").empty


def test_every_pass_reads_the_images_decoded_once_and_ablation_takes_the_last_layer(
    trained, monkeypatch, capsys
):
    """Ranking, ablation, exemplars and attribution all pass over the images: each image is
    decoded once per run. With every layer ranked, only the last is ablated unless
    ablate_layers says otherwise (each ablated layer costs 1 + 2 x (targets + draws)
    forwards per image)."""
    from isic_tracking.stages.filters.config import FiltersConfig
    from isic_tracking.stages.filters.runner import run_filters

    uri = f"models:/{trained.model_name}@champion"
    kw = dict(model_uri=uri, layers="all", top_n=2, ablate_k=1, ablate_draws=2, exemplars=2,
              attribution_images=2, attribution_steps=2, device="cpu")  # fmt: skip
    reads = count_reads(monkeypatch)
    out = run_filters(FiltersConfig(**kw))
    assert len(out.layers) > 1
    assert len(reads) == out.n_images and set(reads.values()) == {1}
    assert set(out.ablation["layer"]) == {out.layers[-1]}

    assert main(["--model_uri", uri, "--layers", "all", "--ablate_layers", "nope",
                 "--device", "cpu"]) == 2  # fmt: skip
    assert "ablate_layers='nope': ['nope'] not among the ranked layers" in capsys.readouterr().err
