"""The ``search`` stage's config: the shared fit settings plus the study's own (space, pruner,
budget, storage); the training config of one trial is derived from it, never copied."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from isic_tracking.config import (
    FitSettings,
    TrainConfig,
    config_hash,
    non_result_fields,
    setting,
)
from isic_tracking.errors import IsicInputError
from isic_tracking.train.search.space import SearchSpace, parse_batch_sizes
from isic_tracking.train.tasks import TASKS, metric_mode

PRUNERS = ("median", "none")


@dataclass
class SearchConfig(FitSettings):
    """Everything the ``search`` stage needs (same names as the MLproject parameters)."""

    #: ``metric`` was the search's name of the monitored metric (train's ``monitor``)
    renamed: ClassVar[dict[str, str]] = {"metric": "monitor"}
    field_help: ClassVar[dict[str, str]] = {
        "monitor": "objective: a val_ metric (default val_roc_auc binary, "
        "val_balanced_accuracy multiclass)",
        "seed": "seed of the sampler, subset, holdout split and training",
        "grouped": "group subset and holdout by patient_id / lesion_id",
        "patience": "early-stopping patience in epochs, inside a trial",
        "amp": "auto | bf16 | fp16 | none",
        "workers": "data-loader worker processes per trial",
        "deterministic": "deterministic kernels on CPU",
    }

    n_trials: int = setting(
        20, "trial budget of the study (a resumed study tops up to it)", result=False
    )
    subset: float = setting(0.1, "fraction of the training rows searched on (stratified)")
    storage: str | None = setting(
        None,
        "Optuna storage: journal:<path>, sqlite:///<path>, postgresql://..., mysql+pymysql://... "
        "(default: journal file optuna.journal beside the MLflow sqlite database)",
        result=False,
    )
    study_name: str | None = setting(
        None, "study name (default: isic-<task>-<arch>-<config hash>)", result=False
    )
    n_workers: int = setting(1, "worker processes on this host sharing the study", result=False)
    pruner: str = setting("median", "median | none")
    timeout: float = setting(
        0.0, "stop starting trials after this many seconds (0: no limit)", result=False
    )
    lr_min: float = setting(1e-5, "learning-rate range, log-uniform")
    lr_max: float = setting(1e-2, "learning-rate range, log-uniform")
    batch_sizes: str = setting("16,32,64,128", "comma-separated batch sizes to choose from")
    epochs_min: int = setting(5, "epochs range (integers)")
    epochs_max: int = setting(40, "epochs range (integers)")
    val_fraction: float = setting(0.2, "validation part of the holdout split of the subset")
    pruner_startup_trials: int = setting(3, "median pruner: completed trials before pruning starts")
    pruner_warmup_epochs: int = setting(1, "median pruner: epochs of a trial never pruned")
    heartbeat: int = setting(
        60, "RDB storages: heartbeat seconds (a trial silent 2x this is failed)", result=False
    )
    max_retry: int = setting(1, "times a crashed worker's trial is re-queued", result=False)
    work_dir: str = setting(
        "outputs/search", "default journal storage when MLflow is not sqlite", result=False
    )

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
        """The training config of one trial: the shared settings plus the trial's
        lr / batch size / epochs, one fold, monitored on the search metric."""
        return TrainConfig(
            **{**self.fit_settings(), "monitor": self.resolved_metric()},
            folds=1,
            epochs=int(params["epochs"]),
            batch_size=int(params["batch_size"]),
            lr=float(params["lr"]),
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
                f"monitor={self.monitor!r}: use a validation metric such as val_roc_auc, "
                "val_balanced_accuracy, val_f1 or val_loss"
            )
        if self.heartbeat < 1 or self.max_retry < 0:
            raise IsicInputError("heartbeat must be >= 1 second and max_retry >= 0")
        self.space()
        return self


#: Fields that steer the run but not its result: left out of the study hash and run params.
RUN_CONTROL_FIELDS = non_result_fields(SearchConfig)


def default_study_name(cfg: SearchConfig, manifest_path: str) -> str:
    """``isic-<task>-<arch>-<hash>``: the same settings and data give the same study (the
    monitored metric is hashed under its old name ``metric``: studies made before the rename
    are resumed)."""
    h = config_hash(
        dataclasses.replace(cfg, manifest=str(manifest_path)), RUN_CONTROL_FIELDS, cfg.renamed
    )
    return f"isic-{cfg.task}-{cfg.arch.replace(':', '-')}-{h}"
