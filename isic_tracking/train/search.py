"""Hyper-parameter search with Optuna, without MLflow: config, search space, objective,
sampler / pruner / storage factories and a worker loop that shares one study.

The thesis tuned learning rate, batch size and epochs on 10 % of the training data, then
trained the full k-fold with the best values. Here a trial trains one model (``train_fold``)
on a stratified (grouped) holdout split of a stratified subset and reports the validation
metric after every epoch, so a pruner can stop hopeless trials early.

Workers (processes on one host, or machines sharing a PostgreSQL/MySQL storage) all run
:func:`run_worker` on the same study. The budget ``n_trials`` counts the study's trials, not
each worker's: a claim lock (one host) serializes "count, then create a trial", so the
study ends with exactly ``n_trials`` trials; across machines two workers claiming the last
slot in the same few milliseconds can still add one trial.

A trial whose worker died is failed and re-queued with the same parameters
(:class:`optuna.storages.RetryHeartbeatStaleTrialCallback`): by the RDB storages' heartbeat,
and, for any storage, by :func:`fail_dead_local_trials` when the dead worker ran on this
host (journal files have no heartbeat).
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import socket
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import torch
from filelock import FileLock
from optuna.storages import BaseStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from isic_tracking.config import (
    TrainConfig,
    _f,  # noqa: PLC2701  (one field-with-help helper)
    config_hash,
)
from isic_tracking.errors import IsicInputError, NonFiniteLossError
from isic_tracking.train.fold import train_fold
from isic_tracking.train.losses import TASKS, metric_mode
from isic_tracking.train.reconnect import ReconnectingRDBStorage

#: Exceptions that fail one trial and let the study go on (anything else stops the worker).
CATCH: tuple[type[BaseException], ...] = (
    NonFiniteLossError,
    getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError),
)
PRUNERS = ("median", "none")
#: Seconds between checks while a worker waits for other workers' last trials.
WAIT_POLL_S = 2.0
#: Trial outcome -> how it is reported (MLflow status in the tracking layer).
STATES = ("complete", "pruned", "failed")
_HOST = socket.gethostname()


@dataclass
class SearchConfig:
    """Everything the ``search`` stage needs (same names as the MLproject parameters)."""

    manifest: str | None = _f(None, "manifest CSV (default: the bundled synthetic data)")
    arch: str = _f("alexnet", "torchvision name or timm model (timm:<name>)")
    task: str = _f("binary", "binary | multiclass")
    n_trials: int = _f(20, "trial budget of the study (a resumed study tops up to it)")
    subset: float = _f(0.1, "fraction of the training rows searched on (stratified)")
    storage: str | None = _f(
        None,
        "Optuna storage: journal:<path>, sqlite:///<path>, postgresql://..., mysql+pymysql://... "
        "(default: journal file optuna.journal beside the MLflow sqlite database)",
    )
    study_name: str | None = _f(None, "study name (default: isic-<task>-<arch>-<config hash>)")
    n_workers: int = _f(1, "worker processes on this host sharing the study")
    pruner: str = _f("median", "median | none")
    seed: int = _f(0, "seed of the sampler, subset, holdout split and training")
    timeout: float = _f(0.0, "stop starting trials after this many seconds (0: no limit)")
    lr_min: float = _f(1e-5, "learning-rate range, log-uniform")
    lr_max: float = _f(1e-2, "learning-rate range, log-uniform")
    batch_sizes: str = _f("16,32,64,128", "comma-separated batch sizes to choose from")
    epochs_min: int = _f(5, "epochs range (integers)")
    epochs_max: int = _f(40, "epochs range (integers)")
    image_size: int = _f(96, "input size (crop) fed to the model")
    device: str = _f("auto", "auto | cpu | cuda | cuda:N | mps")
    metric: str | None = _f(
        None, "objective: a val_ metric (default val_roc_auc binary, val_balanced_accuracy)"
    )
    val_fraction: float = _f(0.2, "validation part of the holdout split of the subset")
    grouped: bool = _f(True, "group subset and holdout by patient_id / lesion_id")
    pruner_startup_trials: int = _f(3, "median pruner: completed trials before pruning starts")
    pruner_warmup_epochs: int = _f(1, "median pruner: epochs of a trial never pruned")
    heartbeat: int = _f(60, "RDB storages: heartbeat seconds (a trial silent 2x this is failed)")
    max_retry: int = _f(1, "times a crashed worker's trial is re-queued")
    pretrained: bool = _f(False, "ImageNet weights from the torch cache")
    weights: str | None = _f(None, "local ImageNet state-dict file (implies pretrained)")
    dropout: float = _f(0.1, "dropout before the new head")
    freeze: str = _f("none", "none | features | all_but_head")
    class_weights: str = _f("inverse", "inverse | none | comma-separated weights")
    patience: int = _f(10, "early-stopping patience in epochs, inside a trial")
    amp: str = _f("auto", "auto | bf16 | fp16 | none")
    augment: str = _f("perez", "perez | none")
    workers: int = _f(0, "data-loader worker processes per trial")
    max_batches: int | None = _f(None, "cap batches per epoch (smoke tests)")
    deterministic: bool = _f(True, "deterministic kernels on CPU")
    work_dir: str = _f("outputs/search", "default journal storage when MLflow is not sqlite")

    def resolved_metric(self) -> str:
        if self.metric:
            return self.metric
        return "val_roc_auc" if self.task == "binary" else "val_balanced_accuracy"

    def direction(self) -> str:
        return "maximize" if metric_mode(self.resolved_metric()) == "max" else "minimize"

    def space(self) -> SearchSpace:
        return SearchSpace(
            float(self.lr_min),
            float(self.lr_max),
            parse_batch_sizes(self.batch_sizes),
            int(self.epochs_min),
            int(self.epochs_max),
        )

    def train_config(self, params: dict[str, Any]) -> TrainConfig:
        """The training config of one trial: these settings plus the trial's lr/batch/epochs."""
        return TrainConfig(
            manifest=self.manifest,
            arch=self.arch,
            task=self.task,
            folds=1,
            epochs=int(params["epochs"]),
            batch_size=int(params["batch_size"]),
            lr=float(params["lr"]),
            image_size=self.image_size,
            seed=self.seed,
            device=self.device,
            pretrained=self.pretrained,
            weights=self.weights,
            dropout=self.dropout,
            freeze=self.freeze,
            class_weights=self.class_weights,
            grouped=self.grouped,
            monitor=self.resolved_metric(),
            patience=self.patience,
            amp=self.amp,
            workers=self.workers,
            augment=self.augment,
            max_batches=self.max_batches,
            deterministic=self.deterministic,
        )

    def validate(self) -> SearchConfig:
        """Raise IsicInputError on values no search can run with; returns self."""
        if self.task not in TASKS:
            raise IsicInputError(f"task={self.task!r}: choose one of {list(TASKS)}")
        if self.n_trials < 1:
            raise IsicInputError(f"n_trials={self.n_trials}: need at least 1")
        if self.n_workers < 1:
            raise IsicInputError(f"n_workers={self.n_workers}: need at least 1")
        if not 0.0 < self.subset <= 1.0:
            raise IsicInputError(f"subset={self.subset} must lie in (0, 1]")
        if self.pruner not in PRUNERS:
            raise IsicInputError(f"pruner={self.pruner!r}: choose one of {list(PRUNERS)}")
        if self.timeout < 0:
            raise IsicInputError(f"timeout={self.timeout}: use 0 (no limit) or seconds > 0")
        if not self.resolved_metric().startswith("val_"):
            raise IsicInputError(
                f"metric={self.metric!r}: use a validation metric such as val_roc_auc, "
                "val_balanced_accuracy, val_f1 or val_loss"
            )
        if self.heartbeat < 1 or self.max_retry < 0:
            raise IsicInputError("heartbeat must be >= 1 second and max_retry >= 0")
        self.space()
        return self


