"""Vectorized Spearman / Pearson / cosine and SSIM against constructed cases and scipy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.similarity import rank, similarity, ssim


def test_rank_averages_ties_like_scipy():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 4, (6, 25), generator=g).float()  # many ties
    expected = np.stack([stats.rankdata(r, method="average") for r in x.numpy()])
    np.testing.assert_array_equal(rank(x).numpy(), expected)


def test_identical_activations_give_one():
    a = torch.randn(5, 64, generator=torch.Generator().manual_seed(0))
    for metric in ("spearman", "pearson", "cosine"):
        s = similarity(a, a, metric)
        torch.testing.assert_close(s.diagonal(), torch.ones(5))


def test_independent_random_activations_give_about_zero():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(20, 4000, generator=g), torch.randn(30, 4000, generator=g)
    rho = similarity(a, b, "spearman")
    assert rho.shape == (20, 30)
    assert rho.abs().max() < 5 / 4000**0.5  # 5 sigma of rho under independence
    assert abs(rho.mean()) < 0.01


def test_monotone_transform_keeps_spearman_at_one_but_not_pearson():
    a = torch.randn(4, 200, generator=torch.Generator().manual_seed(0))
    b = torch.exp(3 * a) + 7  # strictly increasing
    torch.testing.assert_close(similarity(a, b, "spearman").diagonal(), torch.ones(4))
    assert (similarity(a, b, "pearson").diagonal() < 0.9).all()
    relu = torch.relu  # monotone, not strictly: ties at 0 stay tied in both
    torch.testing.assert_close(
        similarity(relu(a), relu(a) ** 2, "spearman").diagonal(), torch.ones(4)
    )


@pytest.mark.parametrize("metric", ["spearman", "pearson", "cosine"])
def test_matches_scipy_pairwise(metric):
    g = torch.Generator().manual_seed(1)
    a = torch.randn(3, 40, generator=g).double()
    b = torch.randint(0, 6, (4, 40), generator=g).double()  # ties on one side
    ref = {
        "spearman": lambda x, y: stats.spearmanr(x, y).statistic,
        "pearson": lambda x, y: stats.pearsonr(x, y).statistic,
        "cosine": lambda x, y: x @ y / np.linalg.norm(x) / np.linalg.norm(y),
    }[metric]
    expected = np.array([[ref(x, y) for y in b.numpy()] for x in a.numpy()])
    np.testing.assert_allclose(similarity(a, b, metric).numpy(), expected, atol=1e-10)


def test_paired_is_the_diagonal():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(6, 30, generator=g), torch.randn(6, 30, generator=g)
    for metric in ("spearman", "pearson", "cosine"):
        torch.testing.assert_close(
            similarity(a, b, metric, paired=True), similarity(a, b, metric).diagonal()
        )


def test_constant_row_is_nan_not_a_number():
    a = torch.randn(2, 10)
    b = torch.stack([torch.full((10,), 0.3), torch.randn(10)])
    s = similarity(a, b, "spearman")
    assert torch.isnan(s[:, 0]).all() and not torch.isnan(s[:, 1]).any()
    assert torch.isnan(similarity(a, torch.zeros(1, 10), "cosine")).all()


def test_bad_metric_and_shapes_raise():
    with pytest.raises(IsicInputError, match="unknown metric 'kendall'"):
        similarity(torch.randn(2, 3), torch.randn(2, 3), "kendall")
    with pytest.raises(IsicInputError, match="same D"):
        similarity(torch.randn(2, 3), torch.randn(2, 4))


def test_ssim_known_values():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 24, 24, generator=g)
    torch.testing.assert_close(ssim(x, x), torch.ones(2))
    # constant images: SSIM reduces to the luminance term (2ab + C1) / (a^2 + b^2 + C1)
    a, b, c1 = 0.2, 0.7, 0.01**2
    got = ssim(torch.full((1, 3, 16, 16), a).double(), torch.full((1, 3, 16, 16), b).double())
    expected = torch.tensor([(2 * a * b + c1) / (a * a + b * b + c1)], dtype=torch.float64)
    torch.testing.assert_close(got, expected)
    # symmetric, and decreasing as noise grows
    y = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    z = (x + 0.4 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    torch.testing.assert_close(ssim(x, y), ssim(y, x))
    assert (ssim(x, y) > ssim(x, z)).all() and (ssim(x, z) < 0.7).all()
