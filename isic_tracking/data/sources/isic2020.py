"""ISIC 2020 (SIIM-ISIC) training set: binary labels from ``target``, listed duplicates dropped."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from isic_tracking.data.sources.checks import (
    binary_challenge_rows,
    check_unique,
    parse_binary,
    read_csv_checked,
    require_dir,
)
from isic_tracking.data.sources.constants import (
    ISIC2020_CSV,
    ISIC2020_DUPLICATES_CSV,
    ISIC2020_DUPLICATES_HEADER,
    ISIC2020_HEADER,
    ISIC2020_IMAGE_DIR,
    ISIC2020_LAYOUTS,
    ISIC2020_RESIZED_GLOB,
)
from isic_tracking.data.sources.files import match_files, scan_images
from isic_tracking.data.sources.result import SourceResult, finish, report
from isic_tracking.errors import IsicInputError


def _find_isic2020(root: Path) -> tuple[Path, Path]:
    for csv_name, image_dir in ISIC2020_LAYOUTS:
        if (root / csv_name).is_file() and (root / image_dir).is_dir():
            return root / csv_name, root / image_dir
    resized = sorted(p for p in root.glob(ISIC2020_RESIZED_GLOB) if (p / ISIC2020_CSV).is_file())
    if len(resized) == 1:
        return _find_isic2020(resized[0])
    if len(resized) > 1:
        raise IsicInputError(
            f"{root} holds several resized ISIC 2020 sets {[p.name for p in resized]}; "
            "point root at one of them"
        )
    if (root / ISIC2020_CSV).is_file():  # CSV without images: every row becomes missing_file
        return root / ISIC2020_CSV, root / ISIC2020_IMAGE_DIR
    raise IsicInputError(
        f"{root}: no ISIC 2020 layout found; expected {ISIC2020_CSV} with {ISIC2020_IMAGE_DIR}/ "
        f"(Kaggle), {ISIC2020_CSV} with train/ (jpeg-melanoma-512x512 re-upload) or "
        "ISIC_2020_Training_GroundTruth[_v2].csv with ISIC_2020_Training_JPEG/train/"
    )


def detect(root: Path) -> bool:
    """True when ``root`` holds one of the ISIC 2020 label CSVs or a resized re-upload."""
    csvs = {csv for csv, _ in ISIC2020_LAYOUTS}
    return any((root / c).is_file() for c in csvs) or any(root.glob(ISIC2020_RESIZED_GLOB))


def read_isic2020(root: str | Path) -> SourceResult:
    """ISIC 2020 (SIIM-ISIC) training set: binary labels from ``target``.

    Detects the layout under ``root`` (Kaggle ``train.csv`` + ``jpeg/train/``, the ISIC-site
    ``ISIC_2020_Training_GroundTruth[_v2].csv`` + ``ISIC_2020_Training_JPEG/train/``, or the
    resized re-upload ``jpeg-melanoma-*/{train.csv,train/}`` whose ``width,height`` are kept as
    ``orig_width, orig_height``). Drops every ``image_name_2`` of
    ``ISIC_2020_Training_Duplicates.csv`` when that file is in ``root``.
    Columns: patient_id -> patient_id, age_approx -> age, anatom_site_general_challenge -> site,
    diagnosis kept as an extra column.

    Args:
        root: the folder holding the CSV and image folder.

    Returns:
        SourceResult with source ``"isic2020"``, split ``"train"``.
    """
    root = require_dir(root, "ISIC 2020")
    csv_path, image_dir = _find_isic2020(root)
    required = ("image_name", "patient_id", "sex", "age_approx", "anatom_site_general_challenge")
    df = read_csv_checked(csv_path, (*required, "target"), ISIC2020_HEADER)
    check_unique(df["image_name"], csv_path, "image_name")
    labels = parse_binary(df["target"], csv_path, "target")

    out = binary_challenge_rows(
        df, "image_name", labels, "isic2020", "anatom_site_general_challenge"
    )
    if "diagnosis" in df:
        out["diagnosis"] = df["diagnosis"]
    if "width" in df and "height" in df:
        out["orig_width"] = pd.to_numeric(df["width"], errors="coerce")
        out["orig_height"] = pd.to_numeric(df["height"], errors="coerce")

    files = scan_images(image_dir)
    reports: list[pd.DataFrame] = []
    dup_ids: set[str] = set()
    dup_path = csv_path.parent / ISIC2020_DUPLICATES_CSV
    if not dup_path.is_file():
        dup_path = root / ISIC2020_DUPLICATES_CSV
    if dup_path.is_file():
        dups = read_csv_checked(dup_path, ISIC2020_DUPLICATES_HEADER, ISIC2020_DUPLICATES_HEADER)
        dup_ids = set(dups["image_name_2"].dropna())
        dropped = out["image_id"].isin(dup_ids)
        ids = out.loc[dropped, "image_id"]
        reports.append(report(ids, ids.map(files).fillna(""), "duplicate_dropped"))
        out = out[~dropped]
    paths, missing, unlisted = match_files(out["image_id"], files, image_dir, known=dup_ids)
    return finish(
        out,
        paths,
        [missing, unlisted, *reports],
        n_listed=len(df),
        n_duplicates_dropped=sum(len(r) for r in reports),
    )
