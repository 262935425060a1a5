"""What the filters stage reads and reports around the filter report."""

from __future__ import annotations

import pandas as pd
import pytest

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.filter_outputs import (
    class_names,
    group_sources,
    recovery_metrics,
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
    assert recovery_metrics(rec, ["conv1", "conv5"]) == {
        "recovery_auc/ink _blue_/conv1": 0.6,
        "recovery_auc/ink _blue_": 0.9,
        "recovery_best_auc/ink _blue_": 0.95,
        "recovery_auc/ink _blue_/conv5": 0.9,
    }
