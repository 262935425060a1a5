"""Readers of the official ISIC data layouts, each returning a manifest plus a skip report.

One function per layout (DESIGN.md, "Official layouts to read"). Each reader checks the CSV
header, the label values and the id uniqueness (a bad one is an :class:`IsicInputError` naming
file, line, column and value), matches the listed ids against one directory scan per image
folder (set lookups, no per-row ``stat``), and reports every image it does not use in
``SourceResult.report`` (``image_id, path, reason``). Image paths are absolute and point into
the user's folder, which is only read, never written.

Skip reasons (``REASONS``):
- ``missing_file``: listed in the CSV, no image file.
- ``unlisted_file``: image file present, not listed in the CSV (not used).
- ``duplicate_dropped``: listed as ``image_name_2`` in ``ISIC_2020_Training_Duplicates.csv``, or
  the same image id in two class folders (the first is kept).
- ``already_present``: an external image whose id the base set already has
  (:func:`merge_external_malignant`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd

from isic_tracking.data.manifest import (
    BINARY_CLASSES,
    MULTICLASS_CLASSES,
    normalize_manifest,
)
from isic_tracking.errors import IsicInputError

# --- the official layouts: file names and exact headers -------------------------------------
ISIC2020_CSV = "train.csv"
ISIC2020_HEADER: tuple[str, ...] = (
    "image_name",
    "patient_id",
    "sex",
    "age_approx",
    "anatom_site_general_challenge",
    "diagnosis",
    "benign_malignant",
    "target",
)
#: The resized re-uploads (``jpeg-melanoma-512x512`` etc.) append these columns.
ISIC2020_RESIZED_EXTRA: tuple[str, ...] = ("tfrecord", "width", "height")
ISIC2020_DUPLICATES_CSV = "ISIC_2020_Training_Duplicates.csv"
ISIC2020_DUPLICATES_HEADER: tuple[str, ...] = ("image_name_1", "image_name_2")
ISIC2020_IMAGE_DIR = "jpeg/train"

ISIC2019_GT_CSV = "ISIC_2019_Training_GroundTruth.csv"
ISIC2019_GT_HEADER: tuple[str, ...] = ("image", *MULTICLASS_CLASSES, "UNK")
ISIC2019_META_CSV = "ISIC_2019_Training_Metadata.csv"
ISIC2019_META_HEADER: tuple[str, ...] = (
    "image",
    "age_approx",
    "anatom_site_general",
    "lesion_id",
    "sex",
)
ISIC2019_IMAGE_DIR = "ISIC_2019_Training_Input"
DOWNSAMPLED_SUFFIX = "_downsampled"

ISIC2016_TEST_CSV = "ISBI2016_ISIC_Part3_Test_GroundTruth.csv"
ISIC2016_TEST_HEADER: tuple[str, ...] = ("image", "label")  # the file itself has no header
ISIC2016_TEST_IMAGE_DIR = "ISBI2016_ISIC_Part3_Test_Data"

HAM_CSV = "HAM10000_metadata.csv"
HAM_HEADER: tuple[str, ...] = (
    "lesion_id",
    "image_id",
    "dx",
    "dx_type",
    "age",
    "sex",
    "localization",
)
HAM_IMAGE_DIRS: tuple[str, ...] = ("HAM10000_images_part_1", "HAM10000_images_part_2")
HAM_DX: dict[str, str] = {
    "akiec": "AK",
    "bcc": "BCC",
    "bkl": "BKL",
    "df": "DF",
    "mel": "MEL",
    "nv": "NV",
    "vasc": "VASC",
}

#: Kaggle "Skin Cancer ISIC" class folders (lower case) -> ISIC 2019 class.
FOLDER_CLASSES: dict[str, str] = {
    "actinic keratosis": "AK",
    "basal cell carcinoma": "BCC",
    "dermatofibroma": "DF",
    "melanoma": "MEL",
    "nevus": "NV",
    "pigmented benign keratosis": "BKL",
    "seborrheic keratosis": "BKL",
    "squamous cell carcinoma": "SCC",
    "vascular lesion": "VASC",
}
FOLDER_SPLITS: dict[str, str] = {"train": "train", "test": "test"}

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png")
REASONS: tuple[str, ...] = (
    "missing_file",
    "unlisted_file",
    "duplicate_dropped",
    "already_present",
)
REPORT_COLUMNS: tuple[str, ...] = ("image_id", "path", "reason")


# --- result ---------------------------------------------------------------------------------
@dataclass
class SourceResult:
    """What a reader found.

    Attributes:
        manifest: the usable images, in the manifest format (``normalize_manifest``).
        report: every image not used, ``image_id, path, reason`` (see ``REASONS``).
        n_listed: rows in the label CSV(s) (folders: image files found).
        n_missing: listed but no file.
        n_unlisted: file present but not listed.
        n_duplicates_dropped: listed duplicates (or repeated ids) dropped.
        n_external_added: images added by :func:`merge_external_malignant`.
        n_already_present: external images skipped because the id was already there.
    """

    manifest: pd.DataFrame
    report: pd.DataFrame = field(default_factory=lambda: empty_report())
    n_listed: int = 0
    n_missing: int = 0
    n_unlisted: int = 0
    n_duplicates_dropped: int = 0
    n_external_added: int = 0
    n_already_present: int = 0

    def counters(self) -> dict[str, int]:
        """All ``n_*`` counters plus ``n_images`` (manifest rows), e.g. to log as metrics."""
        out = {f.name: int(getattr(self, f.name)) for f in fields(self) if f.name.startswith("n_")}
        out["n_images"] = len(self.manifest)
        return out


def empty_report() -> pd.DataFrame:
    """A skip report with no rows."""
    return pd.DataFrame({c: pd.Series(dtype="str") for c in REPORT_COLUMNS})


def _report(ids: Iterable[str], paths: Iterable[str], reason: str) -> pd.DataFrame:
    ids, paths = list(ids), list(paths)
    return pd.DataFrame(
        {"image_id": pd.Series(ids, dtype="str"), "path": pd.Series(paths, dtype="str")}
    ).assign(reason=reason)


def _concat_reports(reports: Sequence[pd.DataFrame]) -> pd.DataFrame:
    reports = [r for r in reports if len(r)]
    if not reports:
        return empty_report()
    return pd.concat(reports, ignore_index=True)[list(REPORT_COLUMNS)]


def concat_results(results: Sequence[SourceResult]) -> SourceResult:
    """Stack several results (e.g. a training and a test source); ids must stay unique."""
    manifest = pd.concat([r.manifest for r in results], ignore_index=True)
    dup = manifest["image_id"][manifest["image_id"].duplicated()]
    if len(dup):
        raise IsicInputError(
            f"image id {dup.iloc[0]!r} appears in several sources "
            f"({sorted(set(manifest.loc[manifest['image_id'] == dup.iloc[0], 'source']))}); "
            "remove it from one of them"
        )
    out = SourceResult(
        manifest=normalize_manifest(manifest),
        report=_concat_reports([r.report for r in results]),
    )
    for f in fields(SourceResult):
        if f.name.startswith("n_"):
            setattr(out, f.name, sum(getattr(r, f.name) for r in results))
    return out


# --- small shared helpers -------------------------------------------------------------------
def _require_dir(root: str | Path, what: str) -> Path:
    root = Path(root).expanduser()
    if not root.exists():
        raise IsicInputError(f"{what} root {root} does not exist; point root at the unpacked data")
    if not root.is_dir():
        raise IsicInputError(f"{what} root {root} is not a folder; point root at the data folder")
    return root.resolve()


def _require_file(path: Path, what: str, header: Sequence[str]) -> Path:
    if not path.is_file():
        raise IsicInputError(
            f"{what}: {path} not found; expected the official file with header {','.join(header)}"
        )
    return path


def _line(index: int, header: bool = True) -> int:
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


def _check_unique(ids: pd.Series, path: Path, column: str, header: bool = True) -> None:
    dup = ids.duplicated(keep=False) & ids.notna()
    if dup.any():
        first = ids[dup].iloc[0]
        lines = [_line(i, header) for i in ids.index[ids == first]]
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
            f"{path}, line {_line(i, header)}: empty {column}; every row needs one"
        )


def _bad_value(path: Path, index, column: str, value, allowed: str, header: bool = True):
    value = "" if pd.isna(value) else value
    return IsicInputError(
        f"{path}, line {_line(index, header)}, column {column!r}: unknown value {value!r}; "
        f"expected {allowed}"
    )


def _parse_binary(
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
        raise _bad_value(path, i, column, values.loc[i], allowed, header)
    return parsed.astype("int64")


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


def _image_dir(root: Path, name: str) -> Path:
    """``root/name``, or ``root/name/name`` when an unzip nested it (common on Kaggle)."""
    folder = root / name
    nested = folder / name
    if nested.is_dir() and not scan_images(folder):
        return nested
    return folder


def _match_files(
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
    missing_report = _report(listed_ids[missing], prefix + stems[missing] + ".jpg", "missing_file")
    listed = set(stems) | set(listed_ids) | (known or set())
    unlisted = sorted(set(files) - listed)
    unlisted_report = _report(unlisted, [files[s] for s in unlisted], "unlisted_file")
    return paths, missing_report, unlisted_report


def _to_age(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce")


def _na_unknown(values: pd.Series) -> pd.Series:
    """Empty or 'unknown' -> NA (HAM10000 writes 'unknown')."""
    return values.mask(values.str.lower().isin(["unknown", "nan", ""]))


def _check_malignant_classes(malignant_classes: Sequence[str]) -> tuple[str, ...]:
    classes = tuple(malignant_classes)
    bad = [c for c in classes if c not in MULTICLASS_CLASSES]
    if bad or not classes:
        raise IsicInputError(
            f"malignant_classes {list(classes)}: unknown {bad}; choose from "
            f"{list(MULTICLASS_CLASSES)}"
        )
    return classes


def _apply_task(
    df: pd.DataFrame, class_names: pd.Series, task: str, malignant_classes: Sequence[str]
) -> pd.DataFrame:
    """Set label / label_name from ISIC 2019 class names for ``task``."""
    if task == "multiclass":
        index = {c: i for i, c in enumerate(MULTICLASS_CLASSES)}
        df["label"] = class_names.map(index).astype("int64")
        df["label_name"] = class_names.astype(str)
    elif task == "binary":
        malignant = class_names.isin(_check_malignant_classes(malignant_classes))
        df["label"] = malignant.astype("int64")
        df["label_name"] = np.where(malignant, BINARY_CLASSES[1], BINARY_CLASSES[0])
        df["diagnosis"] = class_names.astype(str)
    else:
        raise IsicInputError(f"unknown task {task!r}; choose 'binary' or 'multiclass'")
    return df


def _finish(
    df: pd.DataFrame, paths: pd.Series, reports: Sequence[pd.DataFrame], **counters: int
) -> SourceResult:
    """Keep the rows with a file, normalize, and attach the report."""
    df = df.assign(path=paths)
    df = df[paths.notna()]
    report = _concat_reports(reports)
    counts = {
        "n_missing": int((report["reason"] == "missing_file").sum()),
        "n_unlisted": int((report["reason"] == "unlisted_file").sum()),
    } | counters
    return SourceResult(manifest=normalize_manifest(df), report=report, **counts)


# --- ISIC 2020 ------------------------------------------------------------------------------
#: (label CSV, image folder) candidates, tried in order: the Kaggle competition layout, the
#: ISIC-site download, and the resized re-upload (``jpeg-melanoma-512x512``: train.csv + train/).
_ISIC2020_LAYOUTS: tuple[tuple[str, str], ...] = (
    (ISIC2020_CSV, ISIC2020_IMAGE_DIR),
    ("ISIC_2020_Training_GroundTruth_v2.csv", "ISIC_2020_Training_JPEG/train"),
    ("ISIC_2020_Training_GroundTruth_v2.csv", "train"),
    ("ISIC_2020_Training_GroundTruth.csv", "ISIC_2020_Training_JPEG/train"),
    ("ISIC_2020_Training_GroundTruth.csv", "train"),
    (ISIC2020_CSV, "train"),
)


def _find_isic2020(root: Path) -> tuple[Path, Path]:
    for csv_name, image_dir in _ISIC2020_LAYOUTS:
        if (root / csv_name).is_file() and (root / image_dir).is_dir():
            return root / csv_name, root / image_dir
    resized = sorted(p for p in root.glob("jpeg-melanoma-*") if (p / ISIC2020_CSV).is_file())
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
    root = _require_dir(root, "ISIC 2020")
    csv_path, image_dir = _find_isic2020(root)
    required = ("image_name", "patient_id", "sex", "age_approx", "anatom_site_general_challenge")
    df = read_csv_checked(csv_path, (*required, "target"), ISIC2020_HEADER)
    _check_unique(df["image_name"], csv_path, "image_name")
    labels = _parse_binary(df["target"], csv_path, "target")

    out = pd.DataFrame(
        {
            "image_id": df["image_name"],
            "label": labels,
            "label_name": np.where(labels == 1, BINARY_CLASSES[1], BINARY_CLASSES[0]),
            "split": "train",
            "source": "isic2020",
            "patient_id": df["patient_id"],
            "lesion_id": df["lesion_id"] if "lesion_id" in df else pd.NA,
            "sex": df["sex"],
            "age": _to_age(df["age_approx"]),
            "site": df["anatom_site_general_challenge"],
            "is_external": False,
        }
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
        reports.append(_report(ids, ids.map(files).fillna(""), "duplicate_dropped"))
        out = out[~dropped]
    paths, missing, unlisted = _match_files(out["image_id"], files, image_dir, known=dup_ids)
    result = _finish(
        out,
        paths,
        [missing, unlisted, *reports],
        n_listed=len(df),
        n_duplicates_dropped=sum(len(r) for r in reports),
    )
    return result


# --- ISIC 2019 ------------------------------------------------------------------------------
def _strip_downsampled(ids: pd.Series) -> pd.Series:
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
            raise _bad_value(path, i, col, df.at[i, col], "1.0 or 0.0 (one-hot)")
        values[:, j] = v.to_numpy()
    unk = values[:, -1] == 1.0
    if unk.any():
        i = int(np.flatnonzero(unk)[0])
        raise IsicInputError(
            f"{path}, line {_line(df.index[i])} ({df['image'].iloc[i]}): column 'UNK' is set; "
            f"only the 8 training classes {list(MULTICLASS_CLASSES)} are supported, drop the row"
        )
    ones = values[:, :-1].sum(axis=1)
    bad_rows = np.flatnonzero(ones != 1.0)
    if len(bad_rows):
        i = int(bad_rows[0])
        set_cols = [c for c, v in zip(MULTICLASS_CLASSES, values[i, :-1]) if v == 1.0]
        raise IsicInputError(
            f"{path}, line {_line(df.index[i])} ({df['image'].iloc[i]}): "
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
    root = _require_dir(root, "ISIC 2019")
    gt_path = _require_file(root / ISIC2019_GT_CSV, "ISIC 2019 ground truth", ISIC2019_GT_HEADER)
    gt = read_csv_checked(gt_path, ISIC2019_GT_HEADER, ISIC2019_GT_HEADER)
    _check_unique(gt["image"], gt_path, "image")
    image_id = _strip_downsampled(gt["image"])
    _check_unique(image_id, gt_path, f"image (after removing {DOWNSAMPLED_SUFFIX!r})")
    classes = _one_hot_classes(gt, gt_path)

    out = pd.DataFrame({"image_id": image_id, "split": "train", "source": "isic2019"})
    out = _apply_task(out, classes, task, malignant_classes)

    meta_path = root / ISIC2019_META_CSV
    if meta_path.is_file():
        meta = read_csv_checked(meta_path, ISIC2019_META_HEADER, ISIC2019_META_HEADER)
        _check_unique(meta["image"], meta_path, "image")
        meta_id = _strip_downsampled(meta["image"])
        _check_unique(meta_id, meta_path, f"image (after removing {DOWNSAMPLED_SUFFIX!r})")
        meta = pd.DataFrame(
            {
                "lesion_id": meta["lesion_id"].to_numpy(),
                "sex": meta["sex"].to_numpy(),
                "age": _to_age(meta["age_approx"]).to_numpy(),
                "site": meta["anatom_site_general"].to_numpy(),
            },
            index=pd.Index(meta_id.to_numpy(), dtype="str"),
        )
        out = out.join(meta, on="image_id")

    image_dir = _image_dir(root, ISIC2019_IMAGE_DIR)
    files = scan_images(image_dir)
    # The file is named like the CSV id; fall back to the stripped id (a renamed copy).
    paths, missing, unlisted = _match_files(
        out["image_id"], files, image_dir, file_stems=gt["image"], known=set(image_id)
    )
    paths = paths.fillna(out["image_id"].map(files))
    missing = missing[~missing["image_id"].isin(out["image_id"][paths.notna()])]
    return _finish(out, paths, [missing, unlisted], n_listed=len(gt))


def _class_from_folder(name: str, where: Path) -> str:
    try:
        return FOLDER_CLASSES[name.strip().lower()]
    except KeyError:
        raise IsicInputError(
            f"{where}: unknown class folder {name!r}; known folder names are "
            f"{sorted(FOLDER_CLASSES)} (case-insensitive)"
        ) from None


def _subdirs(folder: Path) -> dict[str, Path]:
    with os.scandir(folder) as it:
        return {e.name: Path(e.path) for e in it if e.is_dir() and not e.name.startswith(".")}


def _split_folders(root: Path) -> dict[str, Path]:
    """``{"train": root/Train, "test": root/Test}`` (any case), entering a single wrapper folder."""
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
    root = _require_dir(root, "Skin Cancer ISIC")
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
    report = _report(df.loc[dup, "image_id"], df.loc[dup, "path"], "duplicate_dropped")
    df = df[~dup].reset_index(drop=True)
    out = pd.DataFrame(
        {"image_id": df["image_id"], "split": df["split"], "source": "isic2019-folders"}
    )
    out = _apply_task(out, df["class_name"], task, malignant_classes)
    return _finish(
        out,
        df["path"],
        [report],
        n_listed=len(df) + int(dup.sum()),
        n_duplicates_dropped=len(report),
    )


# --- ISIC 2016 Part 3 test --------------------------------------------------------------------
def read_isic2016_test(root: str | Path) -> SourceResult:
    """ISIC 2016 Part 3 test set (379 images): header-less ``image,label`` ground truth.

    Labels may be 0/1, 0.0/1.0 or benign/malignant (the training file's spelling).

    Args:
        root: folder with ``ISBI2016_ISIC_Part3_Test_GroundTruth.csv`` and
            ``ISBI2016_ISIC_Part3_Test_Data/``.

    Returns:
        SourceResult with source ``"isic2016"``, split ``"test"``.
    """
    root = _require_dir(root, "ISIC 2016 test")
    path = _require_file(root / ISIC2016_TEST_CSV, "ISIC 2016 ground truth", ISIC2016_TEST_HEADER)
    df = read_csv_checked(path, ISIC2016_TEST_HEADER, ISIC2016_TEST_HEADER, header=False)
    _check_unique(df["image"], path, "image", header=False)
    labels = _parse_binary(df["label"], path, "label", header=False, strings=True)
    out = pd.DataFrame(
        {
            "image_id": df["image"],
            "label": labels,
            "label_name": np.where(labels == 1, BINARY_CLASSES[1], BINARY_CLASSES[0]),
            "split": "test",
            "source": "isic2016",
        }
    )
    image_dir = _image_dir(root, ISIC2016_TEST_IMAGE_DIR)
    files = scan_images(image_dir)
    paths, missing, unlisted = _match_files(out["image_id"], files, image_dir)
    return _finish(out, paths, [missing, unlisted], n_listed=len(df))


# --- HAM10000 ---------------------------------------------------------------------------------
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
    root = _require_dir(root, "HAM10000")
    path = _require_file(root / HAM_CSV, "HAM10000 metadata", HAM_HEADER)
    required = ("lesion_id", "image_id", "dx", "age", "sex", "localization")
    df = read_csv_checked(path, required, HAM_HEADER)
    _check_unique(df["image_id"], path, "image_id")
    classes = df["dx"].str.lower().map(HAM_DX)
    bad = classes.isna()
    if bad.any():
        i = df.index[bad][0]
        raise _bad_value(path, i, "dx", df.at[i, "dx"], f"one of {sorted(HAM_DX)}")
    out = pd.DataFrame(
        {
            "image_id": df["image_id"],
            "split": "train",
            "source": "ham10000",
            "lesion_id": df["lesion_id"],
            "sex": _na_unknown(df["sex"]),
            "age": _to_age(df["age"]),
            "site": _na_unknown(df["localization"]),
        }
    )
    out = _apply_task(out, classes, task, malignant_classes)
    files: dict[str, str] = {}
    for name in HAM_IMAGE_DIRS:
        for candidate in (name, name.lower()):
            files |= scan_images(_image_dir(root, candidate))
    paths, missing, unlisted = _match_files(
        out["image_id"], files, root / "HAM10000_images_part_[12]"
    )
    return _finish(out, paths, [missing, unlisted], n_listed=len(df))


# --- synthetic --------------------------------------------------------------------------------
def read_synthetic(root: str | Path, task: str = "binary") -> SourceResult:
    """The output of :func:`isic_tracking.data.synthetic.make_synthetic`, with artifact truth.

    Binary: ``isic2020/`` (train) plus ``isic2016/`` (split "test"); multiclass: ``isic2019/``.
    Sources are prefixed ``synthetic-`` so runs never pass synthetic data off as real.
    The ``artifact`` column comes from each folder's ``synthetic_truth.csv``.
    """
    from isic_tracking.data.synthetic import read_truth  # synthetic imports this module

    root = _require_dir(root, "synthetic")
    if task == "binary":
        parts = [read_isic2020(root / "isic2020")]
        if (root / "isic2016").is_dir():
            parts.append(read_isic2016_test(root / "isic2016"))
        result = concat_results(parts)
    elif task == "multiclass":
        result = read_isic2019(root / "isic2019", task="multiclass")
    else:
        raise IsicInputError(f"unknown task {task!r}; choose 'binary' or 'multiclass'")
    manifest = result.manifest
    manifest["source"] = "synthetic-" + manifest["source"]
    truth = read_truth(root).drop_duplicates("image_id").set_index("image_id")["artifact"]
    manifest["artifact"] = manifest["image_id"].map(truth).fillna("none").astype(str)
    result.manifest = normalize_manifest(manifest)
    return result


# --- dispatch and merge -----------------------------------------------------------------------
#: dataset name -> (reader, tasks it supports; the first is the default).
READERS: dict[str, tuple[Callable[..., SourceResult], tuple[str, ...]]] = {
    "isic2020": (read_isic2020, ("binary",)),
    "isic2019": (read_isic2019, ("multiclass", "binary")),
    "isic2019-folders": (read_isic2019_folders, ("multiclass", "binary")),
    "isic2016-test": (read_isic2016_test, ("binary",)),
    "ham10000": (read_ham10000, ("multiclass", "binary")),
    "synthetic": (read_synthetic, ("binary", "multiclass")),
}


def read_source(dataset: str, root: str | Path, task: str | None = None) -> SourceResult:
    """Read ``root`` with the reader of ``dataset`` (one of ``READERS``).

    Args:
        dataset: isic2020 | isic2019 | isic2019-folders | isic2016-test | ham10000 | synthetic.
        root: the data folder.
        task: ``None`` for the reader's default, else ``"binary"`` / ``"multiclass"``.
    """
    if dataset not in READERS:
        raise IsicInputError(f"unknown dataset {dataset!r}; choose one of {list(READERS)}")
    reader, tasks = READERS[dataset]
    _require_dir(root, dataset)
    if task is None or task == tasks[0] and len(tasks) == 1:
        return reader(root)
    if task not in tasks:
        raise IsicInputError(f"dataset {dataset!r} supports task(s) {list(tasks)}, not {task!r}")
    return reader(root, task=task)


def detect_dataset(root: str | Path) -> str:
    """Guess the layout under ``root`` (a key of ``READERS``), e.g. for ``extra_malignant``.

    Looks only at a few file and folder names; raises when nothing matches.
    """
    root = _require_dir(root, "data")
    if (root / "isic2020").is_dir() and (root / "isic2020" / "synthetic_truth.csv").is_file():
        return "synthetic"
    if (root / ISIC2019_GT_CSV).is_file():
        return "isic2019"
    if (root / HAM_CSV).is_file():
        return "ham10000"
    if (root / ISIC2016_TEST_CSV).is_file():
        return "isic2016-test"
    isic2020_csvs = {csv for csv, _ in _ISIC2020_LAYOUTS}
    if any((root / c).is_file() for c in isic2020_csvs) or any(root.glob("jpeg-melanoma-*")):
        return "isic2020"
    if _split_folders(root):
        return "isic2019-folders"
    raise IsicInputError(
        f"{root}: cannot tell which data set this is; expected one of the official layouts "
        f"({list(READERS)}); name it explicitly"
    )


def merge_external_malignant(
    base: SourceResult, extra: SourceResult, malignant_classes: Sequence[str] = ("MEL",)
) -> SourceResult:
    """Add another source's malignant images to a binary training set (thesis: 2020 + 2019 MEL).

    The extra images become label 1 / "malignant", ``is_external=True``, split "train"; ids the
    base already has are skipped and reported as ``already_present``. In the thesis this took
    ISIC 2020 from 584 to 5,106 malignant images.

    Args:
        base: a binary result (e.g. :func:`read_isic2020`).
        extra: a multiclass result (its ``label_name`` in ``malignant_classes`` is taken) or a
            binary one (its "malignant" rows are taken).
        malignant_classes: ISIC 2019 classes counted as malignant.

    Returns:
        A new SourceResult: base rows, then the added rows; reports and counters combined.
    """
    classes = _check_malignant_classes(malignant_classes)
    base_names = set(base.manifest["label_name"])
    if not base_names <= set(BINARY_CLASSES):
        raise IsicInputError(
            f"merge_external_malignant needs a binary base set; it has labels {sorted(base_names)}"
        )
    extra_df = extra.manifest
    wanted = extra_df["label_name"].isin((*classes, BINARY_CLASSES[1]))
    add = extra_df[wanted]
    present = add["image_id"].isin(set(base.manifest["image_id"]))
    skipped = _report(add.loc[present, "image_id"], add.loc[present, "path"], "already_present")
    add = add[~present].copy()
    if "diagnosis" not in add.columns or add["label_name"].isin(classes).all():
        add["diagnosis"] = add["label_name"]
    add["label"] = 1
    add["label_name"] = BINARY_CLASSES[1]
    add["is_external"] = True
    add["split"] = "train"
    merged = concat_results([base, SourceResult(manifest=normalize_manifest(add))])
    merged.report = _concat_reports([base.report, extra.report, skipped])
    for f in fields(SourceResult):
        if f.name.startswith("n_"):
            setattr(merged, f.name, getattr(base, f.name) + getattr(extra, f.name))
    merged.n_external_added = base.n_external_added + len(add)
    merged.n_already_present = base.n_already_present + len(skipped)
    return merged
