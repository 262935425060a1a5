"""The paired bootstrap of set-to-set similarities: resampling, weighted means, intervals."""

from __future__ import annotations

import pytest
import torch

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.bootstrap import (
    QuerySet,
    difference_interval,
    percentile_interval,
    stratified_counts,
    weighted_set_mean,
)


def test_stratified_counts_keep_every_group_size_and_follow_the_seed():
    groups = torch.tensor([0, 0, 0, 1, 1, 2, 0, 1])
    w = stratified_counts(groups, 500, torch.Generator().manual_seed(3))
    assert w.shape == (500, 8)
    for g, size in ((0, 4), (1, 3), (2, 1)):
        assert torch.all(w[:, groups == g].sum(dim=1) == size)
    assert torch.all(w[:, 5] == 1)  # a group of one is always itself
    assert w.std(dim=0)[groups == 0].min() > 0  # items really are resampled
    again = stratified_counts(groups, 500, torch.Generator().manual_seed(3))
    torch.testing.assert_close(w, again)
    other = stratified_counts(groups, 500, torch.Generator().manual_seed(4))
    assert not torch.equal(w, other)


def test_weighted_set_mean_with_unit_weights_is_the_mean_of_per_query_class_means():
    sim = torch.tensor([[0.1, 0.2, 0.9, float("nan")], [0.5, 0.7, 0.0, 0.3]])
    pairs = torch.tensor([[True, True, False, True], [False, False, True, True]])
    ones_n, ones_q = torch.ones(1, 4), torch.ones(1, 2)
    got = weighted_set_mean(sim, pairs, ones_n, ones_q)
    # query 0: (0.1 + 0.2) / 2 (NaN skipped); query 1: (0.0 + 0.3) / 2
    torch.testing.assert_close(got, torch.tensor([(0.15 + 0.15) / 2], dtype=torch.float64))
    # counts are weights: drawing natural image 1 twice and query 1 three times
    got = weighted_set_mean(sim, pairs, torch.tensor([[1.0, 2, 1, 1]]), torch.tensor([[1.0, 3]]))
    q0, q1 = (0.1 + 2 * 0.2) / 3, 0.15
    torch.testing.assert_close(got, torch.tensor([(q0 + 3 * q1) / 4], dtype=torch.float64))
    none = weighted_set_mean(sim, torch.zeros(2, 4, dtype=torch.bool), ones_n, ones_q)
    assert torch.isnan(none).all()


def test_percentile_interval_of_known_replicates():
    lo, hi = percentile_interval(torch.arange(1001.0), 0.95)
    assert (lo, hi) == pytest.approx((25.0, 975.0))
    lo, hi = percentile_interval(torch.tensor([float("nan"), 1.0, 1.0]))
    assert (lo, hi) == (1.0, 1.0)
    with pytest.raises(IsicInputError, match="level"):
        percentile_interval(torch.ones(3), 1.5)


def _planted(
    seed: int, delta: float, q: int = 20, n: int = 30
) -> tuple[QuerySet, QuerySet, torch.Tensor]:
    """Two query sets whose true mean similarities differ by ``delta``: sim = set level +
    query effect + natural-image effect (shared by both sets) + pair noise."""
    g = torch.Generator().manual_seed(seed)
    nat_c = torch.arange(n) % 2
    ref = 0.3 * torch.randn(n, generator=g)  # shared: the paired bootstrap must cancel it

    def query_set(level: float) -> QuerySet:
        cls = torch.arange(q) % 2
        sim = (
            level
            + 0.1 * torch.randn(q, 1, generator=g)
            + ref
            + 0.05 * torch.randn(q, n, generator=g)
        )
        return QuerySet(sim, cls)

    return query_set(0.5 + delta), query_set(0.5), nat_c


def test_difference_interval_is_deterministic_for_a_seed():
    a, b, nat_c = _planted(0, 0.1)
    d1 = difference_interval(a, b, nat_c, n_boot=300, seed=5)
    d2 = difference_interval(a, b, nat_c, n_boot=300, seed=5)
    d3 = difference_interval(a, b, nat_c, n_boot=300, seed=6)
    assert d1 == d2
    assert (d1.lo, d1.hi) != (d3.lo, d3.hi) and d1.estimate == d3.estimate
    assert d1.lo < d1.estimate < d1.hi


def test_difference_interval_covers_the_planted_difference_at_its_level():
    """Over 200 data sets drawn from one planted distribution, the 90 % interval holds the
    true difference about 90 % of the time, and never more than it should by chance."""
    delta, hits, widths = 0.05, 0, []
    for s in range(200):
        a, b, nat_c = _planted(s, delta)
        d = difference_interval(a, b, nat_c, n_boot=400, level=0.9, seed=s)
        hits += d.lo <= delta <= d.hi
        widths.append(d.hi - d.lo)
    # binomial(200, 0.9): sd 2.1 %; the percentile bootstrap of 20 queries runs a bit short
    assert 0.82 <= hits / 200 <= 0.96
    # the shared natural-image effect (sd 0.3) cancels: widths follow the queries' sd 0.1
    assert max(widths) < 0.2


def test_natural_queries_are_not_paired_with_themselves():
    sim = torch.eye(4) + 0.5  # each image is identical to itself only
    nat_c = torch.tensor([0, 0, 1, 1])
    natural = QuerySet(sim, nat_c, is_natural=True)
    assert not natural.pairs(nat_c).diagonal().any()
    noise = QuerySet(torch.full((2, 4), 0.25), torch.tensor([0, 1]))
    d = difference_interval(natural, noise, nat_c, n_boot=200)
    assert d.estimate == pytest.approx(0.25)  # 0.5 off the diagonal, not 1.5
    with pytest.raises(IsicInputError, match="n_boot"):
        difference_interval(natural, noise, nat_c, n_boot=0)