#: Fields that steer the run but not its result: left out of the study hash and run params.
RUN_CONTROL_FIELDS = (
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
)


def default_study_name(cfg: SearchConfig, manifest_path: str) -> str:
    """``isic-<task>-<arch>-<hash>``: the same settings and data give the same study."""
    h = config_hash(dataclasses.replace(cfg, manifest=str(manifest_path)), RUN_CONTROL_FIELDS)
    return f"isic-{cfg.task}-{cfg.arch.replace(':', '-')}-{h}"


# --------------------------------------------------------------------------- search space
def parse_batch_sizes(value: str | Sequence[int]) -> tuple[int, ...]:
    """``"16,32,64"`` -> ``(16, 32, 64)``; every size a positive integer."""
    items = value.split(",") if isinstance(value, str) else list(value)
    try:
        sizes = tuple(int(str(v).strip()) for v in items if str(v).strip())
    except ValueError as err:
        raise IsicInputError(
            f"batch_sizes={value!r}: give comma-separated integers, e.g. 16,32,64"
        ) from err
    if not sizes or any(s < 1 for s in sizes):
        raise IsicInputError(f"batch_sizes={value!r}: give positive integers, e.g. 16,32,64")
    return tuple(sorted(set(sizes)))


@dataclass(frozen=True)
class SearchSpace:
    """Learning rate (log-uniform), batch size (categorical) and epochs (integer range)."""

    lr_min: float = 1e-5
    lr_max: float = 1e-2
    batch_sizes: tuple[int, ...] = (16, 32, 64, 128)
    epochs_min: int = 5
    epochs_max: int = 40

    def __post_init__(self) -> None:
        if not 0 < self.lr_min <= self.lr_max:
            raise IsicInputError(
                f"learning-rate range [{self.lr_min}, {self.lr_max}]: need 0 < lr_min <= lr_max"
            )
        if not 1 <= self.epochs_min <= self.epochs_max:
            raise IsicInputError(
                f"epochs range [{self.epochs_min}, {self.epochs_max}]: need 1 <= min <= max"
            )

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        d = optuna.distributions
        return {
            "lr": d.FloatDistribution(self.lr_min, self.lr_max, log=True),
            "batch_size": d.CategoricalDistribution(list(self.batch_sizes)),
            "epochs": d.IntDistribution(self.epochs_min, self.epochs_max),
        }

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Draw (or read back, for an enqueued/retried trial) one point of the space."""
        return {
            "lr": trial.suggest_float("lr", self.lr_min, self.lr_max, log=True),
            "batch_size": int(trial.suggest_categorical("batch_size", list(self.batch_sizes))),
            "epochs": trial.suggest_int("epochs", self.epochs_min, self.epochs_max),
        }


# --------------------------------------------------------------------------- data
@dataclass
class SearchData:
    """The holdout split every trial trains and validates on."""

    train: pd.DataFrame
    val: pd.DataFrame
    subset: pd.DataFrame
    manifest_path: str


def load_search_data(cfg: SearchConfig) -> SearchData:
    """Stratified (grouped) subset of the training rows, then a holdout split of it."""
    from isic_tracking.data.defaults import load_task_manifest
    from isic_tracking.data.manifest import task_classes
    from isic_tracking.data.splits import check_fold, holdout_split, stratified_subset

    df, path = load_task_manifest(cfg.manifest, cfg.task)
    classes = task_classes(cfg.task)
    subset = stratified_subset(df, cfg.subset, seed=cfg.seed, grouped=cfg.grouped)
    train, val = holdout_split(subset, cfg.val_fraction, seed=cfg.seed, grouped=cfg.grouped)
    check_fold(train, val, classes, "search holdout")
    return SearchData(train, val, subset, str(path))


# --------------------------------------------------------------------------- factories
def make_sampler(seed: int | None) -> optuna.samplers.BaseSampler:
    """TPE with a seed (random for its first 10 trials; ``constant_liar`` on for parallel)."""
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def make_pruner(
    name: str, startup_trials: int = 3, warmup_epochs: int = 1
) -> optuna.pruners.BasePruner:
    """``median``: stop a trial whose best value so far is worse than the median of the
    completed trials at the same epoch; ``none``: never prune."""
    if name == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=startup_trials, n_warmup_steps=warmup_epochs
        )
    if name == "none":
        return optuna.pruners.NopPruner()
    raise IsicInputError(f"pruner={name!r}: choose one of {list(PRUNERS)}")


def mask_url(url: str) -> str:
    """The storage URL with any password replaced by ``***`` (safe to log)."""
    if "://" not in url:
        return url
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def journal_path(url: str) -> Path | None:
    """The file of a journal storage URL (``journal:<path>`` or a bare path), else None."""
    if url.startswith("journal:"):
        rest = url[len("journal:") :]
        return Path(rest[2:] if rest.startswith("//") else rest)
    if "://" not in url and not url.endswith((".db", ".sqlite", ".sqlite3")):
        return Path(url)
    return None


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite:") or (
        "://" not in url and url.endswith((".db", ".sqlite", ".sqlite3"))
    )


def _connect_args(url: str) -> dict[str, Any]:
    if url.startswith(("postgresql", "mysql")):
        return {"connect_timeout": 10}
    return {}


def make_storage(url: str, heartbeat: int = 60, max_retry: int = 1) -> BaseStorage:
    """Open an Optuna storage, failing at once with a clear message when it is unreachable.

    Args:
        url: ``journal:<path>`` (or a bare path): one file shared by the processes of one host;
            ``sqlite:///<path>`` (or ``*.db``): one process at a time; ``postgresql://...``,
            ``mysql+pymysql://...``: several machines.
        heartbeat: RDB storages record a heartbeat every ``heartbeat`` seconds; a running trial
            silent for ``2 * heartbeat`` seconds is failed and re-queued.
        max_retry: how often such a trial is re-queued.
    """
    jpath = journal_path(url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
        if jpath is not None:
            try:
                jpath.parent.mkdir(parents=True, exist_ok=True)
                jpath.touch(exist_ok=True)
                backend = optuna.storages.journal.JournalFileBackend(str(jpath))
                return optuna.storages.JournalStorage(backend)
            except OSError as err:
                raise IsicInputError(
                    f"cannot open the Optuna journal storage {jpath}: {err}; choose a writable "
                    "path (storage=journal:<path>)"
                ) from err
        if "://" not in url:  # bare sqlite file name
            url = f"sqlite:///{url}"
        if not url.startswith(("sqlite", "postgresql", "mysql", "oracle", "mssql")):
            raise IsicInputError(
                f"storage={mask_url(url)!r}: use journal:<path>, sqlite:///<path>, "
                "postgresql://user:password@host/db or mysql+pymysql://user:password@host/db"
            )
        engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if _connect_args(url):
            engine_kwargs["connect_args"] = _connect_args(url)
        # PostgreSQL/MySQL: retry calls across a server restart instead of killing the worker
        rdb = ReconnectingRDBStorage if url.startswith(("postgresql", "mysql")) else RDBStorage
        try:
            return rdb(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat,
                grace_period=2 * heartbeat,
                heartbeat_stale_trial_callback=retry,
            )
        except ImportError as err:
            missing = getattr(err.__cause__, "name", None) or str(err)
            raise IsicInputError(
                f"storage {mask_url(url)}: its database driver is not installed ({missing}); "
                "pip install 'psycopg[binary]' (postgresql://), psycopg2-binary "
                "(postgresql+psycopg2://) or PyMySQL (mysql+pymysql://)"
            ) from err
        except Exception as err:  # sqlalchemy OperationalError / ArgumentError, driver errors
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise IsicInputError(
                f"cannot reach the Optuna storage {mask_url(url)}: {first}. Check host, port, "
                "user, password and that the database exists (PostgreSQL: createdb <name>), "
                "or use a local storage (storage=journal:optuna.journal)"
            ) from err


def open_study(
    storage: BaseStorage,
    study_name: str,
    cfg: SearchConfig,
    sampler: optuna.samplers.BaseSampler | None = None,
) -> optuna.Study:
    """Create the study or load it (resume); refuse one made for another metric or space."""
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        direction=cfg.direction(),
        sampler=sampler or make_sampler(cfg.seed),
        pruner=make_pruner(cfg.pruner, cfg.pruner_startup_trials, cfg.pruner_warmup_epochs),
        load_if_exists=True,
    )
    want = (
        optuna.study.StudyDirection.MAXIMIZE
        if cfg.direction() == "maximize"
        else (optuna.study.StudyDirection.MINIMIZE)
    )
    if study.direction != want:
        raise IsicInputError(
            f"study {study_name!r} {study.direction.name.lower()}s its objective, but metric "
            f"{cfg.resolved_metric()} needs {cfg.direction()}; use another study_name"
        )
    dists = cfg.space().distributions()
    for t in study.get_trials(deepcopy=False):
        for name, dist in t.distributions.items():
            if name in dists and dist != dists[name]:
                raise IsicInputError(
                    f"study {study_name!r} was searched with {name} in {dist}, not "
                    f"{dists[name]}; pass the same ranges to resume it, or a new study_name"
                )
    return study


# --------------------------------------------------------------------------- objective
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
    """

    def __init__(self, cfg: SearchConfig, data: SearchData, hooks: TrialHooks | None = None):
        self.cfg = cfg
        self.data = data
        self.space = cfg.space()
        self.metric = cfg.resolved_metric()
        self.hooks = hooks or TrialHooks()

    def __call__(self, trial: optuna.Trial) -> float:
        params = self.space.suggest(trial)
        trial.set_user_attr("isic.host", _HOST)
        trial.set_user_attr("isic.pid", os.getpid())
        trial.set_user_attr("isic.proc_start", _proc_start(os.getpid()))
        self.hooks.start(trial, params)
        t0 = time.perf_counter()
        epochs_run = 0
        last: float | None = None

        def on_epoch(epoch: int, row: dict[str, float]) -> None:
            nonlocal epochs_run, last
            epochs_run = epoch + 1
            if self.metric not in row:
                raise IsicInputError(
                    f"metric={self.metric!r} is not computed; choose one of "
                    f"{sorted(k for k in row if k.startswith('val_'))}"
                )
            value = last = float(row[self.metric])
            self.hooks.epoch(trial, epoch, row)
            trial.report(value, epoch)
            # pruning at the last epoch saves nothing and would throw a finished result away
            if epoch + 1 < params["epochs"] and trial.should_prune():
                raise optuna.TrialPruned(f"epoch {epoch}: {self.metric}={value:.4f}")

        def finish(state: str, value: float | None, best: int | None, err: BaseException | None):
            seconds = time.perf_counter() - t0
            trial.set_user_attr("epochs_run", epochs_run)
            trial.set_user_attr("duration_s", round(seconds, 3))
            if err is not None:
                trial.set_user_attr("error", f"{type(err).__name__}: {err}"[:2000])
            error = None if err is None else f"{type(err).__name__}: {err}"
            self.hooks.end(trial, TrialOutcome(state, value, seconds, epochs_run, best, error))

        state_dir = tempfile.mkdtemp(prefix=f"isic-trial{trial.number}-")
        try:
            result = train_fold(
                self.cfg.train_config(params),
                self.data.train,
                self.data.val,
                0,
                Path(state_dir) / "state.pt",
                on_epoch=on_epoch,
            )
        except optuna.TrialPruned as err:
            finish("pruned", last, None, None)
            raise err
        except BaseException as err:
            finish("failed", None, None, err)
            raise
        finally:
            shutil.rmtree(state_dir, ignore_errors=True)
        value = float(result.best_metrics.get(self.metric, math.nan))
        trial.set_user_attr("best_epoch", int(result.best_epoch))
        if not math.isfinite(value):  # Optuna fails a trial that returns NaN
            finish("failed", None, result.best_epoch, ValueError(f"{self.metric} is {value}"))
        else:
            finish("complete", value, result.best_epoch, None)
        return value


