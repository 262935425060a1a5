"""The torch.compile lever's bench measures what it says: the model part is the forward to the
table's layer with one channel per image and its input gradient, the image part is a
differentiable batch, and the comparison warms each side up once, then interleaves them."""

from __future__ import annotations

import argparse

import torch

from bench.featvis_compile import CASES, compare, image_side, model_step, prefix


def test_the_prefix_ends_at_the_tables_layer_with_frozen_weights():
    model, batch = prefix("alexnet")
    assert isinstance(model[-1], torch.nn.Conv2d) and len(model) == CASES["alexnet"][0] + 1
    assert batch == 8 and not any(p.requires_grad for p in model.parameters())


def test_the_model_step_gives_the_input_its_gradient():
    model, _ = prefix("alexnet")
    grad = model_step(model, torch.rand(2, 3, 64, 64))
    assert grad.shape == (2, 3, 64, 64) and grad.abs().sum() > 0


def test_the_image_side_is_a_differentiable_batch_of_images():
    out = image_side(32, 2)()
    assert out.shape == (2, 3, 32, 32) and out.requires_grad


def test_compare_reports_eager_over_compiled():
    calls = {"eager": 0, "compiled": 0}

    def eager():
        calls["eager"] += 1

    def compiled():
        calls["compiled"] += 1

    row = compare("part", eager, compiled, argparse.Namespace(repeats=2, steps=3))
    assert calls == {"eager": 1 + 2 * 3, "compiled": 1 + 2 * 3}
    assert row["part"] == "part" and row["eager_s"] >= 0 and row["compiled_s"] >= 0
