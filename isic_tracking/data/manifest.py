"""The manifest: one table of images every stage reads (see DESIGN.md, "The manifest").

Paths are written relative to the manifest's folder when the image lies below it, so a
prepared cache can be moved or shared; :func:`read_manifest` makes them absolute again.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from isic_tracking.errors import IsicInputError

MANIFEST_COLUMNS: tuple[str, ...] = (
    "image_id",
    "path",
    "label",
    "label_name",
    "split",
    "source",
    "patient_id",
    "lesion_id",
    "sex",
    "age",
    "site",
    "is_external",
)

BINARY_CLASSES: tuple[str, ...] = ("benign", "malignant")
#: The 8 ISIC 2019 training classes, in the order of the official ground-truth CSV.
MULTICLASS_CLASSES: tuple[str, ...] = ("MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC")
TASKS: dict[str, tuple[str, ...]] = {"binary": BINARY_CLASSES, "multiclass": MULTICLASS_CLASSES}


def task_classes(task: str) -> tuple[str, ...]:
    """Class names of a task, index = label."""
    try:
        return TASKS[task]
    except KeyError:
        raise IsicInputError(f"unknown task {task!r}; choose one of {sorted(TASKS)}") from None


def infer_task(df: pd.DataFrame) -> str:
    """'binary' when every label_name is benign/malignant, else 'multiclass'."""
    names = set(df["label_name"].astype(str))
    if names <= set(BINARY_CLASSES):
        return "binary"
    if names <= set(MULTICLASS_CLASSES):
        return "multiclass"
    raise IsicInputError(
        f"manifest mixes label names {sorted(names)}; expected a subset of "
        f"{list(BINARY_CLASSES)} or {list(MULTICLASS_CLASSES)}"
    )


def normalize_manifest(df: pd.DataFrame) -> pd.DataFrame:
    """Order columns, fill the nullable ones and fix dtypes; rows are not dropped."""
    df = df.copy()
    for col in MANIFEST_COLUMNS:
        if col not in df.columns:
            df[col] = pd.NA
    df["image_id"] = df["image_id"].astype(str)
    df["path"] = df["path"].astype(str)
    df["label"] = df["label"].astype("int64")
    df["label_name"] = df["label_name"].astype(str)
    df["split"] = df["split"].fillna("train").astype(str)
    df["source"] = df["source"].astype(str)
    df["is_external"] = df["is_external"].fillna(False).astype(bool)
    df["age"] = pd.to_numeric(df["age"], errors="coerce")
    for col in ("patient_id", "lesion_id", "sex", "site"):
        df[col] = df[col].astype("string")
    extra = [c for c in df.columns if c not in MANIFEST_COLUMNS]
    return df[list(MANIFEST_COLUMNS) + extra].reset_index(drop=True)


def validate_manifest(df: pd.DataFrame, where: str = "manifest") -> pd.DataFrame:
    """Check required columns, unique ids and label consistency; return the normalized table."""
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise IsicInputError(
            f"{where}: missing column(s) {missing}; a manifest needs {list(MANIFEST_COLUMNS)}"
        )
    dup = df["image_id"][df["image_id"].duplicated()]
    if len(dup):
        rows = [int(i) + 2 for i in dup.index[:5]]  # +2: header line and 1-based rows
        raise IsicInputError(
            f"{where}: duplicate image_id {dup.iloc[0]!r} (CSV rows {rows}); each image once"
        )
    pairs = df.groupby("label")["label_name"].nunique()
    bad = pairs[pairs > 1]
    if len(bad):
        raise IsicInputError(f"{where}: label {int(bad.index[0])} has several label_name values")
    return normalize_manifest(df)


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read a manifest CSV or Parquet, validate it and make image paths absolute."""
    path = Path(path)
    if not path.is_file():
        raise IsicInputError(
            f"manifest {path} does not exist; create one with `mlflow run . -e prepare` "
            "(or `python -m entrypoints.prepare --help`)"
        )
    if path.suffix == ".parquet":
        df = pd.read_parquet(path)
    else:
        df = pd.read_csv(path, dtype={"image_id": str, "patient_id": str, "lesion_id": str})
    df = validate_manifest(df, where=str(path))
    base = path.resolve().parent
    df["path"] = [str(p if Path(p).is_absolute() else base / p) for p in df["path"]]
    return df


def write_manifest(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a manifest; image paths below its folder are stored relative to it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = path.resolve().parent
    out = validate_manifest(df, where=str(path))

    def rel(p: str) -> str:
        try:
            return str(Path(p).resolve().relative_to(base))
        except ValueError:
            return p

    out["path"] = [rel(p) for p in out["path"]]
    if path.suffix == ".parquet":
        out.to_parquet(path, index=False)
    else:
        out.to_csv(path, index=False)
    return path
