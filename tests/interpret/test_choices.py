"""interpret/choices.py: the light names the CLI offers are the ones the code implements."""

from __future__ import annotations

import torch

from isic_tracking.interpret.choices import ENGINES, METRICS, POOLINGS, PRESET_NAMES
from isic_tracking.interpret.featvis.presets import PRESETS, preset
from isic_tracking.interpret.similarity import similarity


def test_preset_names_are_the_presets() -> None:
    assert tuple(PRESETS) == PRESET_NAMES
    for name in PRESET_NAMES:
        assert "param_fn" in preset(name)


def test_every_metric_is_implemented() -> None:
    a, b = torch.rand(3, 5), torch.rand(4, 5)
    for metric in METRICS:
        assert similarity(a, b, metric=metric).shape == (3, 4)


def test_engines_and_poolings_are_distinct_names() -> None:
    for names in (ENGINES, POOLINGS):
        assert len(set(names)) == len(names) > 1
