"""Kaggle "Skin Cancer ISIC": ``{Train,Test}/<class name>/ISIC_*.jpg``, labels from folder names."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from isic_tracking.data.sources.checks import apply_task, require_dir
from isic_tracking.data.sources.constants import FOLDER_CLASSES, FOLDER_SPLITS
from isic_tracking.data.sources.files import scan_images
from isic_tracking.data.sources.result import SourceResult, finish, report
from isic_tracking.errors import IsicInputError


def _class_from_folder(name: str, where: Path) -> str:
    """The ISIC 2019 class of a class folder name; an error listing the known names."""
    try:
        return FOLDER_CLASSES[name.strip().lower()]
    except KeyError:
        raise IsicInputError(
            f"{where}: unknown class folder {name!r}; known folder names are "
            f"{sorted(FOLDER_CLASSES)} (case-insensitive)"
        ) from None


def _subdirs(folder: Path) -> dict[str, Path]:
    """Visible subfolders of ``folder`` by name."""
    with os.scandir(folder) as it:
        return {e.name: Path(e.path) for e in it if e.is_dir() and not e.name.startswith(".")}


def _split_folders(root: Path) -> dict[str, Path]:
    """``{"train": root/Train, "test": root/Test}`` (any case), entering a single wrapper folder.

    Empty when ``root`` has neither (also how :func:`detect` recognizes the layout).
    """
    top = {k.lower(): v for k, v in _subdirs(root).items()}
    if len(top) == 1 and not set(top) & set(FOLDER_SPLITS):  # the Kaggle zip adds a folder
        top = {k.lower(): v for k, v in _subdirs(next(iter(top.values()))).items()}
    return {FOLDER_SPLITS[k]: v for k, v in sorted(top.items()) if k in FOLDER_SPLITS}


def read_isic2019_folders(
    root: str | Path, task: str = "multiclass", malignant_classes: Sequence[str] = ("MEL",)
) -> SourceResult:
    """Kaggle "Skin Cancer ISIC": ``{Train,Test}/<class name>/ISIC_*.jpg``.

    The split comes from the top folder, the class from the folder name (``FOLDER_CLASSES``;
    seborrheic and pigmented benign keratosis both map to BKL). An id found twice is kept once
    (Train first) and the others reported as ``duplicate_dropped``.

    Args:
        root: the folder holding ``Train/`` and/or ``Test/`` (or a single folder that does).
        task: ``"multiclass"`` or ``"binary"`` (malignant = ``malignant_classes``).
        malignant_classes: classes counted as malignant for the binary task.

    Returns:
        SourceResult with source ``"isic2019-folders"``.
    """
    root = require_dir(root, "Skin Cancer ISIC")
    split_dirs = _split_folders(root)
    if not split_dirs:
        raise IsicInputError(
            f"{root}: no Train/ or Test/ folder found; expected {{Train,Test}}/<class name>/*.jpg"
        )
    rows: list[pd.DataFrame] = []
    for split in ("train", "test"):
        if split not in split_dirs:
            continue
        for name, folder in sorted(_subdirs(split_dirs[split]).items()):
            cls = _class_from_folder(name, split_dirs[split])
            files = scan_images(folder)
            stems = sorted(files)
            rows.append(
                pd.DataFrame(
                    {
                        "image_id": pd.Series(stems, dtype="str"),
                        "path": [files[s] for s in stems],
                        "class_name": cls,
                        "split": split,
                    }
                )
            )
    df = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["image_id"])
    if len(df) == 0:
        raise IsicInputError(f"{root}: no images found under the class folders")
    dup = df["image_id"].duplicated()
    dropped = report(df.loc[dup, "image_id"], df.loc[dup, "path"], "duplicate_dropped")
    df = df[~dup].reset_index(drop=True)
    out = pd.DataFrame(
        {"image_id": df["image_id"], "split": df["split"], "source": "isic2019-folders"}
    )
    out = apply_task(out, df["class_name"], task, malignant_classes)
    return finish(
        out,
        df["path"],
        [dropped],
        n_listed=len(df) + int(dup.sum()),
        n_duplicates_dropped=len(dropped),
    )


def detect(root: Path) -> bool:
    """True when ``root`` (or a single wrapper folder in it) holds ``Train/`` or ``Test/``."""
    return bool(_split_folders(root))
