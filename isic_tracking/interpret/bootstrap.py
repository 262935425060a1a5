"""Bootstrap intervals for set-to-set similarities: is one query set closer to the natural
images of its class than another (noise) is?

The statistic of a query set is the mean over its queries of each query's mean similarity
to the natural images of its class (what :func:`.sanity.path_similarity` averages). Its
uncertainty comes from two finite samples, so a replicate resamples both with replacement:
the natural images (within each class) and the queries (within each class, so a replicate
keeps the set's class composition). A resample is a matrix of draw counts, so one replicate
is two weighted means over the precomputed ``[Q, N]`` similarity matrix: thousands of
replicates are a few small matrix products, never a forward pass.

For a difference of two query sets (visualizations minus noise), both are compared with the
*same* natural resample in each replicate (a paired bootstrap): what the natural sample does
to both cancels, what remains is the difference between the sets. The interval is the
percentile interval of the replicates (Efron & Tibshirani 1993, ch. 13).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from isic_tracking.errors import IsicInputError


def stratified_counts(groups: Tensor, n_boot: int, generator: torch.Generator) -> Tensor:
    """``[n_boot, N]`` draw counts of resampling ``N`` items with replacement within groups.

    Each group keeps its size in every replicate (a row sums to ``N``, and to a group's size
    over that group's items).
    """
    groups = groups.cpu().long()
    out = torch.zeros(n_boot, len(groups), dtype=torch.float64)
    for g in groups.unique():
        idx = (groups == g).nonzero().flatten()
        draws = torch.randint(len(idx), (n_boot, len(idx)), generator=generator)
        counts = torch.zeros(n_boot, len(idx), dtype=torch.float64)
        counts.scatter_add_(1, draws, torch.ones_like(counts))
        out[:, idx] = counts
    return out


def weighted_set_mean(sim: Tensor, pairs: Tensor, ref_w: Tensor, query_w: Tensor) -> Tensor:
    """Per replicate, the query set's mean of each query's mean similarity to its references.

    Args:
        sim: ``[Q, N]`` similarity of every query with every natural image (NaN: undefined,
            skipped).
        pairs: ``[Q, N]`` bool, the pairs that count (the natural images of the query's class;
            for natural queries, not the image itself).
        ref_w: ``[B, N]`` weights (draw counts) of the natural images per replicate.
        query_w: ``[B, Q]`` weights of the queries per replicate.

    Returns:
        ``[B]`` float64; NaN for a replicate in which no query has a defined pair.
    """
    valid = (pairs & ~torch.isnan(sim)).double()
    s = torch.nan_to_num(sim.double()) * valid
    ref_w, query_w = ref_w.double(), query_w.double()
    den = ref_w @ valid.T  # [B, Q]: weight of each query's references
    per_query = (ref_w @ s.T) / den.clamp_min(1e-300)
    qw = query_w * (den > 0)
    total = qw.sum(dim=1)
    mean = (qw * per_query).sum(dim=1) / total.clamp_min(1e-300)
    return torch.where(total > 0, mean, torch.full_like(mean, float("nan")))


def percentile_interval(replicates: Tensor, level: float = 0.95) -> tuple[float, float]:
    """The ``level`` percentile interval of bootstrap replicates (NaN replicates skipped)."""
    if not 0.0 < level < 1.0:
        raise IsicInputError(f"interval level must be in (0, 1), got {level}")
    r = replicates.detach().cpu().double().numpy()
    r = r[~np.isnan(r)]
    if r.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(r, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


@dataclass(frozen=True)
class QuerySet:
    """One set of queries compared with the natural images: similarities and classes.

    Attributes:
        sim: ``[Q, N]`` similarity of each query with each natural image.
        classes: ``[Q]`` the class each query is compared with.
        is_natural: the queries *are* the natural images (row ``i`` = natural image ``i``):
            an image is not paired with itself, and a replicate resamples it once for both
            roles.
    """

    sim: Tensor
    classes: Tensor
    is_natural: bool = False

    def pairs(self, natural_class: Tensor) -> Tensor:
        same = self.classes.cpu()[:, None] == natural_class.cpu()[None, :]
        if self.is_natural:
            same &= ~torch.eye(len(self.classes), dtype=torch.bool)
        return same


@dataclass(frozen=True)
class Difference:
    """``estimate`` of mean(a) - mean(b), its percentile interval ``[lo, hi]``, at ``level``."""

    estimate: float
    lo: float
    hi: float
    level: float


def difference_interval(
    a: QuerySet,
    b: QuerySet,
    natural_class: Tensor,
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Difference:
    """Paired bootstrap of ``mean(a) - mean(b)``: each set's mean similarity to the natural
    images of its classes, both against the same natural resample in every replicate.

    Deterministic for a given ``seed`` (its own generator; the global RNG is untouched).
    """
    if n_boot < 1:
        raise IsicInputError(f"n_boot must be >= 1, got {n_boot}")
    natural_class = natural_class.cpu().long()
    g = torch.Generator().manual_seed(seed)
    ref_w = stratified_counts(natural_class, n_boot, g)

    def replicates(q: QuerySet) -> tuple[Tensor, Tensor]:
        sim, pairs = q.sim.detach().cpu(), q.pairs(natural_class)
        ones = torch.ones(1, len(natural_class), dtype=torch.float64)
        point = weighted_set_mean(sim, pairs, ones, torch.ones(1, sim.shape[0]))[0]
        qw = ref_w if q.is_natural else stratified_counts(q.classes, n_boot, g)
        return point, weighted_set_mean(sim, pairs, ref_w, qw)

    (pa, ra), (pb, rb) = replicates(a), replicates(b)
    lo, hi = percentile_interval(ra - rb, level)
    return Difference(float(pa - pb), lo, hi, level)
