"""The search space: learning rate (log-uniform), batch size (categorical), epochs (integers)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # optuna is imported when a space is used, not by the CLI help
    import optuna

from isic_tracking.errors import IsicInputError


def parse_batch_sizes(value: str | Sequence[int]) -> tuple[int, ...]:
    """``"16,32,64"`` -> ``(16, 32, 64)``; every size a positive integer."""
    items = value.split(",") if isinstance(value, str) else list(value)
    try:
        sizes = tuple(int(str(v).strip()) for v in items if str(v).strip())
    except ValueError as err:
        raise IsicInputError(
            f"batch_sizes={value!r}: give comma-separated integers, e.g. 16,32,64"
        ) from err
    if not sizes or any(s < 1 for s in sizes):
        raise IsicInputError(f"batch_sizes={value!r}: give positive integers, e.g. 16,32,64")
    return tuple(sorted(set(sizes)))


@dataclass(frozen=True)
class SearchSpace:
    """Learning rate (log-uniform), batch size (categorical) and epochs (integer range)."""

    lr_min: float = 1e-5
    lr_max: float = 1e-2
    batch_sizes: tuple[int, ...] = (16, 32, 64, 128)
    epochs_min: int = 5
    epochs_max: int = 40

    def __post_init__(self) -> None:
        if not 0 < self.lr_min <= self.lr_max:
            raise IsicInputError(
                f"learning-rate range [{self.lr_min}, {self.lr_max}]: need 0 < lr_min <= lr_max"
            )
        if not 1 <= self.epochs_min <= self.epochs_max:
            raise IsicInputError(
                f"epochs range [{self.epochs_min}, {self.epochs_max}]: need 1 <= min <= max"
            )

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        import optuna

        d = optuna.distributions
        return {
            "lr": d.FloatDistribution(self.lr_min, self.lr_max, log=True),
            "batch_size": d.CategoricalDistribution(list(self.batch_sizes)),
            "epochs": d.IntDistribution(self.epochs_min, self.epochs_max),
        }

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Draw (or read back, for an enqueued/retried trial) one point of the space."""
        return {
            "lr": trial.suggest_float("lr", self.lr_min, self.lr_max, log=True),
            "batch_size": int(trial.suggest_categorical("batch_size", list(self.batch_sizes))),
            "epochs": trial.suggest_int("epochs", self.epochs_min, self.epochs_max),
        }
