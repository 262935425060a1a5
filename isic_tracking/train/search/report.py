"""What a study has done so far: counts, epochs spent, the best trial, the trials table and
Optuna's figures (what the tracking layer logs on the parent run)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from isic_tracking.log import get_logger

log = get_logger(__name__)


def epochs_spent(study: optuna.Study) -> int:
    """Training epochs run by all finished trials (the search's cost)."""
    return int(
        sum(
            t.user_attrs.get("epochs_run", 0)
            for t in study.get_trials(deepcopy=False)
            if t.state.is_finished()
        )
    )


def state_counts(study: optuna.Study) -> dict[str, int]:
    trials = study.get_trials(deepcopy=False)
    return {
        s.name.lower(): sum(1 for t in trials if t.state == s)
        for s in (
            TrialState.COMPLETE,
            TrialState.PRUNED,
            TrialState.FAIL,
            TrialState.RUNNING,
            TrialState.WAITING,
        )
    }


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best complete trial, or None when no trial completed."""
    try:
        return study.best_trial
    except ValueError:
        return None


def trials_table(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: number, state, value, params, duration, epochs run, run ids..."""
    df = study.trials_dataframe(
        attrs=("number", "value", "state", "params", "duration", "datetime_start", "user_attrs")
    )
    if "duration" in df.columns:
        df["duration"] = df["duration"].dt.total_seconds()
    return df


def study_figures(study: optuna.Study) -> dict[str, Any]:
    """Optuna's plots as matplotlib Figures: optimization history, parameter importances,
    parallel coordinates, slices, intermediate values. A plot that cannot be drawn yet
    (e.g. importances need 2 complete trials) is left out."""
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "ps", "cairo"):
        matplotlib.use("Agg")
    from optuna.visualization import matplotlib as ovm

    plots = {
        "optimization_history": ovm.plot_optimization_history,
        "param_importances": ovm.plot_param_importances,
        "parallel_coordinate": ovm.plot_parallel_coordinate,
        "slice": ovm.plot_slice,
        "intermediate_values": ovm.plot_intermediate_values,
    }
    figures = {}
    for name, plot in plots.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental API
            try:
                ax = plot(study)
            except Exception as err:  # too few trials, a single value, ...
                log.info(f"search: no {name} plot yet ({type(err).__name__}: {err})")
                continue
        figures[name] = np.atleast_1d(ax).ravel()[0].figure
    return figures
