"""The leakage check on hand-made images: an exact copy, a re-encoded copy, unrelated images,
cropped copies among look-alike lesions."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw, ImageFilter

from isic_tracking.data.leakage import (
    MAX_RMS,
    MAX_RMS_ALL_CELLS,
    PAIR_COLUMNS,
    check_planted,
    drop_duplicates_from,
    duplicate_pairs,
    image_hashes,
)
from isic_tracking.data.near_copies import registered_rms
from isic_tracking.data.synthetic.painting import SKIN_TONES, render_image
from isic_tracking.errors import IsicInputError


def _texture(seed: int, size: int = 48) -> Image.Image:
    """A smooth random picture (blurred noise): no two seeds alike."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC)


def _jpeg(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture
def images(tmp_path: Path) -> pd.DataFrame:
    """orig (train), exact byte copy (test), re-encoded + resized copy (test), two unrelated."""
    orig = _texture(1)
    files = {
        "orig": _jpeg(orig, 90),
        "byte_copy": _jpeg(orig, 90),
        "reencoded": _jpeg(orig.resize((56, 56), Image.Resampling.LANCZOS), 70),
        "other": _jpeg(_texture(2), 90),
        "other2": _jpeg(_texture(3), 90),
    }
    rows = []
    for name, data in files.items():
        (tmp_path / f"{name}.jpg").write_bytes(data)
        split = "train" if name in ("orig", "other") else "test"
        rows.append((name, str(tmp_path / f"{name}.jpg"), split, f"src-{split}"))
    return pd.DataFrame(rows, columns=["image_id", "path", "split", "source"])


def test_exact_and_near_copies_are_paired_unrelated_images_are_not(images: pd.DataFrame):
    hashes = image_hashes(images)
    assert list(hashes["image_id"]) == list(images["image_id"])
    pairs = duplicate_pairs(hashes)
    assert list(pairs.columns) == list(PAIR_COLUMNS)
    found = {frozenset((a, b)): k for a, b, k in zip(pairs["id_a"], pairs["id_b"], pairs["kind"])}
    assert found == {
        frozenset(("orig", "byte_copy")): "exact",
        frozenset(("orig", "reencoded")): "near",
        frozenset(("byte_copy", "reencoded")): "near",
    }
    exact = pairs[pairs["kind"] == "exact"].iloc[0]
    assert exact["distance"] == 0 and exact["rms"] == 0.0
    assert (exact["split_a"], exact["split_b"]) == ("train", "test")


def test_same_pixels_in_other_bytes_are_exact(tmp_path: Path):
    """A PNG and a PNG with extra metadata: different bytes, same decoded pixels."""
    img = _texture(4)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    img.save(a)
    img.save(b, pnginfo=_meta())
    assert a.read_bytes() != b.read_bytes()
    df = pd.DataFrame({"image_id": ["a", "b"], "path": [str(a), str(b)]})
    pairs = duplicate_pairs(image_hashes(df))
    assert list(pairs["kind"]) == ["exact"]


def _meta():
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "re-uploaded")
    return info


def test_read_bytes_is_used_and_errors_name_the_image(images: pd.DataFrame):
    """Any byte reader works (e.g. HDF5 members); an unreadable image is a clear error."""
    calls = []

    def reader(path: str) -> bytes:
        calls.append(path)
        return Path(path).read_bytes()

    image_hashes(images, read_bytes=reader)
    assert calls == list(images["path"])  # each image read once
    with pytest.raises(IsicInputError, match="image orig"):
        image_hashes(images, read_bytes=lambda p: b"not an image")


def test_tighter_thresholds_keep_only_exact(images: pd.DataFrame):
    pairs = duplicate_pairs(image_hashes(images), max_candidate=0.0, max_rms=0.0)
    assert set(pairs["kind"]) == {"exact"}
    with pytest.raises(IsicInputError, match="max_candidate"):
        duplicate_pairs(image_hashes(images), max_candidate=1.5)


#: (original, fractions trimmed off left, top, right, bottom, scale, JPEG quality)
CROPPED = (
    (0, (0.08, 0.0, 0.0, 0.0), 0.75, 60),
    (1, (0.0, 0.05, 0.0, 0.07), 1.25, 85),
    (2, (0.0, 0.0, 0.03, 0.0), 0.9, 70),
    (3, (0.06, 0.0, 0.0, 0.08), 1.1, 62),
)


