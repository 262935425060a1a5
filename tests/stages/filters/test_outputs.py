"""What the filters stage reads and reports around the filter report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from isic_tracking.errors import IsicInputError
from isic_tracking.stages.filters.outputs import (
    class_names,
    group_sources,
    liveness_line,
    liveness_metrics,
    recovery_metrics,
    shortcut_check,
    union_top,
)


def test_class_names_from_the_model_or_for_a_base_from_the_manifest():
    assert class_names({"task": "binary", "classes": ["benign", "malignant"]}, pd.DataFrame()) == [
        "benign",
        "malignant",
    ]
    df = pd.DataFrame({"label_name": ["benign", "malignant"], "label": [0, 1]})
    assert class_names({"task": "imagenet"}, df) == ["benign", "malignant"]


def test_group_sources():
    cols = ["image_id", "artifact", "site"]
    assert group_sources("artifact", cols) == (["artifact"], [])
    assert group_sources("zscore, site,none,", cols) == (["zscore", "site"], [])
    sources, notes = group_sources("artifact", ["image_id"])
    assert sources == [] and "no `artifact` column" in notes[0]
    with pytest.raises(IsicInputError, match=r"groups='hat'.*columns: image_id, artifact, site"):
        group_sources("site,hat", cols)


def test_union_top_and_recovery_metrics():
    top = pd.DataFrame({"layer": ["a", "a", "b", "a"], "filter": [3, 1, 9, 3]})
    assert union_top(top, "a") == [1, 3] and union_top(top, "c") == []
    rec = pd.DataFrame(
        {
            "artifact": ["ink (blue)", "ink (blue)"],
            "layer": ["conv1", "conv5"],
            "auc": [0.6, 0.9],
            "best_auc": [0.7, 0.95],
        }
    )
    assert recovery_metrics(rec, ["conv5"]) == {
        "recovery_auc/ink _blue_": 0.9,
        "recovery_best_auc/ink _blue_": 0.95,
    }
    several = recovery_metrics(rec, ["conv1", "conv5"])
    assert several == {
        "recovery_auc_conv1/ink _blue_": 0.6,
        "recovery_auc/ink _blue_": 0.9,
        "recovery_best_auc/ink _blue_": 0.95,
        "recovery_auc_conv5/ink _blue_": 0.9,
    }
    assert all(k.count("/") == 1 for k in several)  # one level: metric / artifact


def test_liveness_metrics_have_one_level_and_the_line_names_every_layer():
    counts = {"features.0": {"live": 30, "dead": 2, "constant": 0}, "features.12": {"live": 250, "dead": 5, "constant": 1}}  # fmt: skip
    m = liveness_metrics(counts)
    assert m["dead_filters"] == 7 and m["constant_filters"] == 1
    assert m["dead_filters/features.12"] == 5 and m["constant_filters/features.0"] == 0
    assert all(k.count("/") <= 1 for k in m)
    line = liveness_line(counts)
    assert "features.0: 2 dead, 0 constant of 32" in line
    assert "features.12: 5 dead, 1 constant of 256" in line


def test_shortcut_check_passes_at_the_threshold_and_names_missing_groups():
    rec = pd.DataFrame(
        {"artifact": ["ruler", "ruler", "hair"], "layer": ["c1", "c2", "c2"],
         "filter": [4, 7, 1], "auc": [0.6, 0.93, 0.7]}
    )  # fmt: skip
    labels = np.array([0, 0, 1, 1])
    acts = np.zeros((4, 8))
    acts[:, 7] = [0.1, 0.2, 0.3, 0.4]  # malignant evidence: AUC 1 for "malignant"
    acts[:, 4] = [0.4, 0.3, 0.2, 0.1]  # benign evidence: AUC 0
    check = shortcut_check(rec, "ruler", "c2", 0.9, acts, labels, ["benign", "malignant"])
    assert (check.filter, check.auc, check.passed, check.malignant_auc) == (7, 0.93, True, 1.0)
    low = shortcut_check(rec, "ruler", "c1", 0.9, acts, labels, ["benign", "malignant"])
    assert not low.passed and low.malignant_auc == 0.0
    assert shortcut_check(rec, "ruler", "c2", 0.93, acts, labels, ["benign", "malignant"]).passed
    # 8 classes: MEL is the malignant one; no such class: NaN
    assert shortcut_check(rec, "ruler", "c2", 0.9, acts, labels, ["NV", "MEL"]).malignant_auc == 1
    assert np.isnan(shortcut_check(rec, "ruler", "c2", 0.9, acts, labels, ["a", "b"]).malignant_auc)
    with pytest.raises(IsicInputError, match="shortcut_artifact='ink'.*groups: hair, ruler"):
        shortcut_check(rec, "ink", "c2", 0.9, acts, labels, ["benign", "malignant"])
