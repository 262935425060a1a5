"""What a study has done: counts, epochs spent, best trial, table, figures."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from isic_tracking.train.search import (
    best_trial,
    epochs_spent,
    state_counts,
    study_figures,
    trials_table,
)


def _study() -> optuna.Study:
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    for i, state in enumerate((TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED)):
        t = study.ask({"lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)})
        t.set_user_attr("epochs_run", i + 2)
        t.report(0.5 + i / 10, 0)
        study.tell(t, 0.5 + i / 10 if state == TrialState.COMPLETE else None, state=state)
    study.ask()  # running: its epochs do not count yet
    return study


def test_counts_epochs_best_and_table() -> None:
    study = _study()
    assert state_counts(study) == {
        "complete": 2,
        "pruned": 1,
        "fail": 0,
        "running": 1,
        "waiting": 0,
    }
    assert epochs_spent(study) == 2 + 3 + 4
    assert best_trial(study).number == 1
    table = trials_table(study)
    assert list(table["state"]) == ["COMPLETE", "COMPLETE", "PRUNED", "RUNNING"]
    assert table["duration"].dtype.kind == "f"  # seconds, not timedeltas
    assert best_trial(optuna.create_study()) is None


def test_figures_drawn_when_possible() -> None:
    figures = study_figures(_study())
    assert {"optimization_history", "slice", "intermediate_values"} <= set(figures)
    assert all(hasattr(f, "savefig") for f in figures.values())
