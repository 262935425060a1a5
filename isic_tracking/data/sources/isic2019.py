"""ISIC 2019 training set: one-hot ground truth, optional metadata, ``_downsampled`` ids."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from isic_tracking.data.manifest import MULTICLASS_CLASSES
from isic_tracking.data.sources.checks import (
    apply_task,
    bad_value,
    check_unique,
    line_number,
    read_csv_checked,
    require_dir,
    require_file,
    to_age,
)
from isic_tracking.data.sources.constants import (
    DOWNSAMPLED_SUFFIX,
    ISIC2019_GT_CSV,
    ISIC2019_GT_HEADER,
    ISIC2019_IMAGE_DIR,
    ISIC2019_META_CSV,
    ISIC2019_META_HEADER,
)
from isic_tracking.data.sources.files import find_image_dir, match_files, scan_images
from isic_tracking.data.sources.result import SourceResult, finish
from isic_tracking.errors import IsicInputError


def detect(root: Path) -> bool:
    """True when ``root`` holds the ISIC 2019 ground-truth CSV."""
    return (root / ISIC2019_GT_CSV).is_file()


def _strip_downsampled(ids: pd.Series) -> pd.Series:
    """The image ids without the ``_downsampled`` suffix some file names carry."""
    return ids.str.removesuffix(DOWNSAMPLED_SUFFIX)


def _one_hot_classes(df: pd.DataFrame, path: Path) -> pd.Series:
    """The class name of each one-hot row; a bad value or row is an error naming the line."""
    cols = [*MULTICLASS_CLASSES, "UNK"]
    values = np.empty((len(df), len(cols)), dtype=np.float64)
    for j, col in enumerate(cols):
        v = pd.to_numeric(df[col], errors="coerce")
        bad = ~v.isin([0.0, 1.0])
        if bad.any():
            i = df.index[bad.to_numpy()][0]
            raise bad_value(path, i, col, df.at[i, col], "1.0 or 0.0 (one-hot)")
        values[:, j] = v.to_numpy()
    unk = values[:, -1] == 1.0
    if unk.any():
        i = int(np.flatnonzero(unk)[0])
        raise IsicInputError(
            f"{path}, line {line_number(df.index[i])} ({df['image'].iloc[i]}): "
            "column 'UNK' is set; "
            f"only the 8 training classes {list(MULTICLASS_CLASSES)} are supported, drop the row"
        )
    ones = values[:, :-1].sum(axis=1)
    bad_rows = np.flatnonzero(ones != 1.0)
    if len(bad_rows):
        i = int(bad_rows[0])
        set_cols = [c for c, v in zip(MULTICLASS_CLASSES, values[i, :-1]) if v == 1.0]
        raise IsicInputError(
            f"{path}, line {line_number(df.index[i])} ({df['image'].iloc[i]}): "
            f"{len(set_cols)} classes set {set_cols}; each row needs exactly one 1.0 among "
            f"{list(MULTICLASS_CLASSES)}"
            + (f" ({len(bad_rows)} such rows)" if len(bad_rows) > 1 else "")
        )
    return pd.Series(
        np.asarray(MULTICLASS_CLASSES)[values[:, :-1].argmax(axis=1)], index=df.index, dtype="str"
    )


def read_isic2019(
    root: str | Path, task: str = "multiclass", malignant_classes: Sequence[str] = ("MEL",)
) -> SourceResult:
    """ISIC 2019 training set: one-hot ground truth, optional metadata, images.

    Ids ending in ``_downsampled`` are stripped (``image_id``) before joining the metadata;
    ``path`` keeps the real file name. ``lesion_id`` may be empty.

    Args:
        root: folder with ``ISIC_2019_Training_GroundTruth.csv``, ``..._Metadata.csv`` (optional)
            and ``ISIC_2019_Training_Input/``.
        task: ``"multiclass"`` (8 classes, MULTICLASS_CLASSES order) or ``"binary"``.
        malignant_classes: the classes that count as malignant for ``task="binary"``.

    Returns:
        SourceResult with source ``"isic2019"``, split ``"train"``.
    """
    root = require_dir(root, "ISIC 2019")
    gt_path = require_file(root / ISIC2019_GT_CSV, "ISIC 2019 ground truth", ISIC2019_GT_HEADER)
    gt = read_csv_checked(gt_path, ISIC2019_GT_HEADER, ISIC2019_GT_HEADER)
    check_unique(gt["image"], gt_path, "image")
    image_id = _strip_downsampled(gt["image"])
    check_unique(image_id, gt_path, f"image (after removing {DOWNSAMPLED_SUFFIX!r})")
    classes = _one_hot_classes(gt, gt_path)

    out = pd.DataFrame({"image_id": image_id, "split": "train", "source": "isic2019"})
    out = apply_task(out, classes, task, malignant_classes)

    meta_path = root / ISIC2019_META_CSV
    if meta_path.is_file():
        meta = read_csv_checked(meta_path, ISIC2019_META_HEADER, ISIC2019_META_HEADER)
        check_unique(meta["image"], meta_path, "image")
        meta_id = _strip_downsampled(meta["image"])
        check_unique(meta_id, meta_path, f"image (after removing {DOWNSAMPLED_SUFFIX!r})")
        meta = pd.DataFrame(
            {
                "lesion_id": meta["lesion_id"].to_numpy(),
                "sex": meta["sex"].to_numpy(),
                "age": to_age(meta["age_approx"]).to_numpy(),
                "site": meta["anatom_site_general"].to_numpy(),
            },
            index=pd.Index(meta_id.to_numpy(), dtype="str"),
        )
        out = out.join(meta, on="image_id")

    image_dir = find_image_dir(root, ISIC2019_IMAGE_DIR)
    files = scan_images(image_dir)
    # The file is named like the CSV id; fall back to the stripped id (a renamed copy).
    paths, missing, unlisted = match_files(
        out["image_id"], files, image_dir, file_stems=gt["image"], known=set(image_id)
    )
    paths = paths.fillna(out["image_id"].map(files))
    missing = missing[~missing["image_id"].isin(out["image_id"][paths.notna()])]
    return finish(out, paths, [missing, unlisted], n_listed=len(gt))
