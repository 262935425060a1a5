"""The resume state of a fold: written after every epoch, read when the fold starts again,
deleted once the fold has finished (:func:`discard_states`).

One file per fold holds the model, optimizer, scheduler and early-stopping states and the
fold's progress (history, best epoch, its weights and validation predictions). It is written
atomically (a crash mid-write leaves the previous state) and read with
``torch.load(weights_only=True)``: tensors, numbers, lists and dicts only, never code.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from isic_tracking.train.losses import EarlyStopping
from isic_tracking.train.predictions import Predictions


@dataclass
class FoldProgress:
    """What a fold has achieved so far: every epoch's row and its best epoch."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_metrics: dict[str, float] = field(default_factory=dict)
    best_state: dict[str, torch.Tensor] | None = None
    best_pred: Predictions | None = None

    def keep_best(self, epoch: int, row: dict[str, float], pred: Predictions, model: nn.Module):
        """Record ``epoch`` as the best so far: its metrics, predictions and a CPU copy of the
        model's weights."""
        self.best_epoch, self.best_metrics, self.best_pred = epoch, dict(row), pred
        self.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def save_state(path: str | Path, state: dict[str, Any]) -> None:
    """Atomically write a resume state (a crash mid-write leaves the previous state intact)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def discard_states(*paths: str | Path) -> int:
    """Delete resume states (files, their half-written ``.tmp``, and folders): a finished
    fold's state is never read again and weighs as much as two models plus the optimizer.
    Returns the bytes freed."""
    freed = 0
    for p in map(Path, paths):
        for f in (p, p.with_suffix(p.suffix + ".tmp")):
            if f.is_file():
                freed += f.stat().st_size
                f.unlink()
        if p.is_dir():
            freed += sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
            shutil.rmtree(p, ignore_errors=True)
    return freed


def load_state(path: str | Path) -> dict[str, Any] | None:
    """The resume state at ``path`` (``weights_only=True``), or None when there is none."""
    path = Path(path)
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


@dataclass(frozen=True)
class Trainables:
    """What a fold's training changes and its resume state restores: the model (the plain
    module, unwrapped from DDP / compile), its optimizer, scheduler and early stopping."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    stopper: EarlyStopping


def save_fold_state(
    path: str | Path, fold: int, epoch: int, trainables: Trainables, progress: FoldProgress
) -> None:
    """Write the state after ``epoch`` of ``fold``."""
    t = trainables
    if progress.best_pred is None:
        raise ValueError(f"fold {fold}: no best epoch to save after epoch {epoch}")
    save_state(
        path,
        {
            "fold": fold,
            "epoch": epoch,
            "model": t.model.state_dict(),
            "optimizer": t.optimizer.state_dict(),
            "scheduler": t.scheduler.state_dict(),
            "stopper": t.stopper.state_dict(),
            "history": progress.history,
            "best_model": progress.best_state,
            "best_epoch": progress.best_epoch,
            "best_metrics": progress.best_metrics,
            "best_y_true": torch.as_tensor(progress.best_pred.y_true),
            "best_scores": torch.as_tensor(progress.best_pred.scores),
        },
    )


def load_fold_state(
    path: str | Path, fold: int, trainables: Trainables
) -> tuple[int, FoldProgress] | None:
    """Restore the trainables (model, optimizer, scheduler, stopper) from the state of
    ``fold`` at ``path``; returns (the next epoch to run, the progress), or None when there
    is no state of this fold (the objects are left as they are)."""
    state = load_state(path)
    if state is None or state.get("fold") != fold:
        return None
    trainables.model.load_state_dict(state["model"])
    trainables.optimizer.load_state_dict(state["optimizer"])
    trainables.scheduler.load_state_dict(state["scheduler"])
    trainables.stopper.load_state_dict(state["stopper"])
    progress = FoldProgress(
        history=state["history"],
        best_epoch=state["best_epoch"],
        best_metrics=state["best_metrics"],
        best_state=state["best_model"],
        best_pred=Predictions(
            y_true=state["best_y_true"].numpy(), scores=state["best_scores"].numpy()
        ),
    )
    return state["epoch"] + 1, progress
