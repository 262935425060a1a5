"""Loss, optimizer, learning-rate schedule and early stopping for one fold.

The recipe follows the thesis: class-weighted losses against the ISIC imbalance (BCE with
``pos_weight`` for the binary task, weighted cross-entropy for the 8 classes), Adam, and
ReduceLROnPlateau on the monitored validation metric.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from isic_tracking.errors import IsicInputError
from isic_tracking.train.tasks import check_task, metric_mode

#: ReduceLROnPlateau settings per task (thesis: binary factor 0.4 / patience 1, multiclass 0.2 / 2).
PLATEAU = {"binary": {"factor": 0.4, "patience": 1}, "multiclass": {"factor": 0.2, "patience": 2}}


def class_weights_for(
    class_counts: Sequence[int], class_weights: Sequence[float] | str | None = "inverse"
) -> list[float] | None:
    """Resolve ``class_weights`` to one float per class (or ``None`` for an unweighted loss).

    Args:
        class_counts: training images per class, index = label.
        class_weights: ``"inverse"`` (default) for inverse class frequency normalized so the
            weights average to 1 over the training images (sklearn's ``"balanced"``:
            ``n / (C * n_c)``); a sequence of one weight per class (e.g. the thesis's manual
            0.2-0.9); ``None`` or ``"none"`` for no weighting.

    Returns:
        A list of ``len(class_counts)`` floats, or ``None``.
    """
    counts = [int(c) for c in class_counts]
    if len(counts) < 2:
        raise IsicInputError(f"class_counts needs one count per class (>= 2), got {counts}")
    if class_weights is None or (isinstance(class_weights, str) and class_weights == "none"):
        return None
    if isinstance(class_weights, str):
        if class_weights != "inverse":
            raise IsicInputError(
                f"class_weights={class_weights!r}: use 'inverse', 'none' or one number per class"
            )
        empty = [i for i, c in enumerate(counts) if c <= 0]
        if empty:
            raise IsicInputError(
                f"class(es) {empty} have no training images (class_counts={counts}): inverse "
                "class weights are undefined. Use fewer folds, check the manifest labels, or "
                "pass class_weights explicitly (one number per class) or 'none'."
            )
        n, k = sum(counts), len(counts)
        return [n / (k * c) for c in counts]
    weights = [float(w) for w in class_weights]
    if len(weights) != len(counts):
        raise IsicInputError(
            f"class_weights has {len(weights)} values but the task has {len(counts)} classes; "
            "give one weight per class, in label order"
        )
    if any(not math.isfinite(w) or w < 0 for w in weights):
        raise IsicInputError(f"class_weights must be finite and >= 0, got {weights}")
    return weights


def make_criterion(
    task: str,
    class_counts: Sequence[int],
    class_weights: Sequence[float] | str | None = "inverse",
    device: torch.device | str = "cpu",
) -> nn.Module:
    """The class-weighted loss of a task.

    Args:
        task: ``"binary"`` (one logit) or ``"multiclass"`` (N logits).
        class_counts: training images per class, index = label (binary: ``[n_benign, n_malignant]``).
        class_weights: see :func:`class_weights_for`. Binary: ``"inverse"`` gives
            ``pos_weight = n_neg / n_pos``; manual ``[w0, w1]`` gives ``pos_weight = w1 / w0``.
        device: where the weight tensors live.

    Returns:
        ``BCEWithLogitsLoss`` (binary; expects logits ``[B]`` and float targets ``[B]``) or
        ``CrossEntropyLoss`` (multiclass; logits ``[B, C]``, long targets ``[B]``).
    """
    check_task(task)
    counts = list(class_counts)
    if task == "binary" and len(counts) != 2:
        raise IsicInputError(f"binary task needs 2 class counts [benign, malignant], got {counts}")
    weights = class_weights_for(counts, class_weights)
    if task == "binary":
        if weights is None:
            return nn.BCEWithLogitsLoss().to(device)
        if weights[0] <= 0:
            raise IsicInputError(f"binary class_weights[0] must be > 0, got {weights}")
        pos_weight = torch.tensor([weights[1] / weights[0]], dtype=torch.float32, device=device)
        return nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    if weights is None:
        return nn.CrossEntropyLoss().to(device)
    return nn.CrossEntropyLoss(weight=torch.tensor(weights, dtype=torch.float32, device=device))


def make_optimizer(
    model: nn.Module, lr: float = 1e-4, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """Adam over the parameters that require grad (frozen trunks are left out)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise IsicInputError("the model has no trainable parameters (check the `freeze` option)")
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def make_scheduler(
    optimizer: torch.optim.Optimizer,
    task: str,
    monitor: str = "roc_auc",
    factor: float | None = None,
    patience: int | None = None,
) -> torch.optim.lr_scheduler.ReduceLROnPlateau:
    """ReduceLROnPlateau with the thesis settings of ``task``; call ``.step(val_metric)``.

    Args:
        optimizer: from :func:`make_optimizer`.
        task: ``"binary"`` (factor 0.4, patience 1) or ``"multiclass"`` (factor 0.2, patience 2).
        monitor: the monitored metric name; its mode (min for losses, else max) comes from
            :func:`metric_mode`.
        factor, patience: override the task defaults.
    """
    check_task(task)
    cfg = dict(PLATEAU[task])
    if factor is not None:
        cfg["factor"] = factor
    if patience is not None:
        cfg["patience"] = patience
    return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=metric_mode(monitor), **cfg)


