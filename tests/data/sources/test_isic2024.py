"""ISIC 2024 / SLICE-3D reader: train-metadata.csv + the JPEGs inside train-image.hdf5."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from isic_tracking.data.cache import build_cache, fingerprint
from isic_tracking.data.image_bytes import read_image_bytes, split_member
from isic_tracking.data.manifest import read_manifest, validate_manifest
from isic_tracking.data.prepare import prepare_dataset
from isic_tracking.data.sources import detect_dataset, read_isic2024, read_source
from isic_tracking.data.sources.isic2024 import detect
from isic_tracking.errors import IsicInputError
from tests.data.sources.helpers import HEADER_2024, jpeg_bytes, write, write_hdf5

ROWS_2024 = [
    "ISIC_0015670,0,IP_1235828,60.0,male,lower extremity,3.04,TBP tile: close-up,3D: white,"
    "20.2,Memorial Sloan Kettering Cancer Center,CC-BY,,Benign,Benign",
    "ISIC_0015845,0,IP_8170065,60.0,male,head/neck,1.1,TBP tile: close-up,3D: white,31.7,"
    "Memorial Sloan Kettering Cancer Center,CC-BY,IL_6727506,Benign,Benign",
    "ISIC_0015864,1,IP_6724798,60.0,male,posterior torso,3.4,TBP tile: close-up,3D: XP,22.5,"
    "Memorial Sloan Kettering Cancer Center,CC-BY,IL_0012345,Malignant,Malignant",
    "ISIC_0015902,0,IP_4111386,65.0,female,anterior torso,3.22,TBP tile: close-up,3D: XP,14.9,"
    "ACEMID MIA,CC-0,,Benign,Benign",
    "ISIC_0024200,0,IP_8313778,,unknown,,2.73,TBP tile: close-up,3D: white,24.7,"
    "Frazer Institute,CC-BY-NC,,Benign,Benign",
]
IDS = [r.split(",")[0] for r in ROWS_2024]


def make_2024(root: Path, rows=ROWS_2024, members: dict[str, bytes] | None = None) -> Path:
    write(root / "train-metadata.csv", [HEADER_2024, *rows])
    if members is None:
        members = {i: jpeg_bytes(k) for k, i in enumerate(IDS)}
    write_hdf5(root / "train-image.hdf5", members, as_void={IDS[1]})
    return root


def test_isic2024_labels_metadata_and_member_paths(tmp_path):
    root = make_2024(tmp_path)
    result = read_isic2024(root)
    m = validate_manifest(result.manifest).set_index("image_id")
    assert list(m.index) == IDS and result.n_listed == 5 and len(result.report) == 0
    assert m["label"].tolist() == [0, 0, 1, 0, 0]
    assert m.loc["ISIC_0015864", "label_name"] == "malignant"
    assert set(m["source"]) == {"isic2024"} and set(m["split"]) == {"train"}
    assert m.loc["ISIC_0015670", "patient_id"] == "IP_1235828"
    assert m.loc["ISIC_0015845", "lesion_id"] == "IL_6727506"
    assert pd.isna(m.loc["ISIC_0015670", "lesion_id"])
    assert m.loc["ISIC_0015902", "sex"] == "female" and m.loc["ISIC_0015902", "age"] == 65.0
    assert m.loc["ISIC_0015670", "site"] == "lower extremity"
    assert pd.isna(m.loc["ISIC_0024200", "age"]) and pd.isna(m.loc["ISIC_0024200", "site"])
    assert m.loc["ISIC_0015670", "diagnosis"] == "Benign"  # iddx_full
    h5 = str((tmp_path / "train-image.hdf5").resolve())
    for image_id, path in m["path"].items():
        assert path == f"{h5}::{image_id}" and split_member(path) == (h5, image_id)
    # the bytes behind a path are the JPEG written, for both storage kinds
    assert read_image_bytes(m.loc[IDS[0], "path"]) == jpeg_bytes(0)
    assert read_image_bytes(m.loc[IDS[1], "path"]) == jpeg_bytes(1)


def test_isic2024_ids_missing_in_hdf5_and_unlisted_keys_are_reported(tmp_path):
    members = {i: jpeg_bytes(k) for k, i in enumerate(IDS) if i != "ISIC_0015902"}
    members["ISIC_9999999"] = jpeg_bytes(9)
    result = read_isic2024(make_2024(tmp_path, members=members))
    assert "ISIC_0015902" not in set(result.manifest["image_id"])
    assert len(result.manifest) == 4
    assert (result.n_missing, result.n_unlisted, result.n_listed) == (1, 1, 5)
    h5 = (tmp_path / "train-image.hdf5").resolve()
    assert result.report.values.tolist() == [
        ["ISIC_0015902", f"{h5}::ISIC_0015902", "missing_in_hdf5"],
        ["ISIC_9999999", f"{h5}::ISIC_9999999", "unlisted_file"],
    ]


def test_prepare_caches_hdf5_images_and_reports_bad_ones(tmp_path):
    """End to end: 20 listed ids (enough for the worker pool), one not in the HDF5 file, one
    truncated JPEG inside it; the cache decodes members like files and lists both."""
    ids = [f"ISIC_{i:07d}" for i in range(20)]
    rows = [f"{i},{int(k == 3)},IP_{k % 4},50.0,male,head/neck,,,,,,,,," for k, i in enumerate(ids)]
    members = {i: jpeg_bytes(k, size=(48, 32)) for k, i in enumerate(ids) if k != 5}
    whole = members[ids[7]]
    members[ids[7]] = whole[: len(whole) // 2]  # truncated inside the HDF5 file
    root = make_2024(tmp_path / "isic2024", rows=rows, members=members)
    out = tmp_path / "prepared"
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(root.rglob("*"))}
    prepared = prepare_dataset(
        "isic2024", root, out, image_size=16, workers=2, max_bad_fraction=0.1
    )
    assert (prepared.cache.n_cached, prepared.cache.n_skipped) == (18, 1)
    skipped = pd.read_csv(out / "skipped.csv").set_index("image_id")
    assert skipped.loc[ids[5], "reason"] == "missing_in_hdf5"
    assert skipped.loc[ids[7], "reason"].startswith("corrupt or truncated")
    assert skipped.loc[ids[7], "path"].endswith(f"train-image.hdf5::{ids[7]}")
    manifest = read_manifest(out / "manifest.csv").set_index("image_id")
    assert len(manifest) == 18 and ids[5] not in manifest.index and ids[7] not in manifest.index
    assert manifest.loc[ids[3], "label"] == 1 and manifest.loc[ids[3], "patient_id"] == "IP_3"
    with Image.open(manifest.loc[ids[0], "path"]) as im:
        assert im.format == "JPEG" and im.size == (24, 16)  # short side 16, 48x32 source
    assert (manifest.loc[ids[0], "width"], manifest.loc[ids[0], "height"]) == (48, 32)
    assert manifest.loc[ids[0], "orig_path"].endswith(f"train-image.hdf5::{ids[0]}")
    # decoded exactly as the same JPEG stored as a file
    assert manifest.loc[ids[0], "fingerprint"] == fingerprint(members[ids[0]], 16)
    plain = tmp_path / "plain" / f"{ids[0]}.jpg"
    plain.parent.mkdir()
    plain.write_bytes(members[ids[0]])
    as_file = manifest.reset_index().iloc[[0]].assign(path=str(plain))
    cached_file = build_cache(as_file, tmp_path / "plain-cache", image_size=16, workers=1)
    member_jpeg = Path(manifest.loc[ids[0], "path"]).read_bytes()
    assert Path(cached_file.manifest.loc[0, "path"]).read_bytes() == member_jpeg
    again = prepare_dataset("isic2024", root, out, image_size=16, workers=2, max_bad_fraction=0.1)
    assert (again.cache.n_cached, again.cache.n_reused) == (0, 18)  # members fingerprinted
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(root.rglob("*"))} == before


def test_isic2024_errors_name_the_file_and_what_to_do(tmp_path):
    write(tmp_path / "a" / "train-metadata.csv", [HEADER_2024, *ROWS_2024])
    with pytest.raises(IsicInputError, match=r"train-image\.hdf5 not found.*isic_id"):
        read_isic2024(tmp_path / "a")
    write_hdf5(tmp_path / "b" / "train-image.hdf5", {"ISIC_0015670": jpeg_bytes()})
    with pytest.raises(IsicInputError, match=r"train-metadata\.csv not found.*isic_id,target"):
        read_isic2024(tmp_path / "b")
    bad = [ROWS_2024[0], ROWS_2024[1].replace(",0,IP_8170065", ",benign,IP_8170065")]
    make_2024(tmp_path / "c", rows=bad)
    with pytest.raises(IsicInputError, match=r"line 3, column 'target': unknown value 'benign'"):
        read_isic2024(tmp_path / "c")
    root = make_2024(tmp_path / "d")
    (root / "train-image.hdf5").write_bytes(b"not an HDF5 file")
    with pytest.raises(IsicInputError, match=r"cannot be read as an HDF5 file"):
        read_isic2024(root)
    with pytest.raises(IsicInputError, match=r"supports task\(s\) \['binary'\]"):
        read_source("isic2024", make_2024(tmp_path / "e"), task="multiclass")


def test_detect_isic2024(tmp_path):
    root = make_2024(tmp_path / "full")
    assert detect(root) and detect_dataset(root) == "isic2024"
    write_hdf5(tmp_path / "only-h5" / "train-image.hdf5", {"ISIC_1": jpeg_bytes()})
    assert detect(tmp_path / "only-h5")
    (tmp_path / "other").mkdir()
    write(tmp_path / "other" / "train.csv", ["image_name"])
    assert not detect(tmp_path / "other")
