"""Test helpers shared by the interpret tests: a call-counting layer, the hook check."""

from __future__ import annotations

from torch import nn


class Counter(nn.Module):
    """Identity that counts its forward calls (did the forward reach the head?)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x


def no_hooks(model: nn.Module) -> bool:
    """No module of ``model`` keeps a forward hook or forward pre-hook."""
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
