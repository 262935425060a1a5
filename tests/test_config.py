"""Stage configs: one shared base for train and search, CLI flags + YAML, non-result fields."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path

import pytest

from isic_tracking.config import (
    NON_RESULT_FIELDS,
    FitSettings,
    TrainConfig,
    add_config_args,
    config_from_args,
    config_hash,
    default_metric,
    env_flag,
    non_result_fields,
    parse_bool,
    parse_int,
)
from isic_tracking.errors import IsicInputError
from isic_tracking.train.search import RUN_CONTROL_FIELDS, SearchConfig, default_study_name

SHARED = [f.name for f in dataclasses.fields(FitSettings)]
TRIAL_PARAMS = {"lr": 3e-3, "batch_size": 16, "epochs": 3}


def _other_value(cls: type, name: str) -> object:
    """A valid value of field ``name`` that differs from its default."""
    default = next(f.default for f in dataclasses.fields(cls) if f.name == name)
    tp = typing.get_type_hints(cls)[name]
    base = [a for a in typing.get_args(tp) if a is not type(None)] or [tp]
    if base[0] is bool:
        return not default
    if base[0] is int:
        return (default or 0) + 2
    if base[0] is float:
        return (default or 0.0) + 0.25
    return f"{default}-other"


def _parse(cls: type, argv: list[str]) -> argparse.Namespace:
    return add_config_args(argparse.ArgumentParser(), cls).parse_args(argv)


# --------------------------------------------------------------------------- one shared base
def test_every_shared_field_reaches_the_trial_train_config() -> None:
    """Set every shared field off its default: the trial's TrainConfig has each of them
    (the old field-by-field copy dropped channels_last and compile)."""
    changed = {name: _other_value(FitSettings, name) for name in SHARED}
    search = SearchConfig(**changed)
    trial = search.train_config(TRIAL_PARAMS)
    assert {name: getattr(trial, name) for name in SHARED} == changed
    assert trial.channels_last is True and trial.compile is True
    assert (trial.lr, trial.batch_size, trial.epochs, trial.folds) == (3e-3, 16, 3, 1)
    assert trial.monitor == search.resolved_metric()


def test_fields_of_both_stages_are_the_shared_ones() -> None:
    """A field added to train and search alike must go into the shared base (else a trial
    would silently train with the train default); only work_dir is each stage's own."""
    train = {f.name for f in dataclasses.fields(TrainConfig)}
    search = {f.name for f in dataclasses.fields(SearchConfig)}
    assert train & search == set(SHARED) | {"work_dir"}
    assert TrainConfig().work_dir == "outputs/train"
    assert SearchConfig().work_dir == "outputs/search"


def test_one_resolved_metric_for_both_stages() -> None:
    assert default_metric("binary") == "val_roc_auc"
    assert default_metric("multiclass") == "val_balanced_accuracy"
    for cls in (TrainConfig, SearchConfig):
        assert cls().resolved_metric() == "val_roc_auc"
        assert cls(task="multiclass").resolved_metric() == "val_balanced_accuracy"
        assert cls(monitor="val_loss").resolved_metric() == "val_loss"


# --------------------------------------------------------------------------- renamed fields
def _config(cls: type, argv: list[str]):
    return config_from_args(cls, _parse(cls, argv))


def test_the_search_monitors_under_trains_name(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="isic_tracking.config"):
        cfg = _config(SearchConfig, ["--monitor", "val_loss"])
    assert cfg.monitor == "val_loss" and cfg.direction() == "minimize"
    assert not caplog.records  # the new name: no warning


