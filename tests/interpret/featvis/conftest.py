"""Tiny CNNs for the feature-visualization tests (random init, 32-48 px: fast on 2 cores)."""

from __future__ import annotations

import pytest
import torch
from torch import nn


def make_tiny_cnn(seed: int = 0, num_outputs: int = 3) -> nn.Sequential:
    """conv(3->4, 5x5) relu pool conv(4->8) relu pool conv(8->8) | avgpool linear.

    Layer names: "0" first conv, "1" its ReLU, "3" second conv, "6" last conv, "9" the head.
    """
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, num_outputs),
    )


@pytest.fixture
def tiny_cnn() -> nn.Sequential:
    return make_tiny_cnn()
