"""Per-layer measures against their definitions: CKA against the paper's formula in numpy,
weight change, layer swaps that undo themselves, top-k overlap, probes and intervals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from isic_tracking.interpret.layer_measures import (
    StreamedCKA,
    balanced_accuracy,
    bootstrap_interval,
    pooled,
    positions,
    probe_predictions,
    relative_weight_change,
    swapped_layer,
    top_k_jaccard,
)
from isic_tracking.models import create_model
from tests.helpers import linear_cka


def _cka_numpy(x: np.ndarray, y: np.ndarray) -> float:
    """Kornblith et al. 2019, eq. for linear CKA on centred features."""
    x = x - x.mean(0)
    y = y - y.mean(0)
    return float(np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


def test_streamed_cka_equals_the_papers_formula_over_any_batching():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 16, generator=gen)
    y = x @ torch.randn(16, 24, generator=gen) + 0.5 * torch.randn(200, 24, generator=gen) + 3
    reference = _cka_numpy(x.double().numpy(), y.double().numpy())
    for size in (200, 64, 7):
        cka = StreamedCKA()
        for i in range(0, 200, size):
            cka.update(x[i : i + size], y[i : i + size])
        assert cka.value() == pytest.approx(reference, abs=1e-5)
    assert 0.0 < reference < 1.0


def test_streamed_cka_adds_each_batch_into_the_same_memory():
    """The sums are added in place: a pass over thousands of images allocates them once, so
    they do not move around the heap between the feature maps of every batch."""
    x, y = torch.randn(30, 6), torch.randn(30, 9)
    cka = StreamedCKA()
    cka.update(x[:10], y[:10])
    where = [t.data_ptr() for t in (cka.sx, cka.sy, cka.xx, cka.yy, cka.xy)]
    cka.update(x[10:], y[10:])
    assert [t.data_ptr() for t in (cka.sx, cka.sy, cka.xx, cka.yy, cka.xy)] == where
    assert cka.n == 30 and torch.allclose(cka.xy, y.double().T @ x.double())


def test_cka_is_one_for_the_same_features_and_invariant_to_rotation_and_scale():
    x = torch.randn(50, 8)
    q, _ = torch.linalg.qr(torch.randn(8, 8))
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-9)
    assert linear_cka(x, 3 * x @ q + 1) == pytest.approx(1.0, abs=1e-9)
    assert linear_cka(x, torch.randn(50, 8)) < 0.5


def test_pooled_averages_conv_maps_over_space():
    act = torch.arange(2 * 3 * 2 * 2, dtype=torch.float).view(2, 3, 2, 2)
    assert torch.equal(pooled(act), act.mean((2, 3)))
    assert pooled(torch.ones(2, 5)).shape == (2, 5)


def test_weight_change_and_swaps_that_restore_the_layer():
    torch.manual_seed(0)
    base = create_model("smallcnn", 1)
    tuned = create_model("smallcnn", 1)
    tuned.load_state_dict(base.state_dict())
    assert relative_weight_change(tuned, base, "features.4") == 0.0
    with torch.no_grad():
        tuned.features[4].weight.mul_(1.5)
    assert relative_weight_change(tuned, base, "features.4") == pytest.approx(0.5)
    before = tuned.features[4].weight.clone()
    with swapped_layer(tuned, "features.4", base):
        assert torch.equal(tuned.features[4].weight, base.features[4].weight)
    with swapped_layer(tuned, "features.4", None, seed=1) as m:
        fresh = m.features[4].weight.clone()
    with swapped_layer(tuned, "features.4", None, seed=1) as m:
        assert torch.equal(m.features[4].weight, fresh)  # same seed, same re-init
    assert torch.equal(tuned.features[4].weight, before)
    assert not torch.equal(fresh, before)


def test_top_k_jaccard():
    a = torch.tensor([5.0, 4, 3, 2, 1])
    assert top_k_jaccard(a, a, 2) == 1.0
    assert top_k_jaccard(a, a.flip(0), 2) == 0.0
    assert top_k_jaccard(a, torch.tensor([5.0, 1, 4, 2, 3]), 2) == pytest.approx(1 / 3)


def test_probe_separates_planted_classes_and_not_noise():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 30)
    signal = rng.normal(size=(90, 6)) + np.eye(3, 6)[labels] * 5
    assert balanced_accuracy(labels, probe_predictions(signal, labels, 0)) > 0.9
    noise = rng.normal(size=(90, 6))
    assert balanced_accuracy(labels, probe_predictions(noise, labels, 0)) < 0.6


def test_bootstrap_interval_brackets_the_statistic_and_keeps_class_counts():
    labels = np.repeat([0, 1], [20, 40])
    seen = []

    def stat(idx):
        seen.append(np.bincount(labels[idx]).tolist())
        return float(labels[idx].mean())

    lo, hi = bootstrap_interval(labels, stat, n_boot=50, seed=0)
    assert lo == hi == pytest.approx(40 / 60)
    assert all(s == [20, 40] for s in seen)
    values = np.linspace(0, 1, 60)
    lo, hi = bootstrap_interval(labels, lambda idx: float(values[idx].mean()), n_boot=200)
    assert lo < values.mean() < hi


def test_positions_sample_the_same_places_and_see_what_pooling_hides():
    act = torch.randn(3, 4, 5, 5)
    rows = positions(act, 6, seed=1)
    assert rows.shape == (18, 4)
    assert torch.equal(rows, positions(act.clone(), 6, seed=1))  # same seed, same places
    assert positions(torch.randn(3, 7), 6, seed=1).shape == (3, 7)
    # two different first layers (linear in the input): pooled CKA cannot tell them apart
    torch.manual_seed(0)
    x = torch.rand(20, 3, 16, 16)
    x = x * torch.rand(20, 3, 1, 1)  # images differ mostly by their mean colour
    a, b = torch.nn.Conv2d(3, 8, 3), torch.nn.Conv2d(3, 8, 3)
    with torch.no_grad():
        ya, yb = a(x), b(x)
    assert linear_cka(pooled(ya), pooled(yb)) > linear_cka(positions(ya, 64, 0),
                                                           positions(yb, 64, 0)) + 0.1  # fmt: skip
