"""Predictions: joining folds, hard labels, task and class count from the scores."""

from __future__ import annotations

import numpy as np
import pytest

from isic_tracking.errors import IsicInputError
from isic_tracking.train.predictions import Predictions


def test_predictions_concat_and_predicted():
    a = Predictions(np.array([0, 1]), np.array([0.2, 0.7]), np.array([0, 1]))
    b = Predictions(np.array([1]), np.array([0.4]), np.array([2]))
    c = Predictions.concat([a, b])
    assert len(c) == 3 and c.indices.tolist() == [0, 1, 2]
    assert c.predicted().tolist() == [0, 1, 0]
    assert c.predicted(threshold=0.3).tolist() == [0, 1, 1]


def test_task_classes_and_concat_without_indices():
    multi = Predictions(np.array([2, 0]), np.array([[0.1, 0.2, 0.7], [0.5, 0.3, 0.2]]))
    assert (multi.task, multi.n_classes, multi.predicted().tolist()) == ("multiclass", 3, [2, 0])
    binary = Predictions(np.array([1]), np.array([0.9]), np.array([5]))
    assert (binary.task, binary.n_classes) == ("binary", 2)
    joined = Predictions.concat([binary, Predictions(np.array([0]), np.array([0.1]))])
    assert joined.indices is None and joined.y_true.tolist() == [1, 0]
    with pytest.raises(IsicInputError, match="at least one"):
        Predictions.concat([])
