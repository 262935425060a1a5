"""The ``visualize`` entry point: what it logs, how it picks channels, its bad-input messages."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient

from entrypoints import visualize
from tests.helpers import checkpoint_run, count_reads

FIRST, LAST = "conv1", "layer4.1.conv2"  # resnet18


def _args(model_run: str, *extra: str) -> list[str]:
    return [
        "--model_uri", f"runs:/{model_run}/checkpoint", "--steps", "2", "--image_size", "32",
        "--device", "cpu", *extra,
    ]  # fmt: skip


def _visualize_run() -> mlflow.entities.Run:
    client = MlflowClient()
    exp = mlflow.get_experiment_by_name("tests").experiment_id
    (run,) = client.search_runs([exp], "tags.`isic.stage` = 'visualize'")
    return run


def _table(run_id: str) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="tables/activations.csv", dst_path=tmp
        )
        return pd.read_csv(path)


def _artifacts(run_id: str, path: str) -> set[str]:
    client = MlflowClient()
    out, todo = set(), [path]
    while todo:
        for a in client.list_artifacts(run_id, todo.pop()):
            (todo.append(a.path) if a.is_dir else out.add(a.path))
    return out


def test_logs_grids_images_table_settings_and_tags(mlflow_tracking):
    model_run = checkpoint_run()
    argv = _args(
        model_run, "--layers", "last", "--channels", "0,3", "--regularization", "thesis,none",
        "--engine", "isic,torch_dreams", "--compare_pretrained", "true", "--allow_random", "true",
    )  # fmt: skip
    assert visualize.main(argv) == 0
    run = _visualize_run()
    assert run.data.tags["model.source_run_id"] == model_run
    assert run.data.params["regularization"] == "thesis,none"
    assert run.data.params["resolved.image_size"] == "32"
    assert run.data.params["render.path"] == "fast" and "render.amp" in run.data.params
    table = _table(run.info.run_id)
    assert list(table.columns[:6]) == [
        "layer", "channel", "objective", "activation_reached", "engine", "regularization",
    ]  # fmt: skip
    # 2 channels x 2 models x (isic: thesis, none + torch_dreams), and the class logits
    # (2 directions x 2 presets) of the model with our engine
    logits = table[table["layer"] == "logits"]
    table = table[table["layer"] != "logits"]
    assert len(table) == 12 and len(logits) == 4
    assert set(logits["model"]) == {"model"} and set(logits["engine"]) == {"isic"}
    assert set(table["layer"]) == {LAST} and set(table["channel"]) == {0, 3}
    assert set(table["regularization"]) == {"thesis", "none", "torch_dreams"}
    assert set(table["model"]) == {"model", "base"}  # the model's own random init
    assert table["activation_reached"].notna().all()
    images = _artifacts(run.info.run_id, "images")
    assert set(table["file"]) | set(logits["file"]) == images
    assert all(f.startswith(f"images/{LAST}/") for f in table["file"])
    figures = _artifacts(run.info.run_id, "figures")
    assert f"figures/{LAST}/model_isic_thesis.png" in figures
    assert f"figures/{LAST}/base_torch_dreams_torch_dreams.png" in figures
    assert f"figures/{LAST}/comparison.png" in figures
    # metric keys: one "/" level, layer and preset (engine, model when not the default) once
    assert f"activation_mean/{LAST}-thesis" in run.data.metrics
    assert f"activation_mean/{LAST}-torch_dreams-base" in run.data.metrics
    assert all(k.count("/") <= 1 for k in run.data.metrics), sorted(run.data.metrics)
    # the contract with `sanity --fv_run`: it reads this table and finds the images it names
    from isic_tracking.stages.sanity.runner import read_visualize_run

    with tempfile.TemporaryDirectory() as tmp:
        read, pictures = read_visualize_run(run.info.run_id, ["benign", "malignant"], tmp)
    assert 0 < len(read) == pictures.shape[0] and pictures.shape[1:] == (3, 32, 32)
    assert set(read["file"]) <= set(table["file"]) | set(logits["file"])


def test_top_n_from_a_filters_run(mlflow_tracking):
    model_run = checkpoint_run()
    top = pd.DataFrame(
        {
            "class": ["benign", "benign", "malignant", "malignant", "benign"],
            "filter": [7, 9, 9, 40, 2],
            "occurrences": [5, 4, 6, 3, 9],
            "percent": [50.0, 40.0, 60.0, 30.0, 90.0],
            "rank": [1, 2, 1, 2, 1],
            "layer": [LAST, LAST, LAST, LAST, FIRST],
        }
    )
    with mlflow.start_run() as filters_run, tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tag("isic.stage", "filters")
        top.to_csv(Path(tmp) / "class_filters.csv", index=False)
        mlflow.log_artifact(str(Path(tmp) / "class_filters.csv"), "tables")
    argv = _args(model_run, "--top_n", "2", "--filters_run", filters_run.info.run_id)
    assert visualize.main(argv) == 0
    run = _visualize_run()
    table = _table(run.info.run_id)
    # every class's top 2, best rank first, ties by percent: 9 (rank 1, 60 %), 7 (rank 1, 50 %),
    # 40 (rank 2); filter 9 ranks for both classes
    last = table[table["layer"] == LAST]
    assert last["channel"].tolist() == [9, 7, 40]
    assert last["label"].tolist() == [
        f"{LAST}:9 (malignant, benign)", f"{LAST}:7 (benign)", f"{LAST}:40 (malignant)",
    ]  # fmt: skip
    assert table.loc[table["layer"] == FIRST, "channel"].tolist() == [2]
    assert run.data.tags["isic.filters_run"] == filters_run.info.run_id
    # each tile's class selectivity: the share of each class's images firing the filter
    assert last["selectivity"].tolist() == [
        "malignant 60%, benign 40%",
        "benign 50%",
        "malignant 30%",
    ]


def test_top_n_on_the_fly_from_the_manifest(mlflow_tracking, binary_manifest):
    model_run = checkpoint_run()
    argv = _args(
        model_run, "--layers", "last", "--top_n", "3", "--manifest", str(binary_manifest),
        "--n_images", "4",
    )  # fmt: skip
    assert visualize.main(argv) == 0
    table = _table(_visualize_run().info.run_id)
    chans = table[table["layer"] != "logits"]
    assert len(chans) == 3 and chans["channel"].nunique() == 3


def _flip_last_batchnorm(model) -> None:
    """Give the last conv's BatchNorm random signs and shifts, so that the conv's output and
    its response (the BatchNorm's output, what the ReLU sees) rank filters differently."""
    g = torch.Generator().manual_seed(1)
    bn = model.layer4[1].bn2
    bn.weight.copy_(torch.randn(bn.num_features, generator=g))
    bn.bias.copy_(torch.randn(bn.num_features, generator=g))


def test_top_n_on_the_fly_ranks_the_responses_after_batchnorm(mlflow_tracking, binary_manifest):
    """The on-the-fly ranking reads each filter after its BatchNorm, as the filters stage
    does: never the raw conv output, whose max can rank a filter the ReLU silences."""
    from isic_tracking.data.dataset import make_loader
    from isic_tracking.data.manifest import read_manifest
    from isic_tracking.data.transforms import build_transforms
    from isic_tracking.interpret.activations import activation_stats
    from isic_tracking.interpret.response import response_stats
    from isic_tracking.stages.visualize.targets import most_activated
    from isic_tracking.tracking.registry import load_model

    model_run = checkpoint_run(edit=_flip_last_batchnorm)
    argv = _args(
        model_run, "--layers", "last", "--top_n", "3", "--manifest", str(binary_manifest),
        "--n_images", "100000",
    )  # fmt: skip
    assert visualize.main(argv) == 0
    table = _table(_visualize_run().info.run_id)
    chosen = table.loc[table["layer"] == LAST, "channel"].tolist()

    loaded = load_model(f"runs:/{model_run}/checkpoint")
    cfg = loaded.config
    loader = make_loader(
        read_manifest(binary_manifest),
        build_transforms(32, train=False, mean=cfg["mean"], std=cfg["std"]),
        16,
    )
    bn = response_stats(loaded.model, loader, [LAST], reduce=("max",))[LAST].max
    conv = activation_stats(loaded.model, loader, [LAST], reduce=("max",))[LAST].max
    assert most_activated(conv, 3) != most_activated(bn, 3)  # the test tells them apart
    assert chosen == most_activated(bn, 3)


def test_classes_renders_both_directions_of_the_binary_logit(mlflow_tracking):
    model_run = checkpoint_run()
    assert visualize.main(_args(model_run, "--channels", "classes")) == 0
    table = _table(_visualize_run().info.run_id)
    assert table["objective"].tolist() == ["class_logit(0)", "-class_logit(0)"]
    assert table["label"].tolist() == ["malignant", "benign"]
    assert set(table["layer"]) == {"logits"}


BAD_INPUTS = [
    (["--layers", "layer9.conv"], ["'layer9.conv' does not exist", "conv1, layer1.0.conv1"]),
    (["--layers", "last", "--channels", "3,600"], ["channel 600 is out of range", "use 0..511"]),
    (["--regularization", "thesis,fancy"], ["unknown regularization ['fancy']", "thesis, none"]),
    (["--channels", "classes", "--engine", "torch_dreams"], ["renders channels only"]),
    (["--channels", "first"], ["channels='first'", "top_n, all, classes"]),
]


def test_bad_input_messages(mlflow_tracking, capsys):
    model_run = checkpoint_run()
    for extra, messages in BAD_INPUTS:
        assert visualize.main(_args(model_run, *extra)) == 2, extra
        err = capsys.readouterr().err
        assert all(m in err for m in messages), (extra, err)
    assert visualize.main(_args(model_run, "--filters_run", model_run)) == 2
    assert "filters" in (err := capsys.readouterr().err) and model_run in err
    assert not MlflowClient().search_runs(
        [mlflow.get_experiment_by_name("tests").experiment_id], "tags.`isic.stage` = 'visualize'"
    )  # every check failed before a run was started


def test_image_too_small_says_the_minimum(mlflow_tracking, capsys):
    argv = [
        "--model_uri", "pretrained:alexnet", "--allow_random", "true", "--layers", "last",
        "--channels", "1", "--image_size", "16", "--steps", "1", "--device", "cpu",
    ]  # fmt: skip
    assert visualize.main(argv) == 2
    err = capsys.readouterr().err
    assert "image size 16 is too small" in err and "smallest size that runs is" in err


def test_runner_returns_the_rows_of_the_table_it_logged(mlflow_tracking):
    from isic_tracking.interpret.fv_table import read_activations
    from isic_tracking.stages.visualize.config import VisualizeConfig
    from isic_tracking.stages.visualize.runner import run_visualize

    model_run = checkpoint_run()
    cfg = VisualizeConfig(
        model_uri=f"runs:/{model_run}/checkpoint", channels="5", layers="first", steps=1,
        image_size=32, device="cpu", class_logits=False,
    )  # fmt: skip
    out = run_visualize(cfg)
    assert out.layers == [FIRST]
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(
            run_id=out.run_id, artifact_path="tables/activations.csv", dst_path=tmp
        )
        table = read_activations(path)
    from isic_tracking.interpret.fv_table import activations_frame

    pd.testing.assert_frame_equal(table, activations_frame(out.rows), check_dtype=False)
    assert out.rows[0]["objective"] == f"channel({FIRST}, 5)"


def test_every_picture_is_compared_with_the_natural_max_of_its_unit(
    mlflow_tracking, binary_manifest
):
    """natural_max is the same objective (spatial mean of the channel, the model's
    normalization, the render size) maximized over the analysed images; the ratio is the
    activation reached over it; the class logits get the colour check and its tag."""
    from isic_tracking.data.dataset import make_loader
    from isic_tracking.data.manifest import read_manifest
    from isic_tracking.data.transforms import build_transforms
    from isic_tracking.interpret.activations import activation_stats
    from isic_tracking.tracking.registry import load_model

    model_run = checkpoint_run()
    argv = _args(
        model_run, "--layers", "first", "--channels", "1,2,5", "--manifest", str(binary_manifest)
    )
    assert visualize.main(argv) == 0
    run = _visualize_run()
    table = _table(run.info.run_id)
    chans = table[table["layer"] == FIRST].set_index("channel")
    loaded = load_model(f"runs:/{model_run}/checkpoint", "cpu")
    rows = read_manifest(binary_manifest)  # no folds for this model: the manifest, whole
    tf = build_transforms(32, train=False, mean=loaded.config["mean"], std=loaded.config["std"])
    stats = activation_stats(loaded.model, make_loader(rows, tf, 16), [FIRST], reduce=("mean",))
    expected = stats[FIRST].mean.max(0).values
    for c in (1, 2, 5):
        assert chans.loc[c, "natural_max"] == pytest.approx(float(expected[c]), rel=1e-4, abs=1e-5)
        if chans.loc[c, "natural_max"] > 0:
            ratio = chans.loc[c, "activation_reached"] / chans.loc[c, "natural_max"]
            assert chans.loc[c, "fv_over_natural_max"] == pytest.approx(ratio, rel=1e-4)
        assert chans.loc[c, "natural_p99"] <= chans.loc[c, "natural_max"]
    assert f"fv_over_natural_max_frac/{FIRST}-tuned" in run.data.metrics  # the default preset
    assert "fv_over_natural_max_frac/all-tuned" in run.data.metrics
    assert run.data.params["resolved.natural_images"].startswith(
        f"{len(rows)} images of split 'all'"
    )
    # tuned rendered in the colour basis of those images (issue 18)
    assert run.data.params["resolved.colours"] == (
        f"data ({run.data.params['resolved.natural_images']})"
    )
    assert run.data.tags["isic.colour_check"] in ("pass", "fail")
    assert {
        "colour_distance/benign-tuned",
        "colour_distance/malignant-tuned",
    } <= set(run.data.metrics)
    assert all(k.count("/") <= 1 for k in run.data.metrics)
    assert "tables/colour_check.csv" in _artifacts(run.info.run_id, "tables")


def test_pictures_maximize_and_are_measured_at_the_filters_response(
    mlflow_tracking, binary_manifest
):
    """In a conv -> BatchNorm net the picture of a filter maximizes its response (the
    BatchNorm's output, what the ReLU sees, as filters ranks it), and its natural maximum is
    read there too: with a BatchNorm that flips signs, the conv's own output would be the
    opposite objective."""
    from isic_tracking.data.dataset import make_loader
    from isic_tracking.data.manifest import read_manifest
    from isic_tracking.data.transforms import build_transforms
    from isic_tracking.interpret.activations import activation_stats
    from isic_tracking.tracking.registry import load_model

    model_run = checkpoint_run(edit=_flip_last_batchnorm)
    argv = _args(
        model_run, "--layers", "last", "--channels", "0,1,2,3", "--manifest",
        str(binary_manifest), "--split", "all",
    )  # fmt: skip
    assert visualize.main(argv) == 0
    run = _visualize_run()
    assert run.data.params[f"resolved.response.{LAST}"] == "layer4.1.bn2"
    chans = _table(run.info.run_id)
    chans = chans[chans["layer"] == LAST].set_index("channel")

    loaded = load_model(f"runs:/{model_run}/checkpoint")
    tf = build_transforms(32, train=False, mean=loaded.config["mean"], std=loaded.config["std"])
    loader = make_loader(read_manifest(binary_manifest), tf, 16)
    stats = activation_stats(loaded.model, loader, ["layer4.1.bn2", LAST], reduce=("mean",))
    bn, conv = (stats[n].mean.max(0).values for n in ("layer4.1.bn2", LAST))
    for c in range(4):
        assert chans.loc[c, "natural_max"] == pytest.approx(float(bn[c]), rel=1e-4, abs=1e-5)
    assert not torch.allclose(bn[:4], conv[:4], atol=1e-3)  # the test tells them apart


def test_amp_off_renders_in_fp32_and_says_so(mlflow_tracking):
    """``amp=off``: fp32 throughout whatever the CPU (a user comparing pictures with bf16's)."""
    argv = _args(checkpoint_run(), "--layers", "last", "--channels", "0", "--amp", "off",
                 "--split", "none")  # fmt: skip
    assert visualize.main(argv) == 0
    run = _visualize_run()
    assert run.data.params["amp"] == "off" and run.data.params["render.amp"] == "off"
    assert run.data.params["resolved.colours"].startswith("imagenet (no natural images")


@pytest.mark.parametrize("compare_pretrained", ["false", "true"])
def test_the_natural_images_are_decoded_once_per_run(
    mlflow_tracking, binary_manifest, monkeypatch, compare_pretrained
):
    """The colour basis and the natural reference of every model (the base too) come from one
    pass over the analysed images: each image is read once per run."""
    from isic_tracking.data.manifest import read_manifest

    reads = count_reads(monkeypatch)
    argv = _args(
        checkpoint_run(), "--layers", "first", "--channels", "1,2", "--manifest",
        str(binary_manifest), "--colours", "data", "--compare_pretrained", compare_pretrained,
    )  # fmt: skip
    assert visualize.main(argv) == 0
    run = _visualize_run()
    assert run.data.params["resolved.colours"].startswith("data (")
    assert len(reads) == len(read_manifest(binary_manifest))
    assert set(reads.values()) == {1}


def _rank_here(manifest: Path, monkeypatch, split: str) -> tuple[dict[str, int], dict[str, str]]:
    """visualize with top_n ranked on the fly (no filters run) on 8 images of ``split``: how
    often each image was decoded, and the run's parameters."""
    reads = count_reads(monkeypatch)
    argv = _args(
        checkpoint_run(), "--layers", "first", "--channels", "top_n", "--top_n", "2",
        "--n_images", "8", "--manifest", str(manifest), "--split", split,
    )  # fmt: skip
    assert visualize.main(argv) == 0
    return reads, _visualize_run().data.params


def test_top_n_ranked_here_reads_the_analysed_images_not_again(
    mlflow_tracking, binary_manifest, monkeypatch
):
    """Without a filters run, top_n ranks the filters on a sample of the analysed images,
    read back from the one decoding that the natural pass uses too."""
    from isic_tracking.data.manifest import read_manifest

    reads, params = _rank_here(binary_manifest, monkeypatch, "all")
    assert len(reads) == len(read_manifest(binary_manifest))
    assert set(reads.values()) == {1}
    assert params["resolved.natural_images"].startswith(f"{len(reads)} images of split 'all'")


def test_top_n_without_natural_images_ranks_on_a_manifest_sample(
    mlflow_tracking, binary_manifest, monkeypatch
):
    """``split=none``: nothing is analysed, so the ranking reads ``n_images`` of the manifest."""
    reads, params = _rank_here(binary_manifest, monkeypatch, "none")
    assert len(reads) == 8 and set(reads.values()) == {1}
    assert params["resolved.natural_images"].startswith("none")