# --------------------------------------------------------------------------- workers
def _proc_start(pid: int) -> str:
    """Start time of a process (Linux /proc), so a reused pid is not taken for the dead one."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _alive(pid: int, start: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            return False
        if fields[0] in ("Z", "X"):  # zombie: dead, not yet reaped
            return False
        return not start or fields[19] == start
    return True


def fail_dead_local_trials(study: optuna.Study, max_retry: int = 1) -> list[int]:
    """Fail the running trials of workers on this host that no longer exist, and re-queue
    each with the same parameters (up to ``max_retry`` times). Returns the failed numbers.

    RDB storages do the same across machines with their heartbeat; journal files have none.
    """
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = t.user_attrs.get("isic.pid")
        if t.user_attrs.get("isic.host") != _HOST or pid is None:
            continue
        if _alive(int(pid), str(t.user_attrs.get("isic.proc_start", ""))):
            continue
        try:
            study.tell(t.number, state=TrialState.FAIL)
        except (RuntimeError, ValueError):  # finished meanwhile by someone else
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_user_attr(f"isic.dead_trial.{t.number}", f"{_HOST}:{pid}")
            RetryHeartbeatStaleTrialCallback(max_retry=max_retry)(study, t)
        failed.append(t.number)
    return failed


def retry_of_trial(trial: optuna.Trial) -> int | None:
    """The number of the crashed trial that ``trial`` re-runs, or None."""
    for t in trial.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.number == trial.number:
            failed = t.system_attrs.get("failed_trial")  # set by the retry callback
            return None if failed is None else int(failed)
    return None


def retried_numbers(trials: Sequence[FrozenTrial]) -> set[int]:
    """Numbers of failed trials that were re-queued (they do not use up the budget)."""
    out: set[int] = set()
    for t in trials:
        out.update(int(n) for n in t.system_attrs.get("retry_history", []))
    return out


def budget_left(study: optuna.Study, n_trials: int) -> tuple[int, int]:
    """(trials still to create, waiting trials to run): the budget counts every trial
    except failed ones that were re-queued; waiting (re-queued) trials are already counted."""
    trials = study.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    used = sum(1 for t in trials if not (t.state == TrialState.FAIL and t.number in retried))
    waiting = sum(1 for t in trials if t.state == TrialState.WAITING)
    return max(0, n_trials - used), waiting


def claim_lock_path(storage_url: str, study_name: str) -> Path:
    """Lock file serializing trial claims of the workers on this host."""
    import hashlib

    key = hashlib.sha1(f"{storage_url}\0{study_name}".encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"isic-search-{key}.lock"


class _Claim:
    """A file lock held from "count the trials" until the new trial exists."""

    def __init__(self, path: str | Path | None) -> None:
        self._lock = FileLock(str(path)) if path else None
        self._held = False

    def acquire(self) -> None:
        if self._lock is not None and not self._held:
            self._lock.acquire()
            self._held = True

    def release(self) -> None:
        if self._lock is not None and self._held:
            self._lock.release()
            self._held = False


def run_worker(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    n_trials: int,
    timeout: float = 0.0,
    lock_path: str | Path | None = None,
    catch: tuple[type[BaseException], ...] = CATCH,
    max_retry: int = 1,
) -> list[int]:
    """Run trials of ``study`` until it holds ``n_trials`` trials (or ``timeout`` seconds).

    Every worker of a study calls this; ``lock_path`` (same for every worker on a host)
    makes "count the trials, then create one" atomic, so the budget is never overshot.
    Returns the numbers of the trials this worker ran.
    """
    claim = _Claim(lock_path)
    start = time.monotonic()
    ran: list[int] = []

    def claimed(trial: optuna.Trial) -> float:
        claim.release()  # the trial exists now: the next worker may claim
        ran.append(trial.number)
        return objective(trial)

    while not timeout or time.monotonic() - start < timeout:
        claim.acquire()
        try:
            fail_dead_local_trials(study, max_retry=max_retry)
            left, waiting = budget_left(study, n_trials)
            if left == 0 and waiting == 0:
                if not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                    break
                # Budget used, but a trial still runs in another worker (maybe a dead one on
                # another machine): wait, failing stale trials (heartbeat) meanwhile, so a dead
                # worker's trial is failed and its retry is run here, and every worker's summary
                # sees the finished study.
                claim.release()
                _fail_stale_trials(study)
                time.sleep(WAIT_POLL_S)
                continue
            study.optimize(claimed, n_trials=1, catch=catch, gc_after_trial=False)
        finally:
            claim.release()
    return ran


def _fail_stale_trials(study: optuna.Study) -> None:
    """Optuna's heartbeat check (what each worker runs before asking for a trial)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def worker_seed(seed: int, worker: int, n_existing: int) -> int:
    """Sampler seed of one worker: ``seed`` for the first worker of a fresh study, distinct
    for other workers and for resumed studies (the sampler state is not stored, so a
    resumed sampler with the same seed would propose the same points again)."""
    return (seed + 10_007 * worker + 1_000_003 * n_existing) % (2**31)


# --------------------------------------------------------------------------- reporting
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
                print(f"search: no {name} plot yet ({type(err).__name__}: {err})")
                continue
        figures[name] = np.atleast_1d(ax).ravel()[0].figure
    return figures
