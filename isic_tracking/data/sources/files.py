"""Image files of a layout: one directory scan per folder, matched against the listed ids.

Set lookups instead of a ``stat`` per row, so a 33,000-image folder costs one ``scandir``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from isic_tracking.data.sources.constants import IMAGE_EXTENSIONS
from isic_tracking.data.sources.result import report


def scan_images(folder: Path) -> dict[str, str]:
    """One ``os.scandir`` of ``folder``: file stem -> absolute path, image files only.

    Hidden files, folders and other extensions are ignored; when a stem exists with several
    extensions, the first of ``IMAGE_EXTENSIONS`` wins. A missing folder gives ``{}``.
    """
    rank = {ext: i for i, ext in enumerate(IMAGE_EXTENSIONS)}
    prefix = os.path.join(os.path.abspath(folder), "")
    found: dict[str, tuple[int, str]] = {}
    try:
        with os.scandir(folder) as it:
            for entry in it:
                name = entry.name
                stem, dot, ext = name.rpartition(".")
                r = rank.get("." + ext.lower())
                if r is None or not dot or name.startswith(".") or not entry.is_file():
                    continue
                if stem not in found or r < found[stem][0]:
                    found[stem] = (r, prefix + name)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    return {k: v for k, (_, v) in found.items()}


def find_image_dir(root: Path, name: str) -> Path:
    """``root/name``, or ``root/name/name`` when an unzip nested it (common on Kaggle)."""
    folder = root / name
    nested = folder / name
    if nested.is_dir() and not scan_images(folder):
        return nested
    return folder


def match_files(
    listed_ids: pd.Series,
    files: dict[str, str],
    folder: Path,
    *,
    file_stems: pd.Series | None = None,
    known: set[str] | None = None,
) -> tuple[pd.Series, pd.DataFrame, pd.DataFrame]:
    """Paths of listed ids (NA where missing), plus missing and unlisted reports.

    Args:
        listed_ids: the ids the CSV lists (index kept).
        files: stem -> path from :func:`scan_images`.
        folder: the image folder; a missing file is reported as ``folder/<stem>.jpg``.
        file_stems: the file stem to look up per row when it differs from the id.
        known: stems that count as listed even when not used (e.g. dropped duplicates).
    """
    stems = listed_ids if file_stems is None else file_stems
    paths = stems.map(files)
    missing = paths.isna()
    prefix = os.path.join(str(folder), "")
    missing_report = report(listed_ids[missing], prefix + stems[missing] + ".jpg", "missing_file")
    listed = set(stems) | set(listed_ids) | (known or set())
    unlisted = sorted(set(files) - listed)
    unlisted_report = report(unlisted, [files[s] for s in unlisted], "unlisted_file")
    return paths, missing_report, unlisted_report
