"""``torch.distributed`` under ``torchrun``: start the process group, this process's rank,
and rank 0's Python objects sent to every rank. A single process needs none of it."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


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