def _cropped_copy(img: Image.Image, trim, scale: float) -> Image.Image:
    w, h = img.size
    box = (round(trim[0] * w), round(trim[1] * h), w - round(trim[2] * w), h - round(trim[3] * h))
    img = img.crop(box)
    return img.resize(
        (round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS
    )


def test_cropped_copies_among_look_alike_nevi_are_found_and_nothing_else(tmp_path: Path):
    """Twelve benign nevi of one skin tone (round brown blobs, alike), four of them copied with
    2-8 % trimmed off one or two edges, rescaled and re-encoded: exactly the four pairs."""
    rows, truth = [], set()
    for k in range(12):
        arr = render_image(np.random.default_rng([5, k]), "NV", 64, 64, SKIN_TONES[1])
        (tmp_path / f"nv{k}.jpg").write_bytes(_jpeg(Image.fromarray(arr), 90))
        rows.append((f"nv{k}", str(tmp_path / f"nv{k}.jpg"), "train", "a"))
    for k, trim, scale, quality in CROPPED:
        copy = _cropped_copy(Image.open(tmp_path / f"nv{k}.jpg"), trim, scale)
        (tmp_path / f"copy{k}.jpg").write_bytes(_jpeg(copy, quality))
        rows.append((f"copy{k}", str(tmp_path / f"copy{k}.jpg"), "test", "b"))
        truth.add(frozenset((f"nv{k}", f"copy{k}")))
    manifest = pd.DataFrame(rows, columns=["image_id", "path", "split", "source"])
    pairs = duplicate_pairs(image_hashes(manifest))
    assert {frozenset(p) for p in zip(pairs["id_a"], pairs["id_b"])} == truth
    assert set(pairs["kind"]) == {"near"} and (pairs["rms"] > 0).all()


def test_dedupe_modes(images: pd.DataFrame):
    pairs = duplicate_pairs(image_hashes(images))
    kept, dropped = drop_duplicates_from(images, pairs, "test")
    assert set(dropped["image_id"]) == {"byte_copy", "reencoded"}
    assert set(dropped["duplicate_of"]) == {"orig"}
    assert "train image orig" in dropped["reason"].iloc[0]
    assert set(kept["image_id"]) == {"orig", "other", "other2"}
    kept, dropped = drop_duplicates_from(images, pairs, "none")
    assert dropped.empty and len(kept) == len(images)
    with pytest.raises(IsicInputError, match="dedupe='x'"):
        drop_duplicates_from(images, pairs, "x")


def test_dedupe_all_keeps_one_per_group_preferring_training(images: pd.DataFrame):
    """Two test copies of each other only: 'test' keeps both, 'all' keeps one."""
    test_only = images[images["image_id"] != "orig"]
    pairs = duplicate_pairs(image_hashes(test_only))
    assert len(drop_duplicates_from(test_only, pairs, "test")[1]) == 0
    kept, dropped = drop_duplicates_from(test_only, pairs, "all")
    assert list(dropped["image_id"]) == ["reencoded"]
    assert list(dropped["duplicate_of"]) == ["byte_copy"]
    pairs = duplicate_pairs(image_hashes(images))
    kept, dropped = drop_duplicates_from(images, pairs, "all")
    assert set(dropped["image_id"]) == {"byte_copy", "reencoded"}  # the train image stays


def test_check_planted_counts_found_missed_and_false_alarms():
    pairs = pd.DataFrame({"id_a": ["a", "c"], "id_b": ["b", "x"]})
    planted = pd.DataFrame({"image_id": ["b", "d", "z"], "copy_of": ["a", "e", "y"]})
    check = check_planted(pairs, planted, ids=["a", "b", "c", "d", "e", "x"])
    assert (check.n_planted, check.n_found, check.n_missed, check.n_false_alarms) == (2, 1, 1, 1)
    assert check.metrics()["leakage_planted_found"] == 1


def test_small_lesions_on_plain_skin_are_not_paired(tmp_path: Path):
    """One small dark blob on the same plain skin, in two far-apart places: the 80 % best
    cells of the registration agree (the blob is under 20 % of the picture), all cells do not."""
    rows = []
    for name, (cx, cy) in {"left": (30, 40), "right": (95, 90)}.items():
        img = Image.new("RGB", (128, 128), (222, 170, 150))
        ImageDraw.Draw(img).ellipse((cx - 12, cy - 10, cx + 12, cy + 10), fill=(110, 70, 50))
        (tmp_path / f"{name}.jpg").write_bytes(_jpeg(img.filter(ImageFilter.GaussianBlur(2)), 90))
        rows.append((name, str(tmp_path / f"{name}.jpg")))
    hashes = image_hashes(pd.DataFrame(rows, columns=["image_id", "path"]))
    best, full = registered_rms(np.stack(list(hashes["thumb"])), np.array([0]), np.array([1]))
    assert best[0] <= MAX_RMS < MAX_RMS_ALL_CELLS < full[0]  # what the guard is for
    assert duplicate_pairs(hashes).empty
