"""The synthetic set's concept masks: where the painters drew, written beside unchanged images."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from isic_tracking.data.sources.synthetic import read_synthetic
from isic_tracking.data.synthetic import ARTIFACTS, make_synthetic
from isic_tracking.data.synthetic.masks import (
    MASK_CONCEPTS,
    load_masks,
    pack_masks,
    unpack_masks,
    write_mask,
)
from isic_tracking.data.synthetic.painting import SKIN_TONES, render_with_masks
from isic_tracking.errors import IsicInputError

#: sha256 over the (relative path, bytes) of every JPEG of ``make_synthetic(n_images=16,
#: seed=3, image_size=40)``, computed with the painters as they were before they returned masks.
IMAGES_BEFORE_MASKS = "b0d35db9783a15ce7e233fc982115e9d624aa33164947dbea62ab63587444cbb"


def _render(artifact: str, seed: int = 5, size: int = 64):
    rng = np.random.default_rng(seed)
    return render_with_masks(rng, "MEL", size, size, SKIN_TONES[0], artifact)


@pytest.mark.parametrize("artifact", ARTIFACTS)
def test_each_artifact_mask_is_where_the_painter_changed_the_image(artifact: str):
    with_it, masks = _render(artifact)
    without, _ = _render("none")  # the same generator up to the artifact
    changed = np.abs(with_it.astype(int) - without.astype(int)).max(axis=2) > 0
    mask = masks[artifact]
    assert mask.any() and set(masks) == {"lesion", artifact}
    assert changed[mask].mean() > 0.9  # the mask's pixels were painted
    if artifact != "dark_corners":  # the vignette also darkens (less) outside its mask
        assert not (changed & ~mask).any()  # nothing outside the mask was


def test_lesion_mask_covers_the_lesion_not_the_skin():
    img, masks = _render("none")
    lesion = masks["lesion"]
    assert 0.05 < lesion.mean() < 0.9
    # the melanoma is darker than the skin around it
    assert img[lesion].mean() < img[~lesion].mean() - 40


def test_pack_unpack_round_trip_and_unknown_concepts():
    rng = np.random.default_rng(0)
    masks = {name: rng.random((6, 7)) < 0.4 for name in MASK_CONCEPTS}
    bits = unpack_masks(pack_masks(masks, (6, 7)))
    assert bits.shape == (len(MASK_CONCEPTS), 6, 7)
    for k, name in enumerate(MASK_CONCEPTS):
        assert (bits[k] == masks[name]).all()
    with pytest.raises(IsicInputError, match="unknown mask concepts"):
        pack_masks({"tattoo": masks["lesion"]}, (6, 7))


def test_load_masks_follows_the_eval_geometry_and_names_a_bad_file(tmp_path: Path):
    wide = np.zeros((30, 40), dtype=bool)
    wide[:, :4] = True  # left band: cut by the centre crop of the 4:3 image
    wide[10:20, 15:25] = True  # centre square: kept
    write_mask(tmp_path / "a.png", {"ruler": wide, "lesion": ~wide}, wide.shape)
    out = load_masks([str(tmp_path / "a.png")], 15)
    assert out.shape == (1, len(MASK_CONCEPTS), 15, 15) and out.dtype == torch.bool
    ruler = out[0, MASK_CONCEPTS.index("ruler")]
    assert ruler[6:9, 6:9].all() and not ruler[:, 0].any()
    assert (out[0, 0] == ~ruler).all()
    with pytest.raises(IsicInputError, match="missing.png"):
        load_masks([str(tmp_path / "missing.png")], 15)


def test_make_synthetic_writes_masks_and_keeps_its_images(tmp_path: Path):
    root = tmp_path / "raw"
    make_synthetic(root, n_images=16, seed=3, image_size=40)
    digest = hashlib.sha256()
    for p in sorted(root.rglob("*.jpg")):
        digest.update(p.relative_to(root).as_posix().encode())
        digest.update(p.read_bytes())
    assert digest.hexdigest() == IMAGES_BEFORE_MASKS

    manifest = read_synthetic(root, "binary").manifest
    assert (manifest["mask"] != "").all()
    for path, artifact in zip(manifest["mask"], manifest["artifact"]):
        bits = unpack_masks(np.asarray(Image.open(path)))  # the whole image, not the crop
        present = {name for name, m in zip(MASK_CONCEPTS, bits) if m.any()}
        assert present == {"lesion"} | ({artifact} - {"none"})
