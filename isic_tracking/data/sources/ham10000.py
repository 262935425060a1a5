"""HAM10000: ``HAM10000_metadata.csv`` and two image folders; ``dx`` codes to ISIC 2019 classes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from isic_tracking.data.sources.checks import (
    apply_task,
    bad_value,
    check_unique,
    na_unknown,
    read_csv_checked,
    require_dir,
    require_file,
    to_age,
)
from isic_tracking.data.sources.constants import HAM_CSV, HAM_DX, HAM_HEADER, HAM_IMAGE_DIRS
from isic_tracking.data.sources.files import find_image_dir, match_files, scan_images
from isic_tracking.data.sources.result import SourceResult, finish


def detect(root: Path) -> bool:
    """True when ``root`` holds the HAM10000 metadata CSV."""
    return (root / HAM_CSV).is_file()


def read_ham10000(
    root: str | Path, task: str = "multiclass", malignant_classes: Sequence[str] = ("MEL",)
) -> SourceResult:
    """HAM10000: ``HAM10000_metadata.csv`` and ``HAM10000_images_part_{1,2}/``.

    ``dx`` maps akiec->AK, bcc->BCC, bkl->BKL, df->DF, mel->MEL, nv->NV, vasc->VASC;
    ``localization`` -> site; "unknown" sex/site become missing. An extra ``dataset`` column is
    ignored.

    Args:
        root: the folder with the metadata CSV and the two image folders.
        task: ``"multiclass"`` or ``"binary"``.
        malignant_classes: classes counted as malignant for the binary task.

    Returns:
        SourceResult with source ``"ham10000"``, split ``"train"``.
    """
    root = require_dir(root, "HAM10000")
    path = require_file(root / HAM_CSV, "HAM10000 metadata", HAM_HEADER)
    required = ("lesion_id", "image_id", "dx", "age", "sex", "localization")
    df = read_csv_checked(path, required, HAM_HEADER)
    check_unique(df["image_id"], path, "image_id")
    classes = df["dx"].str.lower().map(HAM_DX)
    bad = classes.isna()
    if bad.any():
        i = df.index[bad][0]
        raise bad_value(path, i, "dx", df.at[i, "dx"], f"one of {sorted(HAM_DX)}")
    out = pd.DataFrame(
        {
            "image_id": df["image_id"],
            "split": "train",
            "source": "ham10000",
            "lesion_id": df["lesion_id"],
            "sex": na_unknown(df["sex"]),
            "age": to_age(df["age"]),
            "site": na_unknown(df["localization"]),
        }
    )
    out = apply_task(out, classes, task, malignant_classes)
    files: dict[str, str] = {}
    for name in HAM_IMAGE_DIRS:
        for candidate in (name, name.lower()):
            files |= scan_images(find_image_dir(root, candidate))
    paths, missing, unlisted = match_files(
        out["image_id"], files, root / "HAM10000_images_part_[12]"
    )
    return finish(out, paths, [missing, unlisted], n_listed=len(df))