class EarlyStopping:
    """Stop when the monitored metric has not improved for ``patience`` epochs.

    ``step(value)`` returns True when training should stop; ``improved`` tells whether the
    last value was a new best (the moment to keep a checkpoint). A NaN value never improves.
    ``state_dict()`` holds plain numbers only, so it checkpoints with ``weights_only=True``.

    Args:
        patience: epochs without improvement before stopping (default 10).
        mode: ``"max"`` (AUC, F1...) or ``"min"`` (loss).
        min_delta: smallest change that counts as an improvement.
    """

    def __init__(self, patience: int = 10, mode: str = "max", min_delta: float = 0.0) -> None:
        if mode not in ("max", "min"):
            raise IsicInputError(f"EarlyStopping mode must be 'max' or 'min', got {mode!r}")
        if patience < 0:
            raise IsicInputError(f"EarlyStopping patience must be >= 0, got {patience}")
        self.patience = int(patience)
        self.mode = mode
        self.min_delta = float(min_delta)
        self.best: float | None = None
        self.best_epoch = -1
        self.epoch = -1  # index of the last step() call
        self.bad_epochs = 0
        self.improved = False

    def _is_better(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def step(self, value: float, epoch: int | None = None) -> bool:
        """Record one epoch's metric; return True when training should stop.

        Args:
            value: the monitored validation metric of this epoch.
            epoch: the epoch index (default: previous index + 1).
        """
        self.epoch = self.epoch + 1 if epoch is None else int(epoch)
        value = float(value)
        self.improved = self._is_better(value)
        if self.improved:
            self.best, self.best_epoch, self.bad_epochs = value, self.epoch, 0
        else:
            self.bad_epochs += 1
        return self.should_stop

    @property
    def should_stop(self) -> bool:
        """True after ``patience`` epochs in a row without improvement (Keras/Lightning rule)."""
        return self.bad_epochs > 0 and self.bad_epochs >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {
            "patience": self.patience,
            "mode": self.mode,
            "min_delta": self.min_delta,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "epoch": self.epoch,
            "bad_epochs": self.bad_epochs,
            "improved": self.improved,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.patience = int(state["patience"])
        self.mode = str(state["mode"])
        self.min_delta = float(state["min_delta"])
        self.best = None if state["best"] is None else float(state["best"])
        self.best_epoch = int(state["best_epoch"])
        self.epoch = int(state["epoch"])
        self.bad_epochs = int(state["bad_epochs"])
        self.improved = bool(state["improved"])
