"""Train one fold, resumable at epoch granularity; no MLflow here (the runner logs via callbacks).

Every epoch is a pure function of (weights, optimizer/scheduler/stopper state, seed, fold,
epoch): the RNGs are re-seeded from those at the start of each epoch, so a resumed fold
replays exactly the epochs an uninterrupted one would have run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch import nn

from isic_tracking.config import TrainConfig
from isic_tracking.data.dataset import make_loader
from isic_tracking.data.manifest import task_classes
from isic_tracking.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms
from isic_tracking.errors import IsicInputError
from isic_tracking.log import get_logger
from isic_tracking.models.init import build_initial, describe_init
from isic_tracking.train.champion import policy_for
from isic_tracking.train.checkpoint import unwrap
from isic_tracking.train.distributed import is_distributed, rank
from isic_tracking.train.engine import evaluate, make_grad_scaler, train_one_epoch
from isic_tracking.train.losses import (
    EarlyStopping,
    make_criterion,
    make_optimizer,
    make_scheduler,
)
from isic_tracking.train.predictions import Predictions
from isic_tracking.train.resume import FoldProgress, Trainables, load_fold_state, save_fold_state
from isic_tracking.train.tasks import metric_mode
from isic_tracking.utils import resolve_device

log = get_logger(__name__)
EpochCallback = Callable[[int, dict[str, float]], None]


@dataclass
class FoldResult:
    """What a finished fold hands to the runner."""

    fold: int
    history: list[dict[str, float]]
    best_epoch: int
    best_metrics: dict[str, float]
    best_state: dict[str, torch.Tensor]
    best_predictions: Predictions
    stopped_early: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def class_counts(df: pd.DataFrame, n_classes: int) -> list[int]:
    """Images per label, index = label (0 for an absent class)."""
    counts = np.bincount(df["label"].to_numpy(dtype=np.int64), minlength=n_classes)
    return [int(c) for c in counts[:n_classes]]


def epoch_seed(seed: int, fold: int, epoch: int) -> int:
    """Seed of one epoch's shuffling, augmentation and dropout."""
    return (seed * 1_000_003 + fold * 10_007 + epoch) % (2**31)


def resolve_amp(amp: str, device: torch.device) -> str | None:
    """'auto' -> bf16 on Ampere+ GPUs, fp16 on older ones, none on CPU/MPS."""
    if amp in ("none", "", None):
        return None
    if amp != "auto":
        return amp
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return None


def build_model(cfg: TrainConfig, device: torch.device) -> nn.Module:
    """The fold's fresh model on ``device`` (same seed -> same init in every fold)."""
    n_out = 1 if cfg.task == "binary" else len(task_classes(cfg.task))
    model = build_initial(
        cfg.arch,
        n_out,
        cfg.init_request(),
        cfg.seed,
        dropout=cfg.dropout,
        freeze=cfg.freeze,
        weights_file=cfg.init_file,
    ).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    check_input_size(model, cfg.image_size, device)
    return model


def check_input_size(model: nn.Module, image_size: int, device: torch.device) -> None:
    """One dummy forward: an image size too small for the architecture is a clear error."""
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, image_size, image_size, device=device))
    except RuntimeError as err:
        raise IsicInputError(
            f"image_size={image_size} is too small for {unwrap(model).isic_config['arch']}: "
            f"{err}. Use a larger image_size (e.g. 64 for alexnet, 224 for ImageNet weights)."
        ) from err
    finally:
        model.train(was_training)


def checkpoint_config(cfg: TrainConfig, model: nn.Module, mean, std) -> dict[str, Any]:
    """The checkpoint config: rebuilds the architecture and says how to feed it."""
    init = describe_init(cfg.arch, cfg.init_request(), cfg.seed, cfg.init_file)
    return {
        **unwrap(model).isic_config,
        "init": init.record(),
        "freeze": cfg.freeze,
        "task": cfg.task,
        "classes": list(task_classes(cfg.task)),
        "image_size": cfg.image_size,
        "mean": list(mean),
        "std": list(std),
    }


def _parse_class_weights(value: str) -> str | list[float]:
    return value if value in ("inverse", "none") else [float(x) for x in value.split(",")]


