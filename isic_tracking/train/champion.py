"""The champion policy: which epoch is a fold's best checkpoint, and which fold is champion.

Why a policy and not the plain maximum: on a few dozen validation images a barely trained
model can score a lucky ROC AUC (0.99 after one epoch, with a training accuracy of 0.5), and
AUC saturates at 1.0, so "the first epoch with the highest value" keeps an untrained model and
the fold with the highest value is often the luckiest, not the best. The rule:

1. **Minimum epoch.** Epochs before ``min_epoch`` are never kept once training reaches it:
   until then the latest epoch is held (so a fold stopped early still has its most trained
   weights), from ``min_epoch`` on only eligible epochs compete.
2. **Resolution, then loss.** The monitored metric is compared rounded to ``decimals``
   (None: exact), the resolution a small validation set supports; equal values are decided
   by the lower ``tie_breaker`` (validation loss, which does not saturate).
3. **Champion fold.** The same key, applied to each fold's best epoch, picks the champion
   version; on equal keys the first fold wins.

Every comparison goes through :meth:`ChampionPolicy.key`, a total order, so the online
choice during training (:meth:`ChampionPolicy.improves`) equals the offline one
(:func:`best_epoch`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from isic_tracking.errors import IsicInputError
from isic_tracking.train.tasks import metric_mode

Row = Mapping[str, float]


def _oriented(value: float | None, metric: str) -> float:
    """``value`` so that larger is better (loss-like metrics negated); NaN/None is worst."""
    if value is None or not math.isfinite(float(value)):
        return -math.inf
    return float(value) if metric_mode(metric) == "max" else -float(value)


@dataclass(frozen=True)
class ChampionPolicy:
    """How checkpoints are ranked (see the module docstring).

    Args:
        monitor: the monitored validation metric (``val_roc_auc``, ``val_loss``, ...).
        min_epoch: first epoch that may be a fold's best (0: every epoch).
        decimals: compare ``monitor`` rounded to this many decimals (None: exact).
        tie_breaker: metric deciding between equal ``monitor`` values (lower loss wins).
    """

    monitor: str
    min_epoch: int = 1
    decimals: int | None = None
    tie_breaker: str = "val_loss"

    def __post_init__(self) -> None:
        if self.min_epoch < 0:
            raise IsicInputError(f"min_best_epoch={self.min_epoch}: use 0 or more")
        if self.decimals is not None and self.decimals < 0:
            raise IsicInputError(f"best_decimals={self.decimals}: use 0 or more, or none")

    def key(self, row: Row) -> tuple[float, float]:
        """Sort key of one epoch's (or fold's best) metrics; larger is better."""
        value = row.get(self.monitor)
        if value is not None and self.decimals is not None and math.isfinite(value):
            value = round(float(value), self.decimals)
        tie = row.get(self.tie_breaker)
        return _oriented(value, self.monitor), _oriented(tie, self.tie_breaker)

    def improves(self, row: Row, epoch: int, best: Row | None, best_epoch: int) -> bool:
        """Whether ``epoch`` (metrics ``row``) replaces the best checkpoint so far."""
        if best is None or epoch < self.min_epoch or best_epoch < self.min_epoch:
            return True
        return self.key(row) > self.key(best)


def best_epoch(history: Sequence[Row], policy: ChampionPolicy) -> int:
    """The epoch :meth:`ChampionPolicy.improves` keeps over a whole ``history``."""
    if not history:
        raise IsicInputError("best_epoch: the history is empty (no epoch was trained)")
    best: Row | None = None
    chosen = -1
    for i, row in enumerate(history):
        epoch = int(row.get("epoch", i))
        if policy.improves(row, epoch, best, chosen):
            best, chosen = row, epoch
    return chosen


def champion_index(folds: Sequence[Row], policy: ChampionPolicy) -> int:
    """Index of the champion among the folds' best-epoch metrics (first on equal keys)."""
    if not folds:
        raise IsicInputError("champion_index: no fold to choose from")
    keys = [policy.key(row) for row in folds]
    return max(range(len(keys)), key=lambda i: (keys[i], -i))


def unprefixed(metrics: Row, prefix: str = "best_") -> dict[str, float]:
    """``{best_val_roc_auc: x}`` -> ``{val_roc_auc: x}`` (a fold's final metrics as a row)."""
    return {k[len(prefix) :]: v for k, v in metrics.items() if k.startswith(prefix)}


def explain(policy: ChampionPolicy, folds: Sequence[Row], names: Sequence[str]) -> str:
    """One paragraph saying which fold is champion under ``policy`` and why (for the
    registered version's description)."""
    win = champion_index(folds, policy)
    res = "exact" if policy.decimals is None else f"rounded to {policy.decimals} decimals"

    def show(row: Row) -> str:
        epoch = row.get("epoch", float("nan"))
        return (
            f"{policy.monitor}={row.get(policy.monitor, float('nan')):.4f}, "
            f"{policy.tie_breaker}={row.get(policy.tie_breaker, float('nan')):.4f} "
            f"at epoch {int(epoch) if math.isfinite(epoch) else '?'}"
        )

    others = "; ".join(f"{names[i]}: {show(r)}" for i, r in enumerate(folds) if i != win)
    return (
        f"Champion: {names[win]} ({show(folds[win])}). Policy: a fold's best checkpoint is "
        f"taken from epoch {policy.min_epoch} on; checkpoints are ranked by {policy.monitor} "
        f"({res}), equal values by the lower {policy.tie_breaker}; the fold with the best "
        f"best checkpoint is champion." + (f" Other folds: {others}." if others else "")
    )


def policy_for(cfg: object) -> ChampionPolicy:
    """The policy of a :class:`~isic_tracking.config.TrainConfig` (``resolved_metric()``,
    ``min_best_epoch``, ``best_decimals``)."""
    return ChampionPolicy(
        cfg.resolved_metric(),  # type: ignore[attr-defined]
        int(getattr(cfg, "min_best_epoch", 1)),
        getattr(cfg, "best_decimals", None),
    )
