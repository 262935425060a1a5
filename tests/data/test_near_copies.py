"""Near-copy matching on thumbnails: descriptors, the all-pairs candidate search (against
brute force) and the registration (a cropped copy aligns, a look-alike does not)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from isic_tracking.data.near_copies import (
    THUMB,
    candidate_pairs,
    descriptors,
    registered_rms,
)
from isic_tracking.data.synthetic.painting import SKIN_TONES, render_image


def _thumb(img: Image.Image) -> np.ndarray:
    return np.asarray(img.resize((THUMB, THUMB), Image.Resampling.BOX), dtype=np.uint8)


def _nevus(seed: int, size: int = 96) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(render_image(rng, "NV", size, size, SKIN_TONES[0]))


def test_candidate_pairs_equal_brute_force_distances():
    rng = np.random.default_rng(0)
    desc = rng.random((300, 48), dtype=np.float32) * 0.2
    chunks = list(candidate_pairs(desc, max_distance=0.075, chunk=64, per_image=300))
    i, j, d = (np.concatenate([c[k] for c in chunks]) for k in range(3))
    full = np.sqrt(((desc[:, None] - desc[None]) ** 2).mean(axis=2))
    want_i, want_j = np.nonzero(np.triu(full <= 0.075, k=1))
    assert len(want_i) > 10  # the threshold keeps some pairs, not all
    assert sorted(zip(i.tolist(), j.tolist())) == sorted(zip(want_i.tolist(), want_j.tolist()))
    np.testing.assert_allclose(d, full[i, j], atol=1e-5)
    assert (i < j).all()


def test_candidates_per_image_are_its_nearest_few_whatever_the_crowd():
    """Look-alikes all within the loose distance of each other: without a cap 600 images give
    179,700 candidates to register; with it each image keeps its nearest later ones."""
    rng = np.random.default_rng(1)
    desc = 0.3 + rng.random((600, 48), dtype=np.float32) * 0.05  # one crowd of look-alikes
    chunks = list(candidate_pairs(desc, max_distance=0.08, chunk=128, per_image=5))
    i, j, d = (np.concatenate([c[k] for c in chunks]) for k in range(3))
    assert len(i) == sum(min(5, 599 - a) for a in range(600))
    full = np.sqrt(((desc[:, None] - desc[None]) ** 2).mean(axis=2))
    for a in (0, 17, 590):  # the kept ones are the nearest later images
        later = np.arange(a + 1, 600)
        want = set(later[np.argsort(full[a, later])[:5]].tolist())
        assert set(j[i == a].tolist()) == want
    np.testing.assert_allclose(d, full[i, j], atol=1e-5)


def test_descriptor_of_a_cropped_copy_stays_closer_than_a_look_alike():
    orig = _nevus(1)
    copy = orig.crop((6, 0, 96, 92)).resize((80, 77), Image.Resampling.LANCZOS)
    desc = descriptors(np.stack([_thumb(orig), _thumb(copy), _thumb(_nevus(2))]))
    assert desc.shape == (3, 48) and desc.min() >= 0 and desc.max() <= 1
    copy_dist = np.sqrt(((desc[0] - desc[1]) ** 2).mean())
    other_dist = np.sqrt(((desc[0] - desc[2]) ** 2).mean())
    assert copy_dist < other_dist


def test_registration_aligns_crops_in_both_directions_and_not_look_alikes():
    """A copy with 7 % off the left and 5 % off the bottom, rescaled: the registered RMS is
    near the identity's 0, far under that of other nevi of the same class; the order of the
    pair does not matter."""
    orig = _nevus(3)
    copy = orig.crop((7, 0, 96, 91)).resize((110, 112), Image.Resampling.LANCZOS)
    others = [_nevus(s) for s in range(10, 16)]
    thumbs = np.stack([_thumb(orig), _thumb(copy), *map(_thumb, others)])
    plain = np.sqrt(((thumbs[0] / 255.0 - thumbs[1] / 255.0) ** 2).mean())
    i = np.array([0, 1, 0] + [0] * len(others))
    j = np.array([1, 0, 0] + list(range(2, 2 + len(others))))
    rms, _ = registered_rms(thumbs, i, j)
    assert rms[0] == rms[1] and rms[2] < 1e-6
    assert rms[0] < plain / 2  # the alignment, not the thumbnails alone
    assert rms[0] < 0.01 < 0.02 < rms[3:].min()


def test_give_up_skips_refining_only_pairs_far_over_it():
    """Pairs whose coarse score is over ``give_up`` keep it (still over); the others get
    exactly the fully refined score."""
    orig = _nevus(4)
    copies = [
        orig.crop((0, 5, 90, 96)).resize((100, 105), Image.Resampling.LANCZOS),
        orig.crop((4, 0, 96, 96)).resize((70, 73), Image.Resampling.LANCZOS),
    ]
    thumbs = np.stack(
        [_thumb(orig), *map(_thumb, copies), *(_thumb(_nevus(s)) for s in range(20, 28))]
    )
    i, j = np.zeros(len(thumbs) - 1, dtype=int), np.arange(1, len(thumbs))
    full, _ = registered_rms(thumbs, i, j)
    pruned, _ = registered_rms(thumbs, i, j, give_up=0.03)
    refined = pruned <= 0.03
    assert refined[:2].all() and not refined.all()  # the copies refined, some strangers not
    np.testing.assert_array_equal(pruned[refined], full[refined])
    assert (full[~refined] > 0.015).all()  # none of them a match had it been refined