@dataclass
class _Fit:
    """The objects a fold trains with (``model`` DDP-wrapped under torch.distributed,
    ``train_model`` compiled when asked)."""

    model: nn.Module
    train_model: nn.Module
    criterion: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    stopper: EarlyStopping
    amp: str | None
    scaler: torch.amp.GradScaler | None


def _build_fit(cfg: TrainConfig, train_df: pd.DataFrame, device: torch.device) -> _Fit:
    monitor = cfg.resolved_metric()
    n_classes = len(task_classes(cfg.task))
    model = build_model(cfg, device)
    if is_distributed():
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    train_model = torch.compile(model) if cfg.compile else model
    criterion = make_criterion(
        cfg.task, class_counts(train_df, n_classes), _parse_class_weights(cfg.class_weights), device
    )
    optimizer = make_optimizer(model, cfg.lr)
    scheduler = make_scheduler(optimizer, cfg.task, monitor=monitor)
    stopper = EarlyStopping(cfg.patience, mode=metric_mode(monitor))
    amp = resolve_amp(cfg.amp, device)
    scaler = make_grad_scaler(amp, device)
    return _Fit(model, train_model, criterion, optimizer, scheduler, stopper, amp, scaler)


def _run_epoch(
    cfg: TrainConfig,
    fit: _Fit,
    train_df: pd.DataFrame,
    train_tf: Any,
    val_loader: Any,
    device: torch.device,
    fold: int,
    epoch: int,
    unit: str | None = None,
) -> tuple[dict[str, float], Predictions]:
    """One epoch, re-seeded from (seed, fold, epoch): train, then evaluate on the full
    validation set; returns its row (train_/val_ metrics, lr, seconds) and predictions."""
    seed = epoch_seed(cfg.seed, fold, epoch)
    torch.manual_seed(seed)
    np.random.seed(seed)
    sampler = None
    if is_distributed():
        sampler = torch.utils.data.DistributedSampler(train_df, shuffle=True, seed=seed)
    train_loader = make_loader(
        train_df,
        train_tf,
        cfg.batch_size,
        shuffle=sampler is None,
        workers=cfg.workers,
        seed=seed,
        sampler=sampler,
        drop_last=len(train_df) > cfg.batch_size,
    )
    where = epoch_label(fold, cfg.folds, epoch, cfg.epochs, unit)
    t0 = time.perf_counter()
    tr = train_one_epoch(
        fit.train_model,
        train_loader,
        fit.criterion,
        fit.optimizer,
        device,
        cfg.task,
        amp=fit.amp,
        scaler=fit.scaler,
        channels_last=cfg.channels_last,
        max_batches=cfg.max_batches,
        desc=f"{where} train",
    )
    val, pred = evaluate(
        fit.model,
        val_loader,
        fit.criterion,
        device,
        cfg.task,
        amp=fit.amp,
        channels_last=cfg.channels_last,
        desc=f"{where} val",
    )
    row = {f"train_{k}": float(v) for k, v in tr.items() if k not in ("lr", "seconds")}
    row.update({f"val_{k}": float(v) for k, v in val.items()})
    row.update(
        lr=fit.optimizer.param_groups[0]["lr"], epoch_seconds=time.perf_counter() - t0, epoch=epoch
    )
    return row, pred


def epoch_label(fold: int, folds: int, epoch: int, epochs: int, unit: str | None = None) -> str:
    """``fold 2/3 epoch 4/10`` (1-based counts; no fold part for a single split), or
    ``<unit> epoch 4/10`` when the caller names what trains (a search's ``trial 3``)."""
    part = f"{unit} " if unit else (f"fold {fold + 1}/{folds} " if folds > 1 else "")
    return f"{part}epoch {epoch + 1}/{epochs}"


def epoch_line(label: str, row: dict[str, float], monitor: str, best: bool) -> str:
    """The line an epoch leaves on screen: losses, the monitored metric, time."""
    parts = [f"{k} {row[k]:.4f}" for k in ("train_loss", "val_loss", monitor) if k in row]
    seconds = row.get("epoch_seconds", float("nan"))
    return (
        f"{label}: {' · '.join(dict.fromkeys(parts))} · {seconds:.0f} s{'  (best)' if best else ''}"
    )


