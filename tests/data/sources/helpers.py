"""Tiny files that copy the official headers exactly, shared by the reader tests."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from isic_tracking.data.manifest import MANIFEST_COLUMNS, validate_manifest
from isic_tracking.data.sources import SourceResult

HEADER_2020 = (
    "image_name,patient_id,sex,age_approx,anatom_site_general_challenge,diagnosis,"
    "benign_malignant,target"
)
HEADER_2019_GT = "image,MEL,NV,BCC,AK,BKL,DF,VASC,SCC,UNK"
HEADER_2019_META = "image,age_approx,anatom_site_general,lesion_id,sex"
HEADER_HAM = "lesion_id,image_id,dx,dx_type,age,sex,localization"


def jpeg(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (140, 90, 70)).save(path)
    return path


def write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


ROWS_2020 = [
    "ISIC_2637011,IP_7279968,male,45.0,head/neck,unknown,benign,0",
    "ISIC_0015719,IP_3075186,female,45.0,upper extremity,unknown,benign,0",
    "ISIC_0052212,IP_2842074,female,50.0,lower extremity,nevus,benign,0",
    "ISIC_0068279,IP_6890425,female,,,melanoma,malignant,1",
    "ISIC_0074268,IP_6890425,female,55.0,upper extremity,unknown,benign,0",
]


def make_2020(root: Path, rows=ROWS_2020, images=None, duplicates=None) -> Path:
    write(root / "train.csv", [HEADER_2020, *rows])
    ids = [r.split(",")[0] for r in rows] if images is None else images
    for i in ids:
        jpeg(root / "jpeg" / "train" / f"{i}.jpg")
    if duplicates is not None:
        write(
            root / "ISIC_2020_Training_Duplicates.csv", ["image_name_1,image_name_2", *duplicates]
        )
    return root


def make_2019(root: Path, gt_rows, meta_rows=None, images=None) -> Path:
    write(root / "ISIC_2019_Training_GroundTruth.csv", [HEADER_2019_GT, *gt_rows])
    if meta_rows is not None:
        write(root / "ISIC_2019_Training_Metadata.csv", [HEADER_2019_META, *meta_rows])
    ids = [r.split(",")[0] for r in gt_rows] if images is None else images
    for i in ids:
        jpeg(root / "ISIC_2019_Training_Input" / f"{i}.jpg")
    return root


GT_2019 = [
    "ISIC_0000000,0.0,1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0",
    "ISIC_0000002_downsampled,1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0",
    "ISIC_0010491,0.0,0.0,1.0,0.0,0.0,0.0,0.0,0.0,0.0",
    "ISIC_0024329,0.0,0.0,0.0,1.0,0.0,0.0,0.0,0.0,0.0",
    "ISIC_0053456,0.0,0.0,0.0,0.0,0.0,0.0,0.0,1.0,0.0",
]
META_2019 = [
    "ISIC_0000000,55.0,anterior torso,,female",
    "ISIC_0000002_downsampled,60.0,upper extremity,,female",
    "ISIC_0010491,,posterior torso,BCN_0000031,male",
    "ISIC_0024329,75.0,lower extremity,HAM_0002954,female",
    "ISIC_0053456,70.0,head/neck,BCN_0003925,male",
]


def check_manifest(result: SourceResult, root: Path) -> pd.DataFrame:
    m = result.manifest
    assert list(m.columns[: len(MANIFEST_COLUMNS)]) == list(MANIFEST_COLUMNS)
    validate_manifest(m)
    for p in m["path"]:
        assert os.path.isabs(p) and Path(p).is_file()
        assert Path(p).resolve().is_relative_to(root.resolve())
    return m


def jpeg_bytes(seed: int = 0, size: tuple[int, int] = (30, 20)) -> bytes:
    """A small noisy RGB JPEG (``size`` = width, height), as encoded bytes."""
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def write_hdf5(path: Path, members: dict[str, bytes], as_void: set[str] = frozenset()) -> Path:
    """An HDF5 file with one scalar dataset per key holding the bytes, as ISIC 2024's
    ``train-image.hdf5``: fixed-length bytes (``|S<n>``), or opaque (``np.void``) for the keys
    in ``as_void``. (h5py refuses Python ``bytes`` with NULs: those become VLEN strings.)"""
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for key, data in members.items():
            f[key] = np.void(data) if key in as_void else np.bytes_(data)
    return path


HEADER_2024 = (
    "isic_id,target,patient_id,age_approx,sex,anatom_site_general,clin_size_long_diam_mm,"
    "image_type,tbp_tile_type,tbp_lv_A,attribution,copyright_license,lesion_id,iddx_full,iddx_1"
)
