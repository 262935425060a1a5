"""The init on the MLflow side: a model URI fetched once as a file, and the base of a
fine-tuned model loaded from its record (random seed or the very model it started from)."""

from __future__ import annotations

from pathlib import Path

import torch

from isic_tracking.config import TrainConfig
from isic_tracking.models.init import build_initial, describe_init, file_sha256
from isic_tracking.tracking.init import fetch_model_weights, load_base, with_init_file
from isic_tracking.tracking.registry import LoadedModel, load_model
from tests.helpers import checkpoint_run, same_weights


def test_a_model_init_is_fetched_once_and_fine_tuning_starts_from_it(
    mlflow_tracking: str, tmp_path: Path
):
    uri = f"runs:/{checkpoint_run(seed=3)}/checkpoint"
    first = fetch_model_weights(uri, tmp_path)
    stamp = first.stat().st_mtime_ns
    assert fetch_model_weights(uri, tmp_path) == first and first.stat().st_mtime_ns == stamp
    cfg = with_init_file(TrainConfig(arch="resnet18", init=uri), tmp_path)
    assert cfg.init_file == str(first)
    assert with_init_file(TrainConfig(arch="resnet18"), tmp_path).init_file is None
    donor = load_model(uri).model
    model = build_initial("resnet18", 1, uri, 0, weights_file=cfg.init_file)
    assert torch.equal(model.conv1.weight, donor.conv1.weight)
    assert describe_init("resnet18", uri, 0, cfg.init_file).sha256 == file_sha256(first)


def test_the_base_of_a_model_is_its_own_init(mlflow_tracking: str, tmp_path: Path):
    uri = f"runs:/{checkpoint_run(seed=4)}/checkpoint"
    weights = fetch_model_weights(uri, tmp_path)
    init = describe_init("resnet18", uri, 5, str(weights))
    start = build_initial("resnet18", 1, uri, 5, weights_file=str(weights))
    tuned = LoadedModel(start, {**start.isic_config, "init": init.record()}, "models:/x@champion")
    base = load_base(tuned)
    assert same_weights(base.model, start) and "model" in base.tags["model.base"]
    scratch = build_initial("resnet18", 1, "random", 9)
    record = describe_init("resnet18", "random", 9).record()
    base = load_base(LoadedModel(scratch, {**scratch.isic_config, "init": record}, "u"))
    assert same_weights(base.model, scratch) and base.tags["model.base"] == "random init (seed 9)"
