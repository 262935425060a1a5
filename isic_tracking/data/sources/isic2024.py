"""ISIC 2024 / SLICE-3D: ``train-metadata.csv`` and the JPEGs inside ``train-image.hdf5``.

The images are not extracted: each manifest path names a member of the HDF5 file,
``<root>/train-image.hdf5::<isic_id>`` (:mod:`isic_tracking.data.image_bytes`), which the cache
decodes like a file. Columns as the Kaggle competition's data page lists them (the file has 55;
``lesion_id`` only for tagged lesions); checked against copies of that page and code reading
the file, not against the file itself.
"""

from __future__ import annotations

from pathlib import Path

from isic_tracking.data.image_bytes import member_path
from isic_tracking.data.sources.checks import (
    binary_challenge_rows,
    check_unique,
    parse_binary,
    read_csv_checked,
    require_dir,
    require_file,
)
from isic_tracking.data.sources.constants import ISIC2024_CSV, ISIC2024_HDF5, ISIC2024_HEADER
from isic_tracking.data.sources.result import SourceResult, finish, report
from isic_tracking.errors import IsicInputError


def detect(root: Path) -> bool:
    """True when ``root`` holds ``train-metadata.csv`` or ``train-image.hdf5``."""
    return (root / ISIC2024_CSV).is_file() or (root / ISIC2024_HDF5).is_file()


def hdf5_keys(path: Path) -> list[str]:
    """The top-level keys of HDF5 file ``path`` (ISIC 2024: one per ``isic_id``)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return list(f.keys())
    except OSError as e:
        raise IsicInputError(
            f"{path} cannot be read as an HDF5 file ({e}); download train-image.hdf5 again "
            "(Kaggle isic-2024-challenge)"
        ) from e


def read_isic2024(root: str | Path) -> SourceResult:
    """ISIC 2024 (SLICE-3D) training set: binary labels from ``target``, images in the HDF5.

    Columns: isic_id -> image_id, patient_id, lesion_id (when present), sex, age_approx -> age,
    anatom_site_general -> site, iddx_full kept as ``diagnosis``. Ids the HDF5 file lacks are
    reported as ``missing_in_hdf5`` (counted in ``n_missing``), keys the CSV does not list as
    ``unlisted_file``; an unreadable JPEG inside the file is reported by the cache.

    Args:
        root: the folder holding ``train-metadata.csv`` and ``train-image.hdf5``.

    Returns:
        SourceResult with source ``"isic2024"``, split ``"train"``; ``path`` is
        ``<root>/train-image.hdf5::<isic_id>``.
    """
    root = require_dir(root, "ISIC 2024")
    csv_path = require_file(root / ISIC2024_CSV, "ISIC 2024 metadata", ISIC2024_HEADER)
    h5_path = root / ISIC2024_HDF5
    if not h5_path.is_file():
        raise IsicInputError(
            f"ISIC 2024 images: {h5_path} not found; put the official {ISIC2024_HDF5} (keys = "
            f"isic_id, values = JPEG bytes; Kaggle isic-2024-challenge) beside {ISIC2024_CSV}"
        )
    df = read_csv_checked(csv_path, ISIC2024_HEADER, ISIC2024_HEADER)
    check_unique(df["isic_id"], csv_path, "isic_id")
    labels = parse_binary(df["target"], csv_path, "target")
    out = binary_challenge_rows(df, "isic_id", labels, "isic2024", "anatom_site_general")
    if "iddx_full" in df:
        out["diagnosis"] = df["iddx_full"]

    keys = set(hdf5_keys(h5_path))
    member = out["image_id"].map(lambda i: member_path(h5_path, i))
    present = out["image_id"].isin(keys)
    missing = report(out.loc[~present, "image_id"], member[~present], "missing_in_hdf5")
    unlisted_ids = sorted(keys - set(out["image_id"]))
    unlisted = report(
        unlisted_ids, [member_path(h5_path, k) for k in unlisted_ids], "unlisted_file"
    )
    return finish(
        out,
        member.where(present),
        [missing, unlisted],
        n_listed=len(df),
        n_missing=len(missing),
    )
