"""One training epoch and one evaluation pass, as module-level functions (timm style).

Both take explicit arguments and return a flat metrics dict with the same keys for every
architecture; the k-fold runner adds ``train_``/``val_`` prefixes, logs and checkpoints.
Results are accumulated on the device and moved to the host once per epoch (no per-sample
Python loops, no per-batch host sync beyond the non-finite-loss check, which lags one
batch so the accelerator stays busy).

DistributedDataParallel: ``train_one_epoch`` accepts a DDP-wrapped model; the non-finite
check is all-reduced so every rank stops at the same batch (no rank left waiting in a
collective). With a ``DistributedSampler`` the epoch's predictions are gathered from all
ranks, so every rank returns the metrics of the whole epoch. ``evaluate`` runs the wrapped
module directly (no DDP collectives), so rank 0 alone may evaluate a plain loader.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from isic_tracking.errors import IsicInputError, NonFiniteLossError
from isic_tracking.train.distributed import ddp_syncs, distributed_sampler, gather_predictions
from isic_tracking.train.metrics import classification_metrics
from isic_tracking.train.predictions import Predictions
from isic_tracking.train.tasks import check_task
from isic_tracking.utils import progress


def amp_dtype(amp: str | None) -> torch.dtype | None:
    """``"bf16"`` -> bfloat16, ``"fp16"`` -> float16, ``None``/``"none"``/``"fp32"`` -> None."""
    if amp in (None, "", "none", "fp32"):
        return None
    if amp in ("bf16", "bfloat16"):
        return torch.bfloat16
    if amp in ("fp16", "float16"):
        return torch.float16
    raise IsicInputError(f"unknown amp {amp!r}; choose 'bf16', 'fp16' or None")


def make_grad_scaler(amp: str | None, device: torch.device | str) -> torch.amp.GradScaler | None:
    """The GradScaler fp16 autocast needs (None for bf16/fp32). Keep it across epochs and in
    the checkpoint (``scaler.state_dict()``): its scale adapts during training."""
    if amp_dtype(amp) is torch.float16:
        return torch.amp.GradScaler(torch.device(device).type)
    return None


def _autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager:
    if dtype is None:
        return nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def _unpack(batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    if isinstance(batch, (list, tuple)) and len(batch) in (2, 3):
        x, y = batch[0], batch[1]
        idx = batch[2] if len(batch) == 3 else None
        return x, torch.as_tensor(y), None if idx is None else torch.as_tensor(idx)
    raise IsicInputError(
        f"loader batches must be (x, y) or (x, y, idx) tuples, got {type(batch).__name__}"
        + (f" of length {len(batch)}" if isinstance(batch, (list, tuple)) else "")
    )


def _to_device(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    if channels_last and x.ndim == 4:
        return x.to(device, non_blocking=True, memory_format=torch.channels_last)
    return x.to(device, non_blocking=True)


def _logits_and_target(
    logits: torch.Tensor, y: torch.Tensor, task: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary: logits ``[B, 1]`` -> ``[B]`` and float targets; multiclass: long targets."""
    if task == "binary":
        if logits.ndim == 2 and logits.shape[1] == 1:
            logits = logits.squeeze(1)
        if logits.ndim != 1:
            raise IsicInputError(
                f"the binary task expects 1 logit per image (num_outputs=1), got logits of shape "
                f"{tuple(logits.shape)}"
            )
        return logits, y.float()
    if logits.ndim != 2:
        raise IsicInputError(f"multiclass logits must be [B, C], got {tuple(logits.shape)}")
    return logits, y.long()


def class_scores(logits: torch.Tensor, task: str) -> torch.Tensor:
    """What the metrics score: ``sigmoid`` of the binary logit, else the softmax."""
    logits = logits.detach().float()
    return torch.sigmoid(logits) if task == "binary" else torch.softmax(logits, dim=1)


