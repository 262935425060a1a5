"""The colour check: a class-logit visualization must carry its class's planted lesion colours."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from isic_tracking.data.synthetic.lesions import _BROWN, _MEL_PALETTE
from isic_tracking.data.synthetic.painting import render_image
from isic_tracking.interpret.colour_check import (
    BINS,
    chance_p,
    class_histograms,
    colour_check,
    colour_histogram,
    distances,
    divergence,
    lesion_mask,
    rgb_to_lab,
    verdict,
)


def _natural(kind: str, n: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    imgs = [render_image(rng, kind, 64, 64) for _ in range(n)]
    return torch.tensor(np.stack(imgs)).permute(0, 3, 1, 2).float() / 255


def _palette_image(palette: np.ndarray, seed: int = 0) -> torch.Tensor:
    """A 'visualization' made of the palette's colours in random 8x8 patches."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(palette), (8, 8), generator=g)
    img = torch.tensor(palette, dtype=torch.float32)[idx].permute(2, 0, 1)
    return img.repeat_interleave(8, 1).repeat_interleave(8, 2)


@pytest.fixture(scope="module")
def hists() -> torch.Tensor:
    benign, malignant = _natural("NV", 12, 0), _natural("MEL", 12, 1)
    images = torch.cat([benign, malignant])
    labels = torch.tensor([0] * 12 + [1] * 12)
    return class_histograms([(images[:10], labels[:10]), (images[10:], labels[10:])], 2)


def test_lab_of_known_colours():
    lab = rgb_to_lab(torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    torch.testing.assert_close(lab[0], torch.tensor([100.0, 0.0, 0.0]), atol=0.5, rtol=0)
    torch.testing.assert_close(lab[1], torch.zeros(3), atol=0.5, rtol=0)
    assert lab[2, 1] > 70 and lab[2, 2] > 60  # red: a* and b* strongly positive


def test_lesion_mask_finds_the_planted_lesion_not_the_skin():
    img = torch.tensor([0.85, 0.63, 0.55])[:, None, None].repeat(1, 40, 40)
    img[:, 15:25, 10:30] = torch.tensor(_BROWN)[:, None, None]
    mask = lesion_mask(img)
    assert mask[15:25, 10:30].all() and mask.sum() == 200


def test_histogram_is_normalized_and_soft():
    h = colour_histogram(torch.rand(500, 3))
    assert h.sum().item() == pytest.approx(1.0) and (h >= 0).all()
    # two nearly equal colours: nearly the same histogram
    a = colour_histogram(torch.tensor([[0.45, 0.29, 0.19]]))
    b = colour_histogram(torch.tensor([[0.46, 0.29, 0.19]]))
    assert divergence(a, b) < 0.1


def test_class_colours_match_their_class_and_swapped_ones_fail(hists):
    benign_vis = _palette_image(np.stack([_BROWN, _BROWN * 0.85, _BROWN * 1.1]))
    malignant_vis = _palette_image(_MEL_PALETTE)
    right = colour_check(torch.stack([benign_vis, malignant_vis]), ["benign", "malignant"], hists)
    assert right["passed"].tolist() == [True, True] and verdict(right)
    assert (right["distance"] < right["nearest_other"]).all()
    swapped = colour_check(torch.stack([malignant_vis, benign_vis]), ["benign", "malignant"], hists)
    assert swapped["passed"].tolist() == [False, False] and not verdict(swapped)
    assert swapped["nearest_class"].tolist() == ["malignant", "benign"]


def test_natural_lesions_of_a_class_are_mostly_nearest_their_own_class(hists):
    """Fresh natural images (other seeds): most lesions are nearest their own class (a single
    melanoma can be mostly dark brown, so not every one)."""
    for k, kind in enumerate(["NV", "MEL"]):
        hits = 0
        for img in _natural(kind, 8, 100 + k):
            lesion = img[:, lesion_mask(img)]
            hits += int(distances(lesion[:, None, :][None], hists).argmin()) == k
        assert hits >= 6, (kind, hits)


def test_verdict_most_classes_for_more_than_two():
    assert verdict(pd.DataFrame({"passed": [True, True, False]}))
    assert not verdict(pd.DataFrame({"passed": [True, False, False, True]}))
    assert not verdict(pd.DataFrame({"passed": [True, False]}))


MULTI = ["MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC"]


@pytest.fixture(scope="module")
def multiclass_hists() -> torch.Tensor:
    images = torch.cat([_natural(kind, 6, 10 + k) for k, kind in enumerate(MULTI)])
    labels = torch.arange(len(MULTI)).repeat_interleave(6)
    return class_histograms([(images, labels)], len(MULTI))


def _lesion_picture(img: torch.Tensor) -> torch.Tensor:
    """The lesion pixels of a natural image as a ``[3, 1, P]`` picture."""
    return img[:, lesion_mask(img)][:, None, :]


def test_the_lesions_of_each_of_the_eight_classes_are_told_apart(multiclass_hists):
    """The metric on planted inputs, 8 classes: the lesion pixels of one fresh image of each
    class in place of the class pictures pass nearly every class, with a small chance p; the
    same pictures under labels shifted by one pass almost none, at a chance p near 1."""
    lesions = [_lesion_picture(_natural(kind, 1, 500 + k)[0]) for k, kind in enumerate(MULTI)]
    side = min(v.shape[-1] for v in lesions)
    vis = torch.stack([v[..., :side] for v in lesions])
    table = colour_check(vis, MULTI, multiclass_hists)
    assert table["passed"].sum() >= 7 and verdict(table), table
    assert chance_p(table, MULTI) < 0.001
    assert table.filter(like="to_").shape[1] == 8  # the distance to every class
    shifted = colour_check(vis.roll(1, 0), MULTI, multiclass_hists)
    assert shifted["passed"].sum() <= 1 and not verdict(shifted)
    assert chance_p(shifted, MULTI) > 0.3


def test_chance_p_counts_the_relabellings_that_pass_as_many():
    classes = ["a", "b", "c"]
    perfect = pd.DataFrame({"nearest_class": classes, "passed": [True] * 3})
    assert chance_p(perfect, classes) == pytest.approx(1 / 6)  # only the identity
    none = pd.DataFrame({"nearest_class": ["b", "c", "a"], "passed": [False] * 3})
    assert chance_p(none, classes) == 1.0


@pytest.mark.parametrize("stray", [0, 2, 3])  # black, blue-grey, red: melanoma's own colours
def test_a_picture_goes_to_the_class_most_of_its_colours_support(hists, stray):
    """80 % benign brown, 20 % one melanoma colour: most of its colour evidence is benign, so
    it is nearest benign. (Under KL(picture || class) it was malignant: the narrow benign
    histogram cannot explain the stray colour at all, the broad malignant one explains
    everything a little.)"""
    img = torch.tensor(_BROWN)[:, None, None].repeat(1, 40, 40)
    img[:, :8, :] = torch.tensor(_MEL_PALETTE[stray])[:, None, None]
    d = distances(img[None], hists)[0]
    assert int(d.argmin()) == 0, d
    assert 0.0 <= float(d.min()) < 0.5 < float(d.max()) <= 1.0  # 1 - support, chance 0.5


def test_a_class_without_lesion_pixels_is_never_nearest():
    h = torch.stack(
        [
            colour_histogram(torch.tensor([[0.45, 0.29, 0.19]])),
            torch.full((math.prod(BINS),), torch.nan),
        ]
    )
    d = distances(torch.tensor([0.45, 0.29, 0.19])[:, None, None].repeat(1, 4, 4)[None], h)
    assert d[0, 1] == torch.inf and d[0, 0] < 0.1
