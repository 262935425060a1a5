"""The lesions carry a learnable signal (colour statistics separate the classes)."""

from __future__ import annotations

import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from isic_tracking.data.sources import read_source
from tests.data.synthetic.helpers import pixels


def _colour_features(paths) -> np.ndarray:
    rows = []
    for p in paths:
        img = pixels(p)
        h, w, _ = img.shape
        centre = img[h // 5 : h - h // 5, w // 5 : w - w // 5].reshape(-1, 3)
        q = np.percentile(centre, [5, 25, 50, 75, 95], axis=0).ravel()
        rows.append(np.concatenate([centre.mean(0), centre.std(0), q]))
    return np.array(rows)


def test_signal_is_learnable_from_colour_statistics(synth):
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    binary = read_source("synthetic", synth).manifest
    binary = binary[binary["split"] == "train"]
    logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    auc = cross_val_score(
        logistic, _colour_features(binary["path"]), binary["label"], scoring="roc_auc", cv=cv
    )
    assert auc.mean() > 0.9, auc
    multi = read_source("synthetic", synth, task="multiclass").manifest
    lda = make_pipeline(StandardScaler(), LinearDiscriminantAnalysis())  # closed form: fast
    acc = cross_val_score(
        lda, _colour_features(multi["path"]), multi["label"], scoring="balanced_accuracy", cv=cv
    )
    assert acc.mean() > 0.5, acc  # chance: 0.125
