"""One trial: trains with its parameters, reports every epoch, pruned / failed / complete."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest
from optuna.trial import TrialState

from isic_tracking.errors import IsicInputError, NonFiniteLossError
from isic_tracking.train.search import SearchObjective, TrialHooks, load_search_data, trials_table
from isic_tracking.train.search.objective import temporary_scratch
from tests.train.search.tiny import GOOD, memory_study, tiny_config


class RecordingHooks(TrialHooks):
    """Writes down every hook call (what the MLflow hooks would log)."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def start(self, trial, params):
        self.calls.append(("start", trial.number, params))

    def epoch(self, trial, epoch, row):
        self.calls.append(("epoch", trial.number, epoch, row["val_roc_auc"]))

    def end(self, trial, outcome):
        self.calls.append(("end", trial.number, outcome.state, outcome.value, outcome.epochs_run))


def test_bad_learning_rate_is_pruned(manifest: str) -> None:
    cfg = tiny_config(manifest)
    data = load_search_data(cfg)
    bad = {"lr": 10.0, "batch_size": 16, "epochs": 3}
    study = memory_study(cfg, [GOOD, GOOD, bad])
    study.optimize(SearchObjective(cfg, data), n_trials=3)
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED]
    assert study.trials[2].user_attrs["epochs_run"] < 3
    assert study.trials[0].value > 0.7
    table = trials_table(study)
    assert list(table["state"]) == ["COMPLETE", "COMPLETE", "PRUNED"]


def test_raising_trial_is_failed_and_the_study_goes_on(manifest: str) -> None:
    cfg = tiny_config(manifest, pruner="none", max_batches=2)
    data = load_search_data(cfg)
    nan = {"lr": 1e30, "batch_size": 16, "epochs": 2}  # Adam step of 1e30: NaN loss
    study = memory_study(cfg, [nan, {"lr": 1e-3, "batch_size": 16, "epochs": 1}])
    study.optimize(SearchObjective(cfg, data), n_trials=2, catch=(NonFiniteLossError,))
    failed, ok = study.trials
    assert failed.state == TrialState.FAIL and "NonFiniteLossError" in failed.user_attrs["error"]
    assert ok.state == TrialState.COMPLETE and ok.user_attrs["epochs_run"] == 1


def test_trial_reports_every_epoch_to_hooks_and_study(manifest: str) -> None:
    cfg = tiny_config(manifest, pruner="none", max_batches=1)
    hooks = RecordingHooks()
    study = memory_study(cfg, [{"lr": 1e-3, "batch_size": 16, "epochs": 2}])
    study.optimize(SearchObjective(cfg, load_search_data(cfg), hooks), n_trials=1)
    (trial,) = study.trials
    assert [c[0] for c in hooks.calls] == ["start", "epoch", "epoch", "end"]
    assert hooks.calls[0] == ("start", 0, {"lr": 1e-3, "batch_size": 16, "epochs": 2})
    assert trial.intermediate_values == {0: hooks.calls[1][3], 1: hooks.calls[2][3]}
    best = max(trial.intermediate_values.values())
    assert trial.value == pytest.approx(best)
    assert hooks.calls[3] == ("end", 0, "complete", trial.value, 2)
    assert trial.user_attrs["best_epoch"] in (0, 1) and trial.user_attrs["duration_s"] > 0


def test_trial_trains_in_the_scratch_it_is_given_and_it_is_removed(manifest: str) -> None:
    cfg = tiny_config(manifest, pruner="none", max_batches=1)
    seen: list[tuple[Path, bool]] = []

    @contextmanager
    def watched(trial):
        with temporary_scratch(trial) as path:
            yield path
            seen.append((path, (path / "state.pt").is_file()))

    study = memory_study(cfg, [{"lr": 1e-3, "batch_size": 16, "epochs": 1}])
    study.optimize(SearchObjective(cfg, load_search_data(cfg), scratch=watched), n_trials=1)
    ((path, wrote_state),) = seen
    assert wrote_state and path.name.startswith("isic-search-trial0-")
    assert not path.exists()  # removed when the trial ended


def test_each_epoch_line_of_a_trial_names_the_trial(
    manifest: str, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = tiny_config(manifest, pruner="none", max_batches=1)
    study = memory_study(cfg, [{"lr": 1e-3, "batch_size": 16, "epochs": 2}] * 2)
    with caplog.at_level("INFO", logger="isic_tracking.train.fold"):
        study.optimize(SearchObjective(cfg, load_search_data(cfg)), n_trials=2)
    lines = [r.getMessage() for r in caplog.records if r.name == "isic_tracking.train.fold"]
    assert [line.split(":")[0] for line in lines] == [
        "trial 0 epoch 1/2", "trial 0 epoch 2/2", "trial 1 epoch 1/2", "trial 1 epoch 2/2",
    ]  # fmt: skip


def test_unknown_metric_is_a_clear_error(manifest: str) -> None:
    cfg = tiny_config(manifest, pruner="none", max_batches=1, monitor="val_dice")
    study = memory_study(cfg, [{"lr": 1e-3, "batch_size": 16, "epochs": 1}])
    with pytest.raises(IsicInputError, match="monitor='val_dice' is not computed"):
        study.optimize(SearchObjective(cfg, load_search_data(cfg)), n_trials=1)
    assert study.trials[0].state == TrialState.FAIL
