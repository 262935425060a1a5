"""ISIC Archive downloads (``isic image download DIR``): ``metadata.csv`` + ``<isic_id>.jpg``.

The official CLI (ImageMarkup/isic-cli) writes the images, ``metadata.csv`` (``isic_id``,
``attribution``, ``copyright_license``, then the metadata keys of the downloaded images, sorted:
a key no image has is no column), ``attribution.txt`` and ``licenses/`` (both ignored). Older
exports label with ``benign_malignant`` and a flat ``diagnosis``; current ones with the
hierarchical ``diagnosis_1`` (Benign / Malignant / Indeterminate) .. ``diagnosis_5``. Column
names checked against isic-cli, isic-metadata and the ISIC server code (see ``constants``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from isic_tracking.data.manifest import BINARY_CLASSES, MULTICLASS_CLASSES
from isic_tracking.data.sources.checks import (
    bad_value,
    check_unique,
    read_csv_checked,
    require_dir,
    require_file,
    to_age,
)
from isic_tracking.data.sources.constants import (
    ARCHIVE_BINARY,
    ARCHIVE_BINARY_COLUMNS,
    ARCHIVE_CSV,
    ARCHIVE_DIAGNOSES,
    ARCHIVE_DIAGNOSIS_LEVELS,
    ARCHIVE_HEADER,
    ARCHIVE_NO_BINARY,
    ARCHIVE_OLD_DIAGNOSES,
)
from isic_tracking.data.sources.files import match_files, scan_images
from isic_tracking.data.sources.result import SourceResult, finish, report
from isic_tracking.errors import IsicInputError

_ID = "isic_id"


def detect(root: Path) -> bool:
    """True when ``root`` holds a ``metadata.csv`` whose header names ``isic_id``."""
    path = root / ARCHIVE_CSV
    if not path.is_file():
        return False
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        header = f.readline()
    return _ID in {c.strip().strip('"') for c in header.split(",")}


def _usable(df: pd.DataFrame, columns: tuple[str, ...]) -> list[str]:
    """The ``columns`` present in ``df`` with at least one value."""
    return [c for c in columns if c in df.columns and df[c].notna().any()]


def _cannot_derive(path: Path, task: str, wanted: str, df: pd.DataFrame) -> IsicInputError:
    return IsicInputError(
        f"{path}: cannot derive the {task} task: no column {wanted} has a value (columns: "
        f"{list(df.columns)}). Download the metadata with the images (`isic image download "
        "DIR` writes it) or choose the other task (-P task=... / --task)"
    )


def _binary_labels(df: pd.DataFrame, path: Path) -> pd.Series:
    """0 / 1 per row from the first label column with a value; NA where none can be derived."""
    cols = _usable(df, ARCHIVE_BINARY_COLUMNS)
    if not cols:
        wanted = " or ".join(ARCHIVE_BINARY_COLUMNS) + " (benign / malignant)"
        raise _cannot_derive(path, "binary", wanted, df)
    first = df[cols].bfill(axis=1).iloc[:, 0]
    source = df[cols].notna().idxmax(axis=1)  # which column gave the value, for errors
    lower = first.str.lower()
    known = lower.isna() | lower.isin([*ARCHIVE_BINARY, *ARCHIVE_NO_BINARY])
    if not known.all():
        i = df.index[~known][0]
        allowed = "Benign / Malignant / Indeterminate (or empty)"
        if source[i] == "benign_malignant":
            allowed = f"one of {[*ARCHIVE_BINARY, *ARCHIVE_NO_BINARY]} (or empty)"
        raise bad_value(path, i, source[i], first[i], allowed)
    return lower.map(ARCHIVE_BINARY)


def diagnosis_class(diagnosis: str) -> str | None:
    """The ISIC 2019 class of a hierarchical diagnosis (``diagnosis_1:...:diagnosis_N``): that of
    its deepest ancestor listed in ``ARCHIVE_DIAGNOSES``; None when no level is mapped."""
    levels = diagnosis.split(":")
    for depth in range(len(levels), 0, -1):
        found = ARCHIVE_DIAGNOSES.get(":".join(levels[:depth]))
        if found:
            return found
    return None


def _hierarchy(df: pd.DataFrame) -> pd.Series:
    """``diagnosis_1:...:diagnosis_N`` per row (the leading levels with a value); NA if none."""
    levels = [c for c in ARCHIVE_DIAGNOSIS_LEVELS if c in df.columns]
    if not levels:
        return pd.Series(pd.NA, index=df.index, dtype="string")
    parts = df[levels].astype("string")
    chain = parts.iloc[:, 0]
    complete = chain.notna()
    for col in levels[1:]:
        complete &= parts[col].notna()
        chain = chain.where(~complete, chain + ":" + parts[col])
    return chain


def _classes(df: pd.DataFrame, path: Path) -> pd.Series:
    """ISIC 2019 class per row (hierarchical diagnosis first, then ``diagnosis``); NA if none."""
    if not _usable(df, (*ARCHIVE_DIAGNOSIS_LEVELS, "diagnosis")):
        wanted = "diagnosis_1 .. diagnosis_5 or diagnosis"
        raise _cannot_derive(path, "multiclass", wanted, df)
    chain = _hierarchy(df)
    lookup = {d: diagnosis_class(d) for d in chain.dropna().unique()}
    classes = chain.map(lookup).astype("object")
    if "diagnosis" in df.columns:
        old = df["diagnosis"].str.lower().map(ARCHIVE_OLD_DIAGNOSES)
        classes = classes.where(chain.notna(), old)
    return classes.where(classes.notna(), None)


def _deepest_diagnosis(df: pd.DataFrame) -> pd.Series:
    """The most specific diagnosis of each row (deepest diagnosis_N, else ``diagnosis``)."""
    cols = [c for c in (*ARCHIVE_DIAGNOSIS_LEVELS[::-1], "diagnosis") if c in df.columns]
    if not cols:
        return pd.Series(pd.NA, index=df.index, dtype="string")
    return df[cols].bfill(axis=1).iloc[:, 0].astype("string")


def _column(df: pd.DataFrame, *names: str) -> pd.Series:
    """The first of ``names`` that ``df`` has (a key no downloaded image has is no column)."""
    for name in names:
        if name in df.columns:
            return df[name]
    return pd.Series(pd.NA, index=df.index, dtype="string")


def read_isic_archive(root: str | Path, task: str = "binary") -> SourceResult:
    """A folder downloaded with ``isic image download DIR``: ``metadata.csv`` and the images.

    Binary: ``diagnosis_1`` (Benign / Malignant), else the older ``benign_malignant``; a row
    whose label is Indeterminate or empty is skipped (``no_label``), never guessed. Multiclass
    (the 8 ISIC 2019 classes): the deepest mapped level of ``diagnosis_1:...:diagnosis_5``
    (``ARCHIVE_DIAGNOSES``), else the older flat ``diagnosis`` (``ARCHIVE_OLD_DIAGNOSES``); other
    rows are skipped (``unmapped_diagnosis``). ``patient_id``, ``lesion_id``, ``sex``,
    ``age_approx`` -> age and ``anatom_site_general`` (else ``anatom_site_1``) -> site are kept
    when the file has them; the most specific diagnosis is kept as ``diagnosis``.

    Args:
        root: the download folder.
        task: ``"binary"`` or ``"multiclass"``.

    Returns:
        SourceResult with source ``"isic-archive"``, split ``"train"``.

    Raises:
        IsicInputError: no ``metadata.csv``, duplicate ids, an unknown benign/malignant value,
            or no column the task's label can be derived from.
    """
    root = require_dir(root, "ISIC Archive")
    path = require_file(root / ARCHIVE_CSV, "ISIC Archive metadata", ARCHIVE_HEADER)
    df = read_csv_checked(path, (_ID,), ARCHIVE_HEADER)
    check_unique(df[_ID], path, _ID)
    out = pd.DataFrame(
        {
            "image_id": df[_ID],
            "split": "train",
            "source": "isic-archive",
            "patient_id": _column(df, "patient_id"),
            "lesion_id": _column(df, "lesion_id"),
            "sex": _column(df, "sex"),
            "age": to_age(_column(df, "age_approx")),
            "site": _column(df, "anatom_site_general", "anatom_site_1"),
            "is_external": False,
        }
    )
    if task == "binary":
        labels = _binary_labels(df, path)
        keep, reason = labels.notna(), "no_label"
        out["label"] = labels.fillna(0).astype("int64")
        out["label_name"] = np.where(out["label"] == 1, BINARY_CLASSES[1], BINARY_CLASSES[0])
    elif task == "multiclass":
        classes = _classes(df, path)
        keep, reason = classes.notna(), "unmapped_diagnosis"
        out["label"] = classes.map({c: i for i, c in enumerate(MULTICLASS_CLASSES)})
        out["label"] = out["label"].fillna(0).astype("int64")
        out["label_name"] = classes.fillna("").astype(str)
    else:
        raise IsicInputError(f"unknown task {task!r}; choose 'binary' or 'multiclass'")
    out["diagnosis"] = _deepest_diagnosis(df)
    if not keep.any():
        raise IsicInputError(
            f"{path}: cannot derive the {task} task: none of its {len(df)} rows has a usable "
            f"label ({reason}; diagnoses e.g. {sorted(out['diagnosis'].dropna().unique())[:5]}). "
            + (
                "Binary needs Benign / Malignant in diagnosis_1 or benign_malignant"
                if task == "binary"
                else f"Multiclass needs a diagnosis of the classes {list(MULTICLASS_CLASSES)}"
            )
        )

    files = scan_images(root)
    skipped = out.loc[~keep, "image_id"]
    unlabeled = report(skipped, skipped.map(files).fillna(""), reason)
    out = out[keep]
    paths, missing, unlisted = match_files(out["image_id"], files, root, known=set(df[_ID]))
    return finish(out, paths, [missing, unlisted, unlabeled], n_listed=len(df))