def train_fold(
    cfg: TrainConfig,
    train_df: pd.DataFrame,
    val_df: pd.DataFrame,
    fold: int,
    state_path: str | Path,
    on_epoch: EpochCallback | None = None,
    unit: str | None = None,
) -> FoldResult:
    """Train ``cfg.epochs`` epochs (early stopping on ``cfg.resolved_metric()``) and return
    the best epoch's weights and validation predictions (best under the champion policy,
    :mod:`isic_tracking.train.champion`).

    Resumes from ``state_path`` when it holds a state of this fold; writes it after every
    epoch (rank 0). Under ``torch.distributed`` the model is wrapped in DDP and the training
    set sharded with a DistributedSampler; every rank evaluates the full validation set, so
    scheduler and early-stopping decisions agree across ranks without communication.
    Raises :class:`~isic_tracking.errors.NonFiniteLossError` on a NaN/Inf loss. ``unit``
    names what trains in its terminal lines and bars (a search passes ``trial <n>``).
    """
    device = resolve_device(cfg.device)
    monitor = cfg.resolved_metric()
    fit = _build_fit(cfg, train_df, device)
    plain = unwrap(fit.model)
    policy = policy_for(cfg)  # which epoch is the fold's best (train/champion.py)
    train_tf = build_transforms(cfg.image_size, train=True, augment=cfg.augment)
    eval_tf = build_transforms(cfg.image_size, train=False)
    val_loader = make_loader(val_df, eval_tf, cfg.batch_size, shuffle=False, workers=cfg.workers)
    mean, std = _normalization(eval_tf)

    trainables = Trainables(plain, fit.optimizer, fit.scheduler, fit.stopper)
    resumed = load_fold_state(state_path, fold, trainables)
    start, progress = resumed if resumed is not None else (0, FoldProgress())
    stopped = fit.stopper.should_stop
    for epoch in range(start, cfg.epochs):
        if stopped:
            break
        row, pred = _run_epoch(cfg, fit, train_df, train_tf, val_loader, device, fold, epoch, unit)
        progress.history.append(row)
        value = row.get(monitor, float("nan"))
        fit.scheduler.step(value)
        stopped = fit.stopper.step(value, epoch)
        best = policy.improves(row, epoch, progress.best_metrics or None, progress.best_epoch)
        if best:
            progress.keep_best(epoch, row, pred, plain)
        if rank() == 0:
            label = epoch_label(fold, cfg.folds, epoch, cfg.epochs, unit)
            # before min_best_epoch every epoch replaces the kept checkpoint, but none of
            # them can be the fold's best: no "(best)" mark there
            log.info(epoch_line(label, row, monitor, best and epoch >= policy.min_epoch))
            if on_epoch is not None:
                on_epoch(epoch, row)
            save_fold_state(state_path, fold, epoch, trainables, progress)
        if is_distributed():
            dist.barrier()
    if progress.best_state is None or progress.best_pred is None:
        raise RuntimeError(f"fold {fold}: no epoch was trained (epochs={cfg.epochs})")
    return FoldResult(
        fold,
        progress.history,
        progress.best_epoch,
        progress.best_metrics,
        progress.best_state,
        progress.best_pred,
        stopped_early=stopped,
        extra={"config": checkpoint_config(cfg, fit.model, mean, std)},
    )


def evaluate_fold_on(cfg: TrainConfig, result: FoldResult, df: pd.DataFrame) -> dict[str, float]:
    """The fold's best weights on other rows (the held-out test set): ``test_`` metrics with
    an unweighted loss."""
    device = resolve_device(cfg.device)
    model = build_model(cfg, device)
    model.load_state_dict(result.best_state)
    loader = make_loader(
        df,
        build_transforms(cfg.image_size, train=False),
        cfg.batch_size,
        shuffle=False,
        workers=cfg.workers,
    )
    n = len(task_classes(cfg.task))
    criterion = make_criterion(cfg.task, [1] * n, None, device)  # unweighted test loss
    metrics, _ = evaluate(
        model, loader, criterion, device, cfg.task, amp=resolve_amp(cfg.amp, device)
    )
    return {f"test_{k}": float(v) for k, v in metrics.items()}


def _normalization(transform: Any) -> tuple[list[float], list[float]]:
    """Mean/std of the Normalize step of a transform pipeline (ImageNet when absent)."""
    for t in getattr(transform, "transforms", []):
        if hasattr(t, "mean") and hasattr(t, "std"):
            return [float(x) for x in t.mean], [float(x) for x in t.std]
    return list(IMAGENET_MEAN), list(IMAGENET_STD)
