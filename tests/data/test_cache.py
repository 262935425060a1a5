from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from PIL.JpegImagePlugin import JpegImageFile

from isic_tracking.data.cache import build_cache, decode_resized, fingerprint, to_rgb
from isic_tracking.data.image_bytes import close_hdf5_files, member_path
from isic_tracking.data.manifest import normalize_manifest, read_manifest
from isic_tracking.errors import IsicInputError
from tests.data.sources.helpers import write_hdf5


def manifest_of(paths: list[Path]) -> pd.DataFrame:
    """A binary manifest over ``paths`` (ids = file stems, labels alternating)."""
    return normalize_manifest(
        pd.DataFrame(
            {
                "image_id": [p.stem for p in paths],
                "path": [str(p) for p in paths],
                "label": [i % 2 for i in range(len(paths))],
                "label_name": [("benign", "malignant")[i % 2] for i in range(len(paths))],
                "source": "test",
            }
        )
    )


def noisy_rgb(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def write_images(folder: Path, n: int, size=(48, 32)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"ISIC_{i:07d}.jpg"
        noisy_rgb(*size, seed=i).save(p, quality=90)
        paths.append(p)
    return paths


def cached_rgb(result, image_id: str) -> np.ndarray:
    row = result.manifest.set_index("image_id").loc[image_id]
    with Image.open(row["path"]) as im:
        assert im.mode == "RGB"
        return np.asarray(im).astype(int)


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_cache_resizes_short_side_and_writes_manifest(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    wide, tall = src / "wide.jpg", src / "tall.png"
    noisy_rgb(96, 48).save(wide)
    noisy_rgb(30, 60).save(tall)  # smaller than the cache size: upscaled
    out = tmp_path / "cache"
    res = build_cache(manifest_of([wide, tall]), out, image_size=32, workers=1)
    assert (res.n_cached, res.n_reused, res.n_skipped) == (2, 0, 0)
    m = res.manifest.set_index("image_id")
    assert (m.loc["wide", "width"], m.loc["wide", "height"]) == (96, 48)
    assert (m.loc["tall", "width"], m.loc["tall", "height"]) == (30, 60)
    with Image.open(m.loc["wide", "path"]) as im:
        assert im.size == (64, 32) and im.format == "JPEG"
    with Image.open(m.loc["tall", "path"]) as im:
        assert im.size == (32, 64)
    assert Path(m.loc["wide", "path"]).parent == out / "images"
    assert m.loc["wide", "orig_path"] == str(wide)
    assert m.loc["wide", "fingerprint"] == fingerprint(wide.read_bytes(), 32)
    # manifest.csv: relative paths on disk, absolute again when read
    raw = pd.read_csv(out / "manifest.csv")
    assert not any(os.path.isabs(p) for p in raw["path"])
    back = read_manifest(out / "manifest.csv").set_index("image_id")
    assert back.loc["tall", "path"] == m.loc["tall", "path"]
    assert list(pd.read_csv(out / "skipped.csv").columns) == ["image_id", "path", "reason"]


def test_jpeg_decodes_with_draft_scaling(tmp_path, monkeypatch):
    path = tmp_path / "big.jpg"
    noisy_rgb(800, 600).save(path, quality=80)
    decoded_sizes = []
    original = JpegImageFile.draft

    def spy(self, mode, size):
        result = original(self, mode, size)
        decoded_sizes.append(self.size)
        return result

    monkeypatch.setattr(JpegImageFile, "draft", spy)
    img, orig = decode_resized(path.read_bytes(), 64)
    assert orig == (800, 600)
    assert decoded_sizes == [(100, 75)]  # libjpeg decoded at 1/8 scale, still >= 64
    assert img.size == (85, 64)


def _exif_rotated(path: Path) -> None:
    """A 40x20 image, left red / right blue, whose EXIF says: rotate 90 deg clockwise."""
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = (255, 0, 0)
    arr[:, 20:] = (0, 0, 255)
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6
    img.save(path, exif=exif, quality=95)


def _gray16(path: Path, mode: str) -> None:
    arr = np.full((32, 32), 65535, dtype=np.uint16)
    arr[:, :16] = 32768
    if mode == "I":
        Image.fromarray(arr.astype(np.int32), mode="I").save(path)
    else:
        Image.fromarray(arr).save(path)  # I;16


def _rgba(path: Path) -> None:
    arr = np.zeros((32, 32, 4), np.uint8)
    arr[:, :16] = (200, 30, 30, 255)  # opaque red
    arr[:, 16:] = (0, 0, 0, 0)  # transparent: white
    Image.fromarray(arr, mode="RGBA").save(path)


def _la(path: Path) -> None:
    arr = np.zeros((32, 32, 2), np.uint8)
    arr[:, :16] = (60, 255)
    arr[:, 16:] = (0, 0)
    Image.fromarray(arr, mode="LA").save(path)


def _palette(path: Path, transparent: bool = False) -> None:
    img = Image.new("P", (32, 32), 0)
    img.putpalette([30, 200, 30] + [0, 0, 0] * 255)  # index 0 = green
    img.paste(1, (16, 0, 32, 32))
    if transparent:
        img.save(path, transparency=1)
    else:
        img.save(path)


# name -> (writer, file name, expected RGB of the left half, of the right half)
MODES = {
    "L": (lambda p: Image.new("L", (32, 32), 100).save(p), "g.jpg", (100,) * 3, (100,) * 3),
    "LA": (_la, "la.png", (60,) * 3, (255,) * 3),
    "RGBA": (_rgba, "rgba.png", (200, 30, 30), (255,) * 3),
    "CMYK": (
        lambda p: Image.new("CMYK", (32, 32), (0, 255, 255, 0)).save(p),
        "c.jpg",
        (255, 0, 0),
        (255, 0, 0),
    ),
    "P": (_palette, "p.png", (30, 200, 30), (0, 0, 0)),
    "P+transparency": (lambda p: _palette(p, True), "pt.png", (30, 200, 30), (255,) * 3),
    "I;16": (lambda p: _gray16(p, "I;16"), "g16.png", (128,) * 3, (255,) * 3),
    "I": (lambda p: _gray16(p, "I"), "gi.tif", (128,) * 3, (255,) * 3),
}


@pytest.mark.parametrize("name", list(MODES))
def test_image_modes_become_correct_rgb(tmp_path, name):
    writer, fname, left, right = MODES[name]
    path = tmp_path / "src" / fname
    path.parent.mkdir()
    writer(path)
    res = build_cache(manifest_of([path]), tmp_path / "out", image_size=32, workers=1)
    arr = cached_rgb(res, path.stem)
    assert arr.shape == (32, 32, 3)
    # centre of each half; JPEG re-encoding allows a few levels of error
    assert np.abs(arr[8:24, 4:12].mean(axis=(0, 1)) - left).max() <= 4, arr[16, 8]
    assert np.abs(arr[8:24, 20:28].mean(axis=(0, 1)) - right).max() <= 4, arr[16, 24]


def test_exif_rotation_is_applied(tmp_path):
    path = tmp_path / "src" / "rot.jpg"
    path.parent.mkdir()
    _exif_rotated(path)
    res = build_cache(manifest_of([path]), tmp_path / "out", image_size=20, workers=1)
    arr = cached_rgb(res, "rot")
    assert arr.shape == (40, 20, 3)  # portrait after rotation
    assert arr[5, 10, 0] > 200 and arr[5, 10, 2] < 50  # red on top
    assert arr[35, 10, 2] > 200 and arr[35, 10, 0] < 50  # blue at the bottom


def test_to_rgb_scales_16bit_without_clipping():
    img = Image.fromarray(np.array([[0, 257, 32896, 65535]], dtype=np.uint16))
    assert np.asarray(to_rgb(img))[0, :, 0].tolist() == [0, 1, 128, 255]


def test_bad_files_are_skipped_with_reasons(tmp_path):
    src = tmp_path / "src"
    good = write_images(src, 3)
    corrupt = src / "corrupt.jpg"
    corrupt.write_bytes(os.urandom(2000))
    truncated = src / "truncated.jpg"
    data = good[0].read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    empty = src / "empty.jpg"
    empty.write_bytes(b"")
    missing = src / "missing.jpg"
    folder = src / "folder.jpg"
    folder.mkdir()
    bad = [corrupt, truncated, empty, missing, folder]
    out = tmp_path / "out"
    res = build_cache(manifest_of(good + bad), out, image_size=16, max_bad_fraction=1.0, workers=1)
    assert res.n_skipped == 5 and res.n_cached == 3
    assert set(res.manifest["image_id"]) == {p.stem for p in good}
    skipped = pd.read_csv(out / "skipped.csv").set_index("image_id")
    reasons = skipped["reason"].to_dict()
    assert set(reasons) == {p.stem for p in bad}
    assert reasons["empty"].startswith("empty")
    assert reasons["missing"].startswith("missing")
    assert reasons["folder"].startswith("unreadable")
    assert reasons["truncated"].startswith("corrupt or truncated")
    assert reasons["corrupt"].startswith("not an image")
    assert skipped.loc["missing", "path"] == str(missing)
    assert len(read_manifest(out / "manifest.csv")) == 3


def test_too_many_bad_files_raise(tmp_path):
    src = tmp_path / "src"
    good = write_images(src, 3)
    (src / "bad.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    with pytest.raises(IsicInputError, match=r"skipped\.csv.*max_bad_fraction") as err:
        build_cache(manifest_of([*good, src / "bad.jpg"]), out, image_size=16, workers=1)
    assert "1 of 4" in str(err.value)
    assert len(pd.read_csv(out / "skipped.csv")) == 1
    assert not (out / "manifest.csv").exists()  # no half-usable manifest
    res = build_cache(
        manifest_of([*good, src / "bad.jpg"]), out, image_size=16, max_bad_fraction=0.3, workers=1
    )
    assert res.n_skipped == 1 and len(res.manifest) == 3


def test_rerun_reuses_unchanged_and_redoes_changed(tmp_path):
    src = tmp_path / "src"
    paths = write_images(src, 4)
    out = tmp_path / "out"
    first = build_cache(manifest_of(paths), out, image_size=16, workers=1)
    assert (first.n_cached, first.n_reused) == (4, 0)
    cached = Path(first.manifest["path"][1])
    stamp = cached.stat().st_mtime_ns

    again = build_cache(manifest_of(paths), out, image_size=16, workers=1)
    assert (again.n_cached, again.n_reused) == (0, 4)
    assert cached.stat().st_mtime_ns == stamp  # not rewritten
    pd.testing.assert_frame_equal(again.manifest, first.manifest)

    os.utime(paths[1], ns=(1, 1))  # touched, same content: fingerprint says reuse
    noisy_rgb(48, 32, seed=99).save(paths[2])  # new content
    third = build_cache(manifest_of(paths), out, image_size=16, workers=1)
    assert (third.n_cached, third.n_reused) == (1, 3)
    assert cached.stat().st_mtime_ns == stamp
    assert third.manifest["fingerprint"][2] != first.manifest["fingerprint"][2]

    Path(first.manifest["path"][0]).unlink()  # cached file lost: rebuilt
    assert build_cache(manifest_of(paths), out, image_size=16, workers=1).n_cached == 1

    resized = build_cache(manifest_of(paths), out, image_size=24, workers=1)
    assert (resized.n_cached, resized.n_reused) == (4, 0)
    with Image.open(resized.manifest["path"][0]) as im:
        assert min(im.size) == 24


def test_source_folder_is_never_modified(tmp_path):
    src = tmp_path / "src"
    paths = write_images(src, 3)
    (src / "bad.jpg").write_bytes(b"garbage")
    before = snapshot(src)
    build_cache(manifest_of([*paths, src / "bad.jpg"]), tmp_path / "out", 16, 1.0, workers=1)
    assert snapshot(src) == before
    with pytest.raises(IsicInputError, match="outside the data set"):
        build_cache(manifest_of(paths), src, image_size=16, workers=1)
    with pytest.raises(IsicInputError, match="outside the data set"):
        build_cache(manifest_of(paths), tmp_path, image_size=16, workers=1)
    assert snapshot(src) == before


def test_parallel_gives_the_same_cache_as_serial(tmp_path):
    paths = write_images(tmp_path / "src", 20)  # above the in-process threshold
    serial = build_cache(manifest_of(paths), tmp_path / "a", image_size=16, workers=1)
    parallel = build_cache(manifest_of(paths), tmp_path / "b", image_size=16, workers=2)
    assert parallel.n_cached == 20
    for a, b in zip(serial.manifest["path"], parallel.manifest["path"]):
        assert Path(a).read_bytes() == Path(b).read_bytes()
    pd.testing.assert_frame_equal(
        serial.manifest.drop(columns="path"), parallel.manifest.drop(columns="path")
    )


def test_odd_image_ids_get_safe_distinct_file_names(tmp_path):
    src = tmp_path / "src"
    paths = write_images(src, 2)
    df = manifest_of(paths)
    df["image_id"] = ["a/b", "a_b"]  # would collide after naive sanitizing
    res = build_cache(df, tmp_path / "out", image_size=16, workers=1)
    files = [Path(p) for p in res.manifest["path"]]
    assert len(set(files)) == 2 and all(f.parent == tmp_path / "out" / "images" for f in files)


def test_hdf5_members_are_cached_like_files(tmp_path):
    """``file.hdf5::key`` paths: decoded as the same JPEG file would be, a key the file lacks
    and a truncated member skipped with reasons, re-runs reuse members (also after a touch)."""
    members = {f"m{i}": noisy_rgb(48, 32, seed=i) for i in range(3)}
    encoded = {}
    for key, img in members.items():
        path = tmp_path / "plain" / f"{key}.jpg"
        path.parent.mkdir(exist_ok=True)
        img.save(path, quality=90)
        encoded[key] = path.read_bytes()
    encoded["truncated"] = encoded["m0"][: len(encoded["m0"]) // 2]
    h5 = write_hdf5(tmp_path / "src" / "images.hdf5", encoded, as_void={"m1"})
    keys = [*members, "truncated", "absent"]
    manifest = manifest_of([Path(member_path(h5, k)) for k in keys]).assign(image_id=keys)
    out = tmp_path / "out"
    res = build_cache(manifest, out, image_size=16, max_bad_fraction=1.0, workers=1)
    assert (res.n_cached, res.n_skipped) == (3, 2)
    reasons = res.skipped.set_index("image_id")["reason"]
    assert reasons["absent"] == f"missing: absent is not in {h5}"
    assert reasons["truncated"].startswith("corrupt or truncated")
    plain = build_cache(
        manifest_of(sorted((tmp_path / "plain").glob("*.jpg"))), tmp_path / "plain-out", 16
    )
    for key in members:
        assert np.array_equal(cached_rgb(res, key), cached_rgb(plain, key))
    assert res.manifest.set_index("image_id").loc["m1", "orig_path"] == member_path(h5, "m1")

    again = build_cache(manifest, out, image_size=16, max_bad_fraction=1.0, workers=1)
    assert (again.n_cached, again.n_reused) == (0, 3)
    os.utime(h5, ns=(1, 1))  # the HDF5 file touched, members unchanged: fingerprints match
    touched = build_cache(manifest, out, image_size=16, max_bad_fraction=1.0, workers=1)
    assert (touched.n_cached, touched.n_reused) == (0, 3)
    close_hdf5_files()  # before rewriting the file this process holds open
    encoded["m2"] = encoded["m0"]
    write_hdf5(h5, encoded, as_void={"m1"})
    changed = build_cache(manifest, out, image_size=16, max_bad_fraction=1.0, workers=1)
    assert (changed.n_cached, changed.n_reused) == (1, 2)
    assert np.array_equal(cached_rgb(changed, "m2"), cached_rgb(plain, "m0"))
    close_hdf5_files()
