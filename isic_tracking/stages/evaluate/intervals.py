"""Bootstrap intervals of test metrics: ``scipy.stats.bootstrap`` with BCa (Efron 1987).

The resampled unit is the test image: its label and its score travel together (a paired
resample). Resampling is stratified by class: each class's images are one sample of
``scipy.stats.bootstrap`` (``paired=False`` between samples), resampled with replacement
within itself, so every replicate keeps the test set's class counts. Hence no replicate
holds one class only, and ROC AUC, average precision, sensitivity and specificity are
defined in every replicate (pROC resamples AUC the same way by default). The interval is
therefore conditional on the test set's class counts, which are fixed by its design.

Degenerate cases, per metric:

- a class with a single test image cannot be resampled (scipy needs two observations per
  sample): it is kept in every replicate as is;
- every replicate equal (a perfect scorer's AUC of 1): the interval is that value on both
  sides, method ``degenerate`` (BCa is undefined there);
- BCa undefined otherwise (e.g. NaN in the jackknife): the percentile interval of the finite
  replicates, method ``percentile``;
- no finite replicate (a metric undefined on this test set): NaN, method ``undefined``.

BCa's acceleration needs a jackknife, one statistic per test image: quadratic in the test
set's size (5,000 images: ~20 s on one core). Above ``bca_max_n`` images (default 10,000,
where the BCa and percentile intervals agree closely) the percentile interval is used and
named as such.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import bootstrap

from isic_tracking.errors import IsicInputError

#: above this many test images the percentile interval replaces BCa (see module docstring)
BCA_MAX_N = 10_000


@dataclass(frozen=True)
class Interval:
    """A point estimate on the whole test set and its bootstrap interval at ``level``."""

    estimate: float
    low: float
    high: float
    method: str  # BCa | percentile | degenerate | undefined


def _from_replicates(
    point: float, bounds: tuple[float, float], reps: np.ndarray, level: float, method: str
) -> Interval:
    finite = reps[np.isfinite(reps)]
    if finite.size == 0 or not np.isfinite(point):
        return Interval(point, float("nan"), float("nan"), "undefined")
    if np.ptp(finite) == 0:
        return Interval(point, float(finite[0]), float(finite[0]), "degenerate")
    if np.isfinite(bounds[0]) and np.isfinite(bounds[1]):
        return Interval(point, float(bounds[0]), float(bounds[1]), method)
    lo, hi = np.quantile(finite, [(1 - level) / 2, (1 + level) / 2])
    return Interval(point, float(lo), float(hi), "percentile")


def stratified_bootstrap(
    y: np.ndarray,
    scores: np.ndarray,
    statistic: Callable[[np.ndarray, np.ndarray], np.ndarray],
    *,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    bca_max_n: int = BCA_MAX_N,
) -> list[Interval]:
    """BCa intervals of every component of ``statistic(y, scores)``, resampling images within
    their class (see the module docstring for degenerate resamples).

    Args:
        y: integer labels ``[N]``.
        scores: ``[N]`` or ``[N, C]``, row ``i`` belongs to ``y[i]``.
        statistic: ``(labels, scores) -> [K]`` metrics (e.g. :func:`.metrics.binary_metrics`).
        n_resamples: bootstrap replicates (>= 2).
        level: confidence level in (0, 1).
        seed: seed of the resampling (its own generator; the global one is untouched).
        bca_max_n: above this many images, percentile intervals instead of BCa.

    Returns:
        One :class:`Interval` per component, in ``statistic``'s order.
    """
    if n_resamples < 2:
        raise IsicInputError(f"n_resamples must be >= 2, got {n_resamples}")
    if not 0.0 < level < 1.0:
        raise IsicInputError(f"interval level must lie in (0, 1), got {level}")
    y = np.asarray(y).astype(np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    point = np.atleast_1d(np.asarray(statistic(y, scores), dtype=np.float64))
    members = [np.flatnonzero(y == c) for c in np.unique(y)]
    resampled = tuple(m for m in members if len(m) >= 2)
    fixed = np.concatenate([m for m in members if len(m) < 2] or [np.empty(0, np.int64)])
    if not resampled:
        return [Interval(float(v), float("nan"), float("nan"), "undefined") for v in point]

    def stat(*idx: np.ndarray) -> np.ndarray:
        rows = np.concatenate([*idx, fixed]).astype(np.int64)
        return np.asarray(statistic(y[rows], scores[rows]), dtype=np.float64)

    method = "BCa" if len(y) <= bca_max_n else "percentile"
    with warnings.catch_warnings():  # degenerate BCa warns; handled per metric below
        warnings.simplefilter("ignore")
        res = bootstrap(resampled, stat, n_resamples=n_resamples, paired=False,
                        vectorized=False, confidence_level=level, method=method,
                        rng=np.random.default_rng(seed))  # fmt: skip
    lows = np.atleast_1d(res.confidence_interval.low)
    highs = np.atleast_1d(res.confidence_interval.high)
    reps = np.asarray(res.bootstrap_distribution).reshape(len(point), -1)
    return [_from_replicates(float(point[k]), (lows[k], highs[k]), reps[k], level, method)
            for k in range(len(point))]  # fmt: skip


__all__ = ["BCA_MAX_N", "Interval", "stratified_bootstrap"]
