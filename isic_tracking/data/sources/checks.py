"""Input checks every reader shares: folders, files, CSV headers, ids, label values, tasks.

A bad input is an :class:`IsicInputError` naming the file, line, column and value and saying
what was expected (the official header or the allowed values).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from isic_tracking.data.manifest import BINARY_CLASSES, MULTICLASS_CLASSES
from isic_tracking.errors import IsicInputError


def require_dir(root: str | Path, what: str) -> Path:
    """``root`` resolved; an error naming ``what`` when it is missing or not a folder."""
    root = Path(root).expanduser()
    if not root.exists():
        raise IsicInputError(f"{what} root {root} does not exist; point root at the unpacked data")
    if not root.is_dir():
        raise IsicInputError(f"{what} root {root} is not a folder; point root at the data folder")
    return root.resolve()


def require_file(path: Path, what: str, header: Sequence[str]) -> Path:
    """``path``; an error quoting the official ``header`` when the file is missing."""
    if not path.is_file():
        raise IsicInputError(
            f"{what}: {path} not found; expected the official file with header {','.join(header)}"
        )
    return path


def line_number(index: int, header: bool = True) -> int:
    """1-based line number in the file of a 0-based data row."""
    return int(index) + (2 if header else 1)


def read_csv_checked(
    path: Path,
    required: Sequence[str],
    expected_header: Sequence[str],
    *,
    header: bool = True,
) -> pd.DataFrame:
    """Read a CSV as strings (empty cell -> NA) and check it is non-empty with ``required`` columns.

    Args:
        path: the CSV file.
        required: columns the reader uses.
        expected_header: the official header, quoted in error messages.
        header: False for header-less files (columns are then ``expected_header``).

    Raises:
        IsicInputError: empty file, missing columns (file, columns, expected header), wrong
            number of columns in a header-less file.
    """
    expected = ",".join(expected_header)
    try:
        df = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            header=0 if header else None,
            encoding="utf-8-sig",
            skipinitialspace=True,
        )
    except pd.errors.EmptyDataError:
        raise IsicInputError(
            f"{path} is empty; expected the official file with header {expected}"
        ) from None
    except pd.errors.ParserError as e:
        raise IsicInputError(f"{path} is not a valid CSV ({e}); expected header {expected}") from e
    if not header:
        if df.shape[1] != len(expected_header):
            raise IsicInputError(
                f"{path}: {df.shape[1]} column(s), expected {len(expected_header)} "
                f"({expected}, no header line)"
            )
        df.columns = list(expected_header)
    else:
        df.columns = [str(c).strip() for c in df.columns]
        missing = [c for c in required if c not in df.columns]
        if missing:
            raise IsicInputError(
                f"{path}: missing column(s) {missing} (found {list(df.columns)}); "
                f"expected the official header {expected}"
            )
    if len(df) == 0:
        raise IsicInputError(f"{path} has no data rows; expected rows under the header {expected}")
    for col in df.columns:  # all string cells (dtype=str); .str keeps NA missing
        df[col] = df[col].str.strip()
    return df


def check_unique(ids: pd.Series, path: Path, column: str, header: bool = True) -> None:
    """Every id listed once and none empty; else an error naming the file and lines."""
    dup = ids.duplicated(keep=False) & ids.notna()
    if dup.any():
        first = ids[dup].iloc[0]
        lines = [line_number(i, header) for i in ids.index[ids == first]]
        n = int(ids[dup].nunique())
        raise IsicInputError(
            f"{path}: duplicate {column} {first!r} on lines {lines}"
            + (f" ({n} ids repeated in total)" if n > 1 else "")
            + "; each image must be listed once"
        )
    missing = ids.isna()
    if missing.any():
        i = ids.index[missing][0]
        raise IsicInputError(
            f"{path}, line {line_number(i, header)}: empty {column}; every row needs one"
        )


def bad_value(
    path: Path, index, column: str, value, allowed: str, header: bool = True
) -> IsicInputError:
    """The error for an unknown cell value: file, line, column, value and what is allowed."""
    value = "" if pd.isna(value) else value
    return IsicInputError(
        f"{path}, line {line_number(index, header)}, column {column!r}: unknown value {value!r}; "
        f"expected {allowed}"
    )


def parse_binary(
    values: pd.Series, path: Path, column: str, header: bool = True, strings: bool = False
) -> pd.Series:
    """0/1, 0.0/1.0 (and benign/malignant when ``strings``) -> int 0/1; else a row error."""
    mapping = {"0": 0, "1": 1, "0.0": 0, "1.0": 1}
    if strings:
        mapping |= {"benign": 0, "malignant": 1}
    parsed = values.str.lower().map(mapping)
    bad = parsed.isna()
    if bad.any():
        i = values.index[bad][0]
        allowed = "0/1 or 0.0/1.0" + (" or benign/malignant" if strings else "")
        raise bad_value(path, i, column, values.loc[i], allowed, header)
    return parsed.astype("int64")


def to_age(values: pd.Series) -> pd.Series:
    """Ages as floats; anything not a number becomes NA."""
    return pd.to_numeric(values, errors="coerce")


def binary_challenge_rows(
    df: pd.DataFrame, ids: str, labels: pd.Series, source: str, site: str
) -> pd.DataFrame:
    """Manifest rows of an ISIC challenge CSV with one row per image and a 0/1 target (ISIC
    2020, ISIC 2024): ``ids`` and ``site`` name the CSV's id and site columns."""
    return pd.DataFrame(
        {
            "image_id": df[ids],
            "label": labels,
            "label_name": np.where(labels == 1, BINARY_CLASSES[1], BINARY_CLASSES[0]),
            "split": "train",
            "source": source,
            "patient_id": df["patient_id"],
            "lesion_id": df["lesion_id"] if "lesion_id" in df else pd.NA,
            "sex": df["sex"],
            "age": to_age(df["age_approx"]),
            "site": df[site],
            "is_external": False,
        }
    )


def na_unknown(values: pd.Series) -> pd.Series:
    """Empty or 'unknown' -> NA (HAM10000 writes 'unknown')."""
    return values.mask(values.str.lower().isin(["unknown", "nan", ""]))


def check_malignant_classes(malignant_classes: Sequence[str]) -> tuple[str, ...]:
    """The classes as a tuple; an error when empty or not ISIC 2019 classes."""
    classes = tuple(malignant_classes)
    bad = [c for c in classes if c not in MULTICLASS_CLASSES]
    if bad or not classes:
        raise IsicInputError(
            f"malignant_classes {list(classes)}: unknown {bad}; choose from "
            f"{list(MULTICLASS_CLASSES)}"
        )
    return classes


def apply_task(
    df: pd.DataFrame, class_names: pd.Series, task: str, malignant_classes: Sequence[str]
) -> pd.DataFrame:
    """Set label / label_name from ISIC 2019 class names for ``task``."""
    if task == "multiclass":
        index = {c: i for i, c in enumerate(MULTICLASS_CLASSES)}
        df["label"] = class_names.map(index).astype("int64")
        df["label_name"] = class_names.astype(str)
    elif task == "binary":
        malignant = class_names.isin(check_malignant_classes(malignant_classes))
        df["label"] = malignant.astype("int64")
        df["label_name"] = np.where(malignant, BINARY_CLASSES[1], BINARY_CLASSES[0])
        df["diagnosis"] = class_names.astype(str)
    else:
        raise IsicInputError(f"unknown task {task!r}; choose 'binary' or 'multiclass'")
    return df
