"""Which module's output is a conv filter's *response*: the conv itself, or the BatchNorm
right after it.

In conv -> ReLU nets (AlexNet, VGG) the conv's output is the pre-activation: the ReLU is
monotone, so its per-image max ranks images like the response and "max <= 0" means the ReLU
outputs zero everywhere. In conv -> BatchNorm -> ReLU nets (``smallcnn``, ResNets, MobileNets)
the BatchNorm shifts every channel and may flip its sign (a negative weight): the conv's max
can be negative on a channel that the ReLU passes, and its largest value can be the response's
smallest. There the BatchNorm's output is the pre-activation to analyse.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from isic_tracking.interpret.activations import REDUCTIONS, LayerStats, activation_stats
from isic_tracking.models import get_layer


def _following_bn(model: nn.Module, layer: str) -> str | None:
    """Name of a BatchNorm over the conv's channels that directly follows it, if any:
    the next module of the same ``nn.Sequential`` or the ``convN`` -> ``bnN`` sibling."""
    conv = get_layer(model, layer)
    channels = getattr(conv, "out_channels", None)
    parent_name, _, leaf = layer.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    candidates = []
    if isinstance(parent, nn.Sequential):
        names = [n for n, _ in parent.named_children()]
        if leaf in names and names.index(leaf) + 1 < len(names):
            candidates.append(names[names.index(leaf) + 1])
    m = re.fullmatch(r"conv(\w*)", leaf)
    if m:
        candidates.append(f"bn{m.group(1)}")
    for name in candidates:
        bn = getattr(parent, name, None)
        if isinstance(bn, _BatchNorm) and bn.num_features == channels:
            return f"{parent_name}.{name}" if parent_name else name
    return None


def response_module(model: nn.Module, layer: str) -> str:
    """The module whose output is ``layer``'s response: its BatchNorm where one follows it,
    else the layer itself (``""``, the model's output / class logits, stays ``""``)."""
    return (_following_bn(model, layer) or layer) if layer else layer


def response_layers(model: nn.Module, layers: list[str]) -> dict[str, str]:
    """``{module to hook: layer}``: each layer's BatchNorm where one follows it, else itself."""
    return {(_following_bn(model, layer) or layer): layer for layer in layers}


def response_stats(
    model: nn.Module,
    loader: Iterable,
    layers: list[str],
    device: str | torch.device = "cpu",
    *,
    reduce: Sequence[str] = REDUCTIONS,
) -> dict[str, LayerStats]:
    """:func:`activation_stats` of each layer's *response* (its BatchNorm's output where one
    follows it), keyed and named by the layer: what every filter ranking reads."""
    hooked = response_layers(model, layers)
    stats = activation_stats(model, loader, list(hooked), device, reduce=reduce)
    return {hooked[n]: dataclasses.replace(s, name=hooked[n]) for n, s in stats.items()}
