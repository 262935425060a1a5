from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.featvis import channel, evaluate
from isic_tracking.interpret.featvis.dreams import render_torch_dreams


def test_torch_dreams_renders_the_same_request(tiny_cnn):
    res = render_torch_dreams(tiny_cnn, "3", [1, 5], size=32, steps=4, seed=0)
    assert res.images.shape == (2, 3, 32, 32)
    assert 0 <= res.images.min() and res.images.max() <= 1
    assert res.labels == ["3:1", "3:5"] and res.settings["engine"] == "torch_dreams"
    assert res.history.shape == (4, 2)
    assert torch.allclose(res.activation, evaluate(tiny_cnn, channel("3", [1, 5]), res.images))


def test_torch_dreams_objective_improves(tiny_cnn):
    res = render_torch_dreams(tiny_cnn, "6", [2], size=32, steps=12, seed=0, scale=(1.0, 1.0))
    assert res.history[-3:, 0].mean() > res.history[:3, 0].mean()


def test_torch_dreams_is_seeded_and_leaves_model_and_rngs_alone(tiny_cnn):
    tiny_cnn.train()
    states = random.getstate(), np.random.get_state()[1].copy(), torch.random.get_rng_state()
    a = render_torch_dreams(tiny_cnn, "3", [0], size=32, steps=3, seed=4, freeze_model=False)
    b = render_torch_dreams(tiny_cnn, "3", [0], size=32, steps=3, seed=4)
    assert torch.equal(a.images, b.images)
    assert random.getstate() == states[0]
    assert np.array_equal(np.random.get_state()[1], states[1])
    assert torch.equal(torch.random.get_rng_state(), states[2])
    assert tiny_cnn.training
    assert all(p.grad is None and p.requires_grad for p in tiny_cnn.parameters())
    assert all(not m._forward_hooks for m in tiny_cnn.modules())


def test_torch_dreams_bad_input(tiny_cnn):
    with pytest.raises(IsicInputError, match="conv layers are: 0, 3, 6"):
        render_torch_dreams(tiny_cnn, "features.1", [0], size=32, steps=1)
    with pytest.raises(IsicInputError, match=r"use 0\.\.7"):
        render_torch_dreams(tiny_cnn, "6", [8], size=32, steps=1)


def test_torch_dreams_explains_its_smaller_resized_images():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.MaxPool2d(2), torch.nn.Conv2d(4, 4, 3)
    )  # needs >= 8 px; at 12 px torch-dreams' 0.5 resize gives 6
    with pytest.raises(IsicInputError, match="torch-dreams resizes the image by down to 0.5"):
        render_torch_dreams(model, "0", [0], size=12, steps=1)
