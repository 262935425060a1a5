"""``torch.distributed`` under ``torchrun``: start the process group, this process's rank,
rank 0's Python objects sent to every rank, and an epoch's predictions gathered from all
ranks. A single process needs none of it."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler


def is_distributed() -> bool:
    """Whether this process is one rank of an initialized process group."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank (0 outside ``torchrun``)."""
    return dist.get_rank() if is_distributed() else 0


def init_distributed(device: torch.device) -> bool:
    """Join the process group ``torchrun`` announces (``WORLD_SIZE`` > 1); True when joined.
    NCCL on GPUs (each rank on its ``LOCAL_RANK`` device), gloo on CPU."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend=backend)
    return True


def broadcast(obj: object) -> object:
    """Rank 0's ``obj`` on every rank (unchanged in a single process)."""
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def ddp_syncs(model: nn.Module) -> bool:
    """True when ``model`` (or the module a ``torch.compile`` wrapper holds) is DDP-wrapped
    in a process group of several ranks."""
    return (
        isinstance(getattr(model, "_orig_mod", model), DistributedDataParallel)
        and dist.is_available()
        and dist.is_initialized()
        and dist.get_world_size() > 1
    )


def distributed_sampler(loader: Iterable) -> DistributedSampler | None:
    """The loader's DistributedSampler when a process group is running, else None."""
    sampler = getattr(loader, "sampler", None)
    if isinstance(sampler, DistributedSampler) and dist.is_available() and dist.is_initialized():
        return sampler
    return None


def gather_predictions(
    y: np.ndarray, s: np.ndarray, idx: np.ndarray | None, sampler: DistributedSampler
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """All ranks' predictions, without the padding DistributedSampler adds.

    With indices: deduplicated and sorted by index. Without: interleaved back into the
    sampler's order (exact for ``shuffle=False``) and cut to the data-set length.
    """
    parts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, (y, s, idx))
    if idx is not None:
        all_idx = np.concatenate([p[2] for p in parts])
        keep = np.unique(all_idx, return_index=True)[1]
        order = keep[np.argsort(all_idx[keep])]
        return (
            np.concatenate([p[0] for p in parts])[order],
            np.concatenate([p[1] for p in parts])[order],
            all_idx[order],
        )
    n = min(len(p[0]) for p in parts)  # equal unless max_batches cut ranks differently
    ys = np.stack([p[0][:n] for p in parts], axis=1).reshape(-1)
    ss = np.stack([p[1][:n] for p in parts], axis=1).reshape(-1, *s.shape[1:])
    total = len(sampler.dataset) if hasattr(sampler.dataset, "__len__") else len(ys)
    return ys[:total], ss[:total], None
