"""The batch that keeps a model's largest feature map within the budget."""

from __future__ import annotations

import torch
from torch import nn

from isic_tracking.interpret.batch_fit import MAX_BATCH, fitted_batch, largest_map_bytes
from isic_tracking.models import create_model


def _net() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 4, 3, padding=1)
    )


def test_the_largest_map_is_the_widest_leaf_output_of_one_image():
    assert largest_map_bytes(_net(), 16) == 8 * 16 * 16 * 4  # the first conv (and its ReLU)


def test_the_batch_is_the_largest_power_of_two_within_the_budget():
    per_image = 8 * 16 * 16 * 4
    assert fitted_batch(_net(), 16, budget=per_image * 20) == 16
    assert fitted_batch(_net(), 16, budget=per_image * 20, at_most=8) == 8
    assert fitted_batch(_net(), 16, budget=per_image // 2) == 1  # not even one image fits
    assert fitted_batch(_net(), 16) == MAX_BATCH  # small maps: the usual batch


def test_vgg16_at_224_px_gets_16_images_and_resnet50_keeps_64():
    """VGG16's first block (64 x 224 x 224 floats, 12.8 MB per image) is the case that made the
    heap give memory back and fault it in again after every batch of 64."""
    torch.manual_seed(0)
    assert fitted_batch(create_model("vgg16", 1), 224) == 16
    assert fitted_batch(create_model("resnet50", 1), 224) == 64
    model = create_model("smallcnn", 1).train()
    assert fitted_batch(model, 64) == 64 and model.training  # the mode comes back
