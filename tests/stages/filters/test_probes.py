"""The probes' metric keys, verdict tags, terminal lines and the mask check."""

from __future__ import annotations

import pandas as pd

from isic_tracking.stages.filters.probes import (
    ablation_lines,
    ablation_metrics,
    ablation_tags,
    has_masks,
)

VERDICTS = pd.DataFrame(
    {
        "kind": ["class", "class", "class", "artifact"],
        "name": ["malignant", "malignant", "benign", "ruler"],
        "layer": ["features.4", "features.8", "features.8", "features.8"],
        "passed": [False, True, True, True],
        "drop_zero": [0.1, 2.0, 1.5, 0.7],
        "random_q95_zero": [0.3, 0.5, 0.4, 0.2],
        "drop_mean": [0.0, 1.0, 0.8, 0.5],
        "random_q95_mean": [0.1, 0.2, 0.3, 0.1],
    }
)


def test_metrics_are_keyed_by_target_layer_and_measure():
    m = ablation_metrics(VERDICTS)
    assert m["ablation_drop_zero_features.8/malignant"] == 2.0
    assert m["ablation_passed_features.4/malignant"] == 0.0
    assert m["ablation_artifact_random_q95_mean_features.8/ruler"] == 0.1
    assert len(m) == 4 * 5 and all(k.count("/") == 1 for k in m)


def test_a_tag_per_target_names_the_layers_that_failed():
    tags = ablation_tags(VERDICTS)
    assert tags == {
        "isic.ablation.malignant": "fail (features.4)",
        "isic.ablation.benign": "pass",
        "isic.ablation.artifact.ruler": "pass",
    }


def test_one_line_per_target_with_both_variants():
    lines = ablation_lines(VERDICTS)
    assert len(lines) == 4
    assert lines[1] == (
        "ablation class 'malignant' @ features.8: logit drop zero +2.000 (random 95%: "
        "+0.500), mean +1.000 (random 95%: +0.200): pass"
    )


def test_masks_only_when_every_image_names_one():
    assert has_masks(pd.DataFrame({"mask": ["a.png", "b.png"]}))
    assert not has_masks(pd.DataFrame({"mask": ["a.png", ""]}))
    assert not has_masks(pd.DataFrame({"mask": ["a.png", None]}))
    assert not has_masks(pd.DataFrame({"path": ["a.jpg"]}))
