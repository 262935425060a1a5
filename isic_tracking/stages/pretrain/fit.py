"""Pre-train a network on fractal categories (:mod:`isic_tracking.data.fractals`): pure
compute over in-memory tensors, no MLflow.

The images are normalized with the ImageNet mean and std, as fine-tuning normalizes the ISIC
images, so the pretrained filters see inputs on the same scale. Each epoch flips the batch
at random (the fractal instances already vary in pose, scale and colour). AdamW with a cosine
schedule: a fixed, short budget that needs no monitor.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from isic_tracking.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from isic_tracking.data.transforms import normalize as normalize_channels


@dataclass(frozen=True)
class PretrainData:
    """The fractal images (uint8 ``[N, 3, S, S]``) and labels, split into train and val."""

    train_x: Tensor
    train_y: Tensor
    val_x: Tensor
    val_y: Tensor


def split_data(x: Tensor, y: Tensor, val_fraction: float, seed: int) -> PretrainData:
    """A stratified split: the first ``val_fraction`` of every class's (shuffled) images."""
    gen = torch.Generator().manual_seed(seed)
    val = torch.zeros(len(y), dtype=torch.bool)
    for c in y.unique():
        idx = (y == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        val[idx[: max(1, round(val_fraction * len(idx)))]] = True
    return PretrainData(x[~val], y[~val], x[val], y[val])


def normalize(x: Tensor) -> Tensor:
    """uint8 images -> float, ImageNet-normalized (as the ISIC images are fed)."""
    return normalize_channels(x.float() / 255.0, IMAGENET_MEAN, IMAGENET_STD)


def _flip(x: Tensor, gen: torch.Generator) -> Tensor:
    h = torch.rand(len(x), generator=gen) < 0.5
    v = torch.rand(len(x), generator=gen) < 0.5
    x = torch.where(h.view(-1, 1, 1, 1), x.flip(3), x)
    return torch.where(v.view(-1, 1, 1, 1), x.flip(2), x)


@torch.no_grad()
def evaluate(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 256) -> dict[str, float]:
    """Validation loss and accuracy."""
    model.eval()
    loss = correct = 0.0
    for i in range(0, len(x), batch_size):
        logits = model(normalize(x[i : i + batch_size]))
        target = y[i : i + batch_size]
        loss += float(nn.functional.cross_entropy(logits, target, reduction="sum"))
        correct += float((logits.argmax(1) == target).sum())
    return {"val_loss": loss / len(x), "val_accuracy": correct / len(x)}


def pretrain(
    model: nn.Module,
    data: PretrainData,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` (its head sized to the categories) in place; one metrics row per
    epoch (``train_loss``, ``train_accuracy``, ``val_loss``, ``val_accuracy``, ``lr``)."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    steps = epochs * math.ceil(len(data.train_y) / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    rows = []
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(data.train_y), generator=gen)
        loss_sum = correct = 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            x, y = normalize(_flip(data.train_x[idx], gen)), data.train_y[idx]
            logits = model(x)
            loss = nn.functional.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += float(loss.detach()) * len(idx)
            correct += float((logits.argmax(1) == y).sum())
        row = {
            "train_loss": loss_sum / len(order),
            "train_accuracy": correct / len(order),
            **evaluate(model, data.val_x, data.val_y),
            "lr": opt.param_groups[0]["lr"],
        }
        rows.append(row)
        if on_epoch is not None:
            on_epoch(epoch, row)
    return rows