def test_the_old_name_metric_still_works_with_a_warning_naming_monitor(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    yml = tmp_path / "s.yaml"
    yml.write_text("metric: val_f1\n")
    with caplog.at_level("WARNING", logger="isic_tracking.config"):
        cli = _config(SearchConfig, ["--metric", "val_loss"])
        from_yaml = _config(SearchConfig, ["--config", str(yml)])
        # what `mlflow run -e search -P metric=val_loss` runs: the declared monitor is empty
        mlproject = _config(SearchConfig, ["--monitor", "", "--metric", "val_loss"])
    assert (cli.monitor, from_yaml.monitor, mlproject.monitor) == ("val_loss", "val_f1", "val_loss")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3 and all("use 'monitor' instead" in line for line in lines)
    assert all("2027-06-30" in line and "\n" not in line for line in lines)
    assert lines[1].startswith(f"{yml}: 'metric' is deprecated")


def test_old_and_new_name_with_different_values_are_an_error() -> None:
    with pytest.raises(IsicInputError, match="metric='val_loss' and monitor='val_f1' disagree"):
        _config(SearchConfig, ["--monitor", "val_f1", "--metric", "val_loss"])
    assert _config(SearchConfig, ["--monitor", "val_f1", "--metric", "val_f1"]).monitor == "val_f1"


def test_the_old_name_is_offered_only_where_it_existed() -> None:
    with pytest.raises(SystemExit):
        _parse(TrainConfig, ["--metric", "val_loss"])


def test_a_renamed_field_keeps_the_study_name() -> None:
    """Studies made when the field was called ``metric`` are still found and resumed (the
    names below are what the search computed before the rename)."""
    assert default_study_name(SearchConfig(), "m.csv") == "isic-binary-alexnet-3b955f74d3df"
    named = default_study_name(SearchConfig(monitor="val_loss"), "m.csv")
    assert named == "isic-binary-alexnet-ffd679820d83"


def test_non_result_fields_are_declared_on_the_fields() -> None:
    assert set(NON_RESULT_FIELDS) == {
        "device",
        "resume",
        "fold",
        "workers",
        "work_dir",
        "keep_resume_state",
        "init_file",  # a local copy of the init model: its URI and sha256 are the result
    }
    assert set(RUN_CONTROL_FIELDS) == {
        "n_trials",
        "storage",
        "study_name",
        "n_workers",
        "timeout",
        "device",
        "workers",
        "work_dir",
        "heartbeat",
        "max_retry",
        "init_file",
    }
    assert non_result_fields(TrainConfig) == NON_RESULT_FIELDS


def test_config_hash_ignores_only_non_result_fields() -> None:
    base = config_hash(TrainConfig(), NON_RESULT_FIELDS)
    steer = TrainConfig(device="cpu", workers=3, work_dir="elsewhere", resume="r", fold=1)
    assert config_hash(steer, NON_RESULT_FIELDS) == base
    assert config_hash(TrainConfig(lr=0.5), NON_RESULT_FIELDS) != base
    assert config_hash(TrainConfig(channels_last=True), NON_RESULT_FIELDS) != base
    assert len(base) == 12


# --------------------------------------------------------------------------- CLI + YAML
def test_cli_flags_types_and_per_stage_help() -> None:
    train = add_config_args(argparse.ArgumentParser(), TrainConfig)
    search = add_config_args(argparse.ArgumentParser(), SearchConfig)
    helps = {
        name: {a.dest: a.help for a in p._actions if a.dest not in ("help", "config")}
        for name, p in (("train", train), ("search", search))
    }
    assert set(helps["train"]) == {f.name for f in dataclasses.fields(TrainConfig)}
    search_fields = {f.name for f in dataclasses.fields(SearchConfig)}
    assert set(helps["search"]) == search_fields | {"metric"}  # the deprecated old name
    assert helps["search"]["metric"].startswith("deprecated: the old name of --monitor")
    assert helps["search"]["monitor"].startswith("objective: a val_ metric")
    assert helps["train"]["seed"] == "seed of folds, init, shuffling and augmentation (default: 0)"
    assert helps["search"]["seed"].startswith("seed of the sampler, subset, holdout split")
    assert helps["search"]["channels_last"] == "channels_last memory format (default: False)"
    assert helps["search"]["work_dir"].endswith("(default: 'outputs/search')")
    args = _parse(
        SearchConfig,
        ["--n_trials", "5.0", "--storage", "none", "--compile", "true", "--lr_min=0.5"],
    )
    assert vars(args) == {
        "n_trials": 5,
        "storage": None,
        "compile": True,
        "lr_min": 0.5,
        "config": None,
    }
    with pytest.raises(SystemExit):
        _parse(TrainConfig, ["--epochs", "2.5"])


def test_yaml_fills_defaults_and_cli_wins(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("lr: 0.01\nepochs: 7\nchannels_last: true\n")
    cfg = config_from_args(
        TrainConfig, _parse(TrainConfig, ["--config", str(path), "--epochs", "2"])
    )
    assert (cfg.lr, cfg.epochs, cfg.channels_last, cfg.folds) == (0.01, 2, True, 3)
    path.write_text("lr: 0.01\nlearning_rate: 1\n")
    with pytest.raises(IsicInputError, match=r"unknown keys \['learning_rate'\]"):
        config_from_args(TrainConfig, _parse(TrainConfig, ["--config", str(path)]))
    with pytest.raises(IsicInputError, match="does not exist"):
        config_from_args(TrainConfig, _parse(TrainConfig, ["--config", str(tmp_path / "no.yaml")]))


def test_parse_bool_and_int() -> None:
    assert parse_bool("Yes") is True and parse_bool("off") is False and parse_bool(True) is True
    with pytest.raises(argparse.ArgumentTypeError, match="not a boolean"):
        parse_bool("maybe")
    assert parse_int("5.0") == 5
    with pytest.raises(argparse.ArgumentTypeError, match="not an integer"):
        parse_int("5.5")


@pytest.mark.parametrize("stage", ["train", "search"])
def test_mlproject_command_with_its_defaults_builds_the_config(stage: str) -> None:
    """Every MLproject parameter of the stage is a flag, and its default parses."""
    import importlib
    import shlex

    import yaml

    entry = yaml.safe_load((Path(__file__).parents[1] / "MLproject").read_text())["entry_points"]
    spec = entry[stage]
    # MLflow quotes each value (an empty string stays an argument)
    values = {k: shlex.quote(str(v.get("default", ""))) for k, v in spec["parameters"].items()}
    argv = shlex.split(spec["command"].format(**values))
    assert argv[:3] == ["python", "-m", f"entrypoints.{stage}"]
    module = importlib.import_module(f"entrypoints.{stage}")
    cls = TrainConfig if stage == "train" else SearchConfig
    cfg = config_from_args(cls, module.build_parser().parse_args(argv[3:]))
    given = {k for k in values if k in {f.name for f in dataclasses.fields(cls)}}
    assert given == set(values)  # no MLproject parameter without a config field
    assert cfg.seed == 0 and cfg.manifest is None


def test_a_bad_yaml_value_gets_the_same_one_line_error_as_the_command_line(tmp_path) -> None:
    from entrypoints.visualize import build_parser
    from isic_tracking.config import DEFAULT_MODEL_URI
    from isic_tracking.stages.visualize.config import VisualizeConfig

    bad = tmp_path / "bad.yaml"
    bad.write_text("amp: maybe\n")
    with pytest.raises(IsicInputError) as err:
        config_from_args(VisualizeConfig, build_parser().parse_args(["--config", str(bad)]))
    assert str(err.value) == f"{bad}: amp='maybe' is not one of auto, bf16, none, on, off"
    assert DEFAULT_MODEL_URI == "models:/isic-binary-smallcnn@champion"  # the demo's model


def test_train_and_render_share_one_amp_vocabulary(tmp_path) -> None:
    """train's words (auto, bf16, none) work for visualize and sanity's renders too; a bad
    train value fails at parsing with the allowed values, not in the first fold."""
    from entrypoints.train import STAGE as TRAIN
    from entrypoints.visualize import build_parser
    from isic_tracking.interpret.choices import AMP_CHOICES
    from isic_tracking.stages.visualize.config import VisualizeConfig

    for word, render_amp in (("auto", None), ("bf16", True), ("none", False)):
        cfg = config_from_args(VisualizeConfig, build_parser().parse_args(["--amp", word]))
        assert AMP_CHOICES[cfg.amp] is render_amp
        assert config_from_args(TrainConfig, TRAIN.build_parser().parse_args(["--amp", word]))
    bad = tmp_path / "bad.yaml"
    bad.write_text("amp: maybe\n")
    with pytest.raises(IsicInputError) as err:
        config_from_args(TrainConfig, TRAIN.build_parser().parse_args(["--config", str(bad)]))
    assert str(err.value) == f"{bad}: amp='maybe' is not one of auto, bf16, fp16, none"


def test_env_flag_reads_yes_no_words_and_names_a_bad_one() -> None:
    assert env_flag({}, "X") is True
    assert env_flag({"X": "  "}, "X", default=False) is False
    assert [env_flag({"X": v}, "X") for v in ("0", "false", "No", "off")] == [False] * 4
    assert [env_flag({"X": v}, "X", default=False) for v in ("1", "TRUE", "yes", "on")] == [
        True
    ] * 4
    with pytest.raises(IsicInputError, match=r"X='disable' is not a yes/no value.*default: on"):
        env_flag({"X": "disable"}, "X")
