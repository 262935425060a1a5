"""The Optuna objective: one trial trains one model (``train_fold``) on the holdout split,
reports the search metric after every epoch (the pruning point) and returns its best value.
What happens around a trial (MLflow runs) goes through :class:`TrialHooks`; where its scratch
folder lives (and who owns it, when workers may die) is a :data:`Scratch` the caller picks."""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from isic_tracking.errors import IsicInputError
from isic_tracking.train.fold import train_fold
from isic_tracking.train.search.config import SearchConfig
from isic_tracking.train.search.data import SearchData

#: a trial's scratch folder (the resume state of the one fold it trains): entered before the
#: trial starts, removed when it ends
Scratch = Callable[[optuna.Trial], AbstractContextManager[Path]]


@contextmanager
def temporary_scratch(trial: optuna.Trial) -> Iterator[Path]:
    """A plain temporary folder for one trial, removed when it ends (however it ends)."""
    with tempfile.TemporaryDirectory(
        prefix=f"isic-search-trial{trial.number}-", ignore_cleanup_errors=True
    ) as path:
        yield Path(path)


@dataclass
class TrialOutcome:
    """How one trial ended (what the tracking layer records)."""

    state: str  # complete | pruned | failed
    value: float | None
    seconds: float
    epochs_run: int
    best_epoch: int | None = None
    error: str | None = None


class TrialHooks:
    """Callbacks of :class:`SearchObjective`; the tracking layer overrides them (MLflow)."""

    def start(self, trial: optuna.Trial, params: dict[str, Any]) -> None:
        """The trial has its parameters and is about to train."""

    def epoch(self, trial: optuna.Trial, epoch: int, row: dict[str, float]) -> None:
        """One epoch finished (``row``: train_/val_ metrics, lr, epoch_seconds)."""

    def end(self, trial: optuna.Trial, outcome: TrialOutcome) -> None:
        """The trial finished: complete, pruned or failed."""


class SearchObjective:
    """Optuna objective: train one model with the trial's lr / batch size / epochs on the
    holdout split, report ``metric`` after every epoch (pruning point), return its best value.

    Args:
        cfg: the search config (fixed settings of every trial).
        data: the holdout split (:func:`load_search_data`).
        hooks: :class:`TrialHooks` (logging); no-ops by default.
        scratch: the trial's scratch folder (:data:`Scratch`); by default a plain temporary
            folder. Workers that may be killed pass
            :func:`isic_tracking.scaleout.scratch.owned_scratch`, which marks the trial with
            its owner process, so another worker can fail and re-queue it, and sweeps the
            folders of dead workers.
    """

    def __init__(
        self,
        cfg: SearchConfig,
        data: SearchData,
        hooks: TrialHooks | None = None,
        scratch: Scratch = temporary_scratch,
    ):
        self.cfg = cfg
        self.data = data
        self.space = cfg.space()
        self.metric = cfg.resolved_metric()
        self.hooks = hooks or TrialHooks()
        self.scratch = scratch

    def __call__(self, trial: optuna.Trial) -> float:
        params = self.space.suggest(trial)
        with self.scratch(trial) as state_dir:
            self.hooks.start(trial, params)
            run = _TrialRun(trial, self.metric, int(params["epochs"]), self.hooks)
            try:
                result = train_fold(
                    self.cfg.train_config(params),
                    self.data.train,
                    self.data.val,
                    0,
                    state_dir / "state.pt",
                    on_epoch=run.on_epoch,
                    unit=f"trial {trial.number}",  # its lines say which trial they belong to
                )
            except optuna.TrialPruned as err:
                run.finish("pruned", run.last, None, None)
                raise err
            except BaseException as err:
                run.finish("failed", None, None, err)
                raise
        value = float(result.best_metrics.get(self.metric, math.nan))
        trial.set_user_attr("best_epoch", int(result.best_epoch))
        if not math.isfinite(value):  # Optuna fails a trial that returns NaN
            run.finish("failed", None, result.best_epoch, ValueError(f"{self.metric} is {value}"))
        else:
            run.finish("complete", value, result.best_epoch, None)
        return value


class _TrialRun:
    """One trial in progress: reports each epoch (the pruning point), then how it ended."""

    def __init__(self, trial: optuna.Trial, metric: str, epochs: int, hooks: TrialHooks):
        self.trial, self.metric, self.epochs, self.hooks = trial, metric, epochs, hooks
        self.t0 = time.perf_counter()
        self.epochs_run = 0
        self.last: float | None = None

    def on_epoch(self, epoch: int, row: dict[str, float]) -> None:
        self.epochs_run = epoch + 1
        if self.metric not in row:
            raise IsicInputError(
                f"monitor={self.metric!r} is not computed; choose one of "
                f"{sorted(k for k in row if k.startswith('val_'))}"
            )
        value = self.last = float(row[self.metric])
        self.hooks.epoch(self.trial, epoch, row)
        self.trial.report(value, epoch)
        # pruning at the last epoch saves nothing and would throw a finished result away
        if epoch + 1 < self.epochs and self.trial.should_prune():
            raise optuna.TrialPruned(f"epoch {epoch}: {self.metric}={value:.4f}")

    def finish(
        self, state: str, value: float | None, best: int | None, err: BaseException | None
    ) -> None:
        seconds = time.perf_counter() - self.t0
        self.trial.set_user_attr("epochs_run", self.epochs_run)
        self.trial.set_user_attr("duration_s", round(seconds, 3))
        if err is not None:
            self.trial.set_user_attr("error", f"{type(err).__name__}: {err}"[:2000])
        error = None if err is None else f"{type(err).__name__}: {err}"
        outcome = TrialOutcome(state, value, seconds, self.epochs_run, best, error)
        self.hooks.end(self.trial, outcome)
