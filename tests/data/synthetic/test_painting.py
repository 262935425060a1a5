"""One painted image: its own generator decides every pixel; lesion and artifact change it."""

from __future__ import annotations

import numpy as np
import pytest

from isic_tracking.data.manifest import MULTICLASS_CLASSES
from isic_tracking.data.synthetic import ARTIFACTS, render_image
from isic_tracking.data.synthetic.painting import SKIN_TONES


def _render(seed: int, kind: str = "NV", artifact: str = "none", h: int = 48, w: int = 64):
    return render_image(np.random.default_rng(seed), kind, h, w, SKIN_TONES[0], artifact)


@pytest.mark.parametrize("kind", MULTICLASS_CLASSES)
def test_same_generator_same_pixels_for_every_class(kind):
    img = _render(5, kind)
    assert img.dtype == np.uint8 and img.shape == (48, 64, 3)
    np.testing.assert_array_equal(img, _render(5, kind))
    assert not np.array_equal(img, _render(6, kind))


def test_lesion_is_darker_than_the_skin_around_it():
    img = _render(0, "NV").astype(float)
    centre, corner = img[18:30, 26:38].mean(), img[:6, :6].mean()
    assert centre < corner - 40, (centre, corner)


@pytest.mark.parametrize("artifact", ARTIFACTS)
def test_each_artifact_changes_the_image(artifact):
    plain, marked = _render(1, "MEL").astype(int), _render(1, "MEL", artifact).astype(int)
    assert np.abs(marked - plain).mean() > 0.5, artifact


def test_tone_drawn_from_the_palette_when_not_given():
    img = render_image(np.random.default_rng(2), "NV", 32, 32)
    corner = img[:4, :4].reshape(-1, 3).mean(0) / 255
    assert np.abs(SKIN_TONES - corner).sum(1).min() < 0.12
