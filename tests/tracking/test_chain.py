"""tracking/chain.py: what ``main`` passes on reaches the chain, and every profile has the
settings of every stage the chain runs (the chain itself runs in tests/e2e)."""

from __future__ import annotations

import dataclasses
import importlib
import os

import pytest
from mlflow.tracking import MlflowClient

from entrypoints._common import config_from_args
from entrypoints.main import build_parser
from isic_tracking.profiles import PROFILES
from isic_tracking.tracking import tag
from isic_tracking.tracking.chain import ChainOptions, pipeline_experiment, prepare_test_params
from isic_tracking.tracking.pipeline import _as_param

STAGES = ("main", "synth", "prepare", "pretrain", "search", "train", "evaluate", "layers",
          "filters", "visualize", "sanity")  # fmt: skip


def test_main_options_are_the_chain_options_with_the_same_defaults() -> None:
    parsed = vars(build_parser().parse_args([]))
    assert parsed == dataclasses.asdict(ChainOptions())
    opts = ChainOptions(
        **vars(build_parser().parse_args(["--task", "multiclass", "--force", "true"]))
    )
    assert opts.task == "multiclass" and opts.force is True


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_profile_sets_every_stage_and_an_arch(profile: str) -> None:
    prof = PROFILES[profile]
    assert set(STAGES) <= set(prof), f"{profile} lacks {set(STAGES) - set(prof)}"
    assert prof["main"]["arch"]
    assert 0 < prof["prepare"]["test_fraction"] < 1


def test_the_test_set_reaches_prepare_and_the_fraction_falls_back_to_the_profile() -> None:
    argv = ["--test_dataset", "isic2016-test", "--test_root", "/data/isic2016"]
    opts = ChainOptions(**vars(build_parser().parse_args(argv)))
    assert prepare_test_params(opts) == {
        "test_dataset": "isic2016-test",
        "test_root": "/data/isic2016",
        "test_fraction": PROFILES["demo"]["prepare"]["test_fraction"],
    }
    none = ChainOptions(**vars(build_parser().parse_args(["--test_fraction", "0"])))
    assert prepare_test_params(none) == {"test_dataset": "", "test_root": "", "test_fraction": 0.0}
    unset = ChainOptions(**vars(build_parser().parse_args(["--test_fraction", ""])))
    assert unset.test_fraction is None


def test_main_runs_in_the_task_experiment_not_in_a_default_launcher(
    mlflow_tracking: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``mlflow run .`` puts its run in Default: the pipeline then starts in isic-<task> and
    the launcher says where; a launcher already in that experiment is the pipeline run."""
    client = MlflowClient()
    launcher = client.create_run("0").info.run_id
    monkeypatch.setenv("MLFLOW_RUN_ID", launcher)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", "0")
    exp = pipeline_experiment("multiclass")
    assert client.get_experiment(exp).name == "isic-multiclass"
    assert "MLFLOW_RUN_ID" not in os.environ
    tags = client.get_run(launcher).data.tags
    assert tags[tag.STAGE] == "main-launcher"
    assert "[isic-multiclass](http://127.0.0.1:5000/#/experiments/" in tags["mlflow.note.content"]
    inside = client.create_run(exp).info.run_id
    monkeypatch.setenv("MLFLOW_RUN_ID", inside)
    assert pipeline_experiment("multiclass") == exp
    assert os.environ["MLFLOW_RUN_ID"] == inside


def _stage_parser(stage: str):
    module = importlib.import_module(f"entrypoints.{stage}")
    return module.STAGE.build_parser() if hasattr(module, "STAGE") else module.build_parser()


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_profile_setting_is_a_valid_flag_of_its_stage(profile: str) -> None:
    """A profile key the stage does not have, or a value it refuses, fails here and not
    minutes into ``main``."""
    for stage, settings in PROFILES[profile].items():
        parser = _stage_parser(stage)
        flags = {a.dest for a in parser._actions}
        assert set(settings) <= flags, f"{profile}.{stage}: no flag {set(settings) - flags}"
        argv = [x for k, v in settings.items() for x in (f"--{k}", _as_param(v))]
        args = parser.parse_args(argv)
        module = importlib.import_module(f"entrypoints.{stage}")
        if hasattr(module, "STAGE"):  # the config validates its choices
            config_from_args(module.STAGE.config, args)


@pytest.mark.parametrize("profile", ["demo", "full"])
def test_the_thesis_profiles_draw_with_and_without_regularization(profile: str) -> None:
    presets = PROFILES[profile]["visualize"]["regularization"].split(",")
    assert "none" in presets and len(presets) == 2  # the thesis's Fig. 29, side by side
