"""Pre-training on fractal categories: the split, the normalization, and a network that
really learns the categories (accuracy far above chance in a few epochs)."""

from __future__ import annotations

import torch

from isic_tracking.data.fractals import fractal_dataset
from isic_tracking.data.transforms import IMAGENET_MEAN
from isic_tracking.models import create_model
from isic_tracking.stages.pretrain.fit import evaluate, normalize, pretrain, split_data


def test_split_is_stratified_and_disjoint():
    x = torch.arange(40).view(40, 1, 1, 1).expand(40, 3, 2, 2).to(torch.uint8)
    y = torch.arange(40) % 4
    data = split_data(x, y, 0.25, seed=0)
    assert torch.bincount(data.val_y).tolist() == [2, 2, 2, 2]
    seen = set(data.train_x[:, 0, 0, 0].tolist()) | set(data.val_x[:, 0, 0, 0].tolist())
    assert len(seen) == 40 and len(data.train_y) == 32


def test_normalize_maps_the_imagenet_mean_to_zero():
    grey = torch.tensor(IMAGENET_MEAN).mul(255).view(1, 3, 1, 1).expand(1, 3, 4, 4)
    assert normalize(grey).abs().max() < 0.01


def test_the_network_learns_the_fractal_categories(one_torch_thread):
    x, y = fractal_dataset(4, 24, 32, seed=0)
    data = split_data(x, y, 0.25, seed=0)
    torch.manual_seed(0)
    model = create_model("smallcnn", 4)
    before = evaluate(model, data.val_x, data.val_y)
    seen = []
    rows = pretrain(model, data, epochs=4, batch_size=16, lr=3e-3, seed=0,
                    on_epoch=lambda e, r: seen.append(e))  # fmt: skip
    assert seen == [1, 2, 3, 4] and len(rows) == 4
    assert rows[-1]["val_accuracy"] >= 0.7 > before["val_accuracy"] + 0.2
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