def _collect(
    ys: list[torch.Tensor], ss: list[torch.Tensor], idxs: list[torch.Tensor], loader: Iterable
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Concatenate the epoch's per-batch tensors on the device, move them to the host once."""
    if not ys:
        raise IsicInputError("the loader yielded no batches (empty data set or max_batches=0)")
    y = torch.cat(ys).cpu().numpy().astype(np.int64)
    s = torch.cat(ss).cpu().numpy()
    idx = torch.cat(idxs).cpu().numpy().astype(np.int64) if len(idxs) == len(ys) else None
    sampler = distributed_sampler(loader)
    if sampler is not None and dist.get_world_size() > 1:
        y, s, idx = gather_predictions(y, s, idx, sampler)
    return y, s, idx


def _batches(loader: Iterable, max_batches: int | None, desc: str) -> Iterable:
    total = None
    if hasattr(loader, "__len__"):
        total = len(loader) if max_batches is None else min(len(loader), max_batches)
    elif max_batches is not None:
        total = max_batches
    it = iter(loader)
    if max_batches is not None:
        it = (b for _, b in zip(range(max_batches), it))
    return progress(it, desc=desc, total=total, unit="batch")


def _summed_over_ranks(
    loss_sum: torch.Tensor, ys: list[torch.Tensor], loader, device: torch.device
) -> tuple[float, float]:
    """(summed loss, images seen) of an epoch over every rank: this rank's sums, all-reduced
    when the loader shards the data across a process group (DDP)."""
    n_local = sum(len(t) for t in ys)
    total = torch.stack([loss_sum, torch.tensor(float(n_local), device=device)])
    if distributed_sampler(loader) is not None and dist.get_world_size() > 1:
        dist.all_reduce(total)
    loss, n_seen = total.tolist()
    return loss, n_seen


def train_one_epoch(
    model: nn.Module,
    loader: Iterable,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    device: torch.device | str,
    task: str,
    *,
    amp: str | None = None,
    scaler: torch.amp.GradScaler | None = None,
    channels_last: bool = False,
    max_batches: int | None = None,
    epoch: int | None = None,
    desc: str | None = None,
) -> dict[str, float]:
    """Train ``model`` for one pass over ``loader``.

    Args:
        model: any ``nn.Module`` (also DDP-wrapped or ``torch.compile``d), already on
            ``device`` (and in channels_last memory format when ``channels_last``).
        loader: yields ``(x, y)`` or ``(x, y, idx)`` batches (any iterable).
        criterion: from :func:`isic_tracking.train.losses.make_criterion`.
        optimizer: from :func:`isic_tracking.train.losses.make_optimizer`.
        device: where the batches go.
        task: ``"binary"`` (1 logit, float targets) or ``"multiclass"`` (C logits).
        amp: ``"bf16"``, ``"fp16"`` (needs ``scaler``, see :func:`make_grad_scaler`) or None.
        scaler: the fp16 GradScaler.
        channels_last: send 4-D inputs in channels_last memory format.
        max_batches: stop after this many batches (quick runs, benchmarks).
        epoch: only used in messages and the progress bar.
        desc: the progress bar's label (default ``train`` / ``train epoch <epoch>``).

    Returns:
        ``{loss, accuracy, balanced_accuracy, roc_auc, precision, recall, f1, lr, seconds,
        images_per_s}``: loss is the mean per-image training loss, the classification
        metrics are computed on the training predictions of this epoch (model in train mode),
        ``seconds`` is the wall time including data loading.

    Raises:
        NonFiniteLossError: a batch loss was NaN or Inf (raised at most one batch later).
    """
    check_task(task)
    device = torch.device(device)
    dtype = amp_dtype(amp)
    if dtype is torch.float16 and scaler is None:
        raise IsicInputError(
            "amp='fp16' needs a GradScaler: pass scaler=make_grad_scaler('fp16', device)"
        )
    sync_flags = ddp_syncs(model)
    model.train()
    start = time.perf_counter()
    loss_sum = torch.zeros((), device=device)
    ys: list[torch.Tensor] = []
    ss: list[torch.Tensor] = []
    idxs: list[torch.Tensor] = []
    pending: tuple[int, torch.Tensor, torch.Tensor, torch.Tensor] | None = None
    desc = desc or ("train" if epoch is None else f"train epoch {epoch}")
    for i, batch in enumerate(_batches(loader, max_batches, desc)):
        x, y, idx = _unpack(batch)
        x = _to_device(x, device, channels_last)
        y = y.to(device, non_blocking=True)
        with _autocast(device, dtype):
            logits, target = _logits_and_target(model(x), y, task)
            loss = criterion(logits, target)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        loss = loss.detach().float()
        finite = torch.isfinite(loss).to(torch.int32)
        if sync_flags:  # every rank sees every rank's flag, so all stop at the same batch
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        # Check the previous batch: its flag is ready while this batch runs on the device.
        if pending is not None:
            _raise_if_non_finite(pending, optimizer, amp, epoch, sync_flags)
        pending = (i, finite, loss, x)
        loss_sum += loss * len(y)
        ys.append(y.detach())
        ss.append(class_scores(logits, task))
        if idx is not None:
            idxs.append(idx.detach())
    if pending is not None:
        _raise_if_non_finite(pending, optimizer, amp, epoch, sync_flags)
    y_np, s_np, _ = _collect(ys, ss, idxs, loader)
    mean_loss, n_seen = _summed_over_ranks(loss_sum, ys, loader, device)
    seconds = time.perf_counter() - start
    n_classes = 2 if task == "binary" else s_np.shape[1]
    return {
        "loss": mean_loss / n_seen,
        **classification_metrics(y_np, s_np, task, n_classes),
        "lr": float(optimizer.param_groups[0]["lr"]),
        "seconds": seconds,
        "images_per_s": sum(len(t) for t in ys) / seconds,  # this rank's images
    }


def _raise_if_non_finite(
    pending: tuple[int, torch.Tensor, torch.Tensor, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    amp: str | None,
    epoch: int | None,
    distributed: bool,
) -> None:
    batch, finite, loss, x = pending
    if bool(finite.item()):
        return
    where = f"epoch {epoch}, batch {batch}" if epoch is not None else f"batch {batch}"
    lr = optimizer.param_groups[0]["lr"]
    bad_input = not bool(torch.isfinite(x).all().item())
    hints = []
    if bad_input:
        hints.append("the input batch itself holds NaN/Inf values: check the images/transforms")
    hints.append(f"lower the learning rate (lr={lr:g})")
    if amp == "fp16":
        hints.append("try amp='bf16' or amp=None (fp16 can overflow)")
    rank = f" on some rank (this is rank {dist.get_rank()})" if distributed else ""
    raise NonFiniteLossError(
        f"training loss became {loss.item()} at {where}{rank} (lr={lr:g}, amp={amp}); "
        f"the fold is stopped. Hint: {'; '.join(hints)}."
    )


def _without_ddp(model: nn.Module) -> nn.Module:
    """The module inside DDP, still compiled if it was: evaluation needs no gradient sync and
    no buffer broadcast, but keeps the compiled speed (a checkpoint saves
    :func:`~isic_tracking.train.checkpoint.unwrap`'s plain module instead)."""
    inner = getattr(model, "_orig_mod", model)  # torch.compile(DDP(m)) -> DDP(m)
    return inner.module if isinstance(inner, DistributedDataParallel) else model


def evaluate(
    model: nn.Module,
    loader: Iterable,
    criterion: nn.Module | None,
    device: torch.device | str,
    task: str,
    *,
    amp: str | None = None,
    channels_last: bool = False,
    max_batches: int | None = None,
    desc: str = "eval",
) -> tuple[dict[str, float], Predictions]:
    """Evaluate ``model`` on ``loader`` (eval mode, no gradients).

    Args:
        model: any ``nn.Module``; a DDP wrapper is looked through.
        loader: yields ``(x, y)`` or ``(x, y, idx)``; with a ``DistributedSampler`` every
            rank must call this, and each gets the predictions of all ranks.
        criterion: the training loss (for ``loss``), or None to skip it (NaN).
        device, task, amp, channels_last, max_batches: as in :func:`train_one_epoch`.
        desc: the progress bar's label.

    Returns:
        ``({loss, accuracy, balanced_accuracy, roc_auc, precision, recall, f1, seconds,
        images_per_s}, Predictions)``.
    """
    check_task(task)
    device = torch.device(device)
    dtype = amp_dtype(amp)
    net = _without_ddp(model)
    was_training = net.training
    net.eval()
    start = time.perf_counter()
    loss_sum = torch.zeros((), device=device)
    ys: list[torch.Tensor] = []
    ss: list[torch.Tensor] = []
    idxs: list[torch.Tensor] = []
    try:
        with torch.no_grad():
            for batch in _batches(loader, max_batches, desc):
                x, y, idx = _unpack(batch)
                x = _to_device(x, device, channels_last)
                y = y.to(device, non_blocking=True)
                with _autocast(device, dtype):
                    logits, target = _logits_and_target(net(x), y, task)
                    if criterion is not None:
                        loss_sum += criterion(logits, target).float() * len(y)
                ys.append(y)
                ss.append(class_scores(logits, task))
                if idx is not None:
                    idxs.append(idx)
    finally:
        net.train(was_training)
    y_np, s_np, idx_np = _collect(ys, ss, idxs, loader)
    loss_value, n_seen = _summed_over_ranks(loss_sum, ys, loader, device)
    seconds = time.perf_counter() - start
    n_classes = 2 if task == "binary" else s_np.shape[1]
    pred = Predictions(y_true=y_np, scores=s_np, indices=idx_np)
    metrics = {
        "loss": loss_value / n_seen if criterion is not None else float("nan"),
        **classification_metrics(y_np, s_np, task, n_classes),
        "seconds": seconds,
        "images_per_s": sum(len(t) for t in ys) / seconds,  # this rank's images
    }
    return metrics, pred
