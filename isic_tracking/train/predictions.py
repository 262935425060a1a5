"""What a model said about each evaluated image: labels and scores (one epoch, one fold, or
the out-of-fold predictions of all folds)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from isic_tracking.errors import IsicInputError
from isic_tracking.train.metrics import predicted_labels


@dataclass
class Predictions:
    """What a model said about each evaluated image.

    Attributes:
        y_true: integer labels ``[N]``.
        scores: ``P(malignant)`` ``[N]`` (binary) or softmax probabilities ``[N, C]``.
        indices: data-set indices ``[N]`` when the loader yields ``(x, y, idx)``, else None.
    """

    y_true: np.ndarray
    scores: np.ndarray
    indices: np.ndarray | None = None

    @property
    def task(self) -> str:
        return "binary" if self.scores.ndim == 1 else "multiclass"

    @property
    def n_classes(self) -> int:
        return 2 if self.scores.ndim == 1 else int(self.scores.shape[1])

    def predicted(self, threshold: float = 0.5) -> np.ndarray:
        """Hard labels (threshold on ``P(malignant)`` for binary, argmax for multiclass)."""
        return predicted_labels(self.scores, threshold)

    def __len__(self) -> int:
        return len(self.y_true)

    @classmethod
    def concat(cls, parts: Sequence[Predictions]) -> Predictions:
        """Join predictions (e.g. the out-of-fold predictions of all folds)."""
        if not parts:
            raise IsicInputError("Predictions.concat needs at least one Predictions")
        has_idx = all(p.indices is not None for p in parts)
        return cls(
            y_true=np.concatenate([p.y_true for p in parts]),
            scores=np.concatenate([p.scores for p in parts]),
            indices=np.concatenate([p.indices for p in parts]) if has_idx else None,
        )
