"""Cross-validation folds, the search subset, holdout splits and minority upsampling.

Folds are stratified by label and, by default, grouped: all images of one patient
(``patient_id``, ISIC 2020) or one lesion (``lesion_id``, ISIC 2019 / HAM10000) fall in the same
fold, so a model is never validated on a patient it was trained on. The thesis used plain
stratified folds; ``grouped=False`` reproduces that. Only ``split == "train"`` rows get folds.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from isic_tracking.errors import IsicInputError

FOLDS_COLUMNS = ("image_id", "fold")


def group_ids(df: pd.DataFrame) -> pd.Series | None:
    """The grouping key of each row: ``patient_id``, else ``lesion_id``, else the row itself.

    Prefixes keep a patient id from ever equalling a lesion id. Returns None when no row has
    a patient or lesion id (grouping would change nothing).
    """
    groups = pd.Series(pd.NA, index=df.index, dtype="object")
    found = False
    for col in ("lesion_id", "patient_id"):  # patient_id last: it wins where both exist
        if col in df.columns:
            ids = df[col].astype("string")
            has = ids.notna() & (ids.str.strip() != "")
            if has.any():
                found = True
                groups[has] = col + ":" + ids[has]
    if not found:
        return None
    own = groups.isna()
    groups[own] = [f"row:{i}" for i in df.index[own]]
    return groups.astype(str)


def _kfold(
    df: pd.DataFrame, n_splits: int, seed: int, grouped: bool
) -> tuple[list[np.ndarray], str]:
    """Validation row positions of each of ``n_splits`` folds, and the scheme's name."""
    y = df["label"].to_numpy()
    groups = group_ids(df) if grouped else None
    counts = pd.Series(y).value_counts()
    if int(counts.max()) < n_splits:  # sklearn's own message names no option to change
        raise IsicInputError(
            f"{n_splits} folds need at least {n_splits} images of some class, the largest "
            f"class has {int(counts.max())}; use fewer folds"
        )
    if groups is not None:
        n_groups = groups.nunique()
        if n_groups < n_splits:
            raise IsicInputError(
                f"{n_splits} folds need at least {n_splits} patients/lesions, found {n_groups}; "
                "use fewer folds or grouped=False"
            )
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        splits = splitter.split(np.zeros(len(y)), y, groups.to_numpy())
        scheme = "stratified-group"
    else:
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        splits = splitter.split(np.zeros(len(y)), y)
        scheme = "stratified"
    with warnings.catch_warnings():
        # "least populated class has only N members": expected for rare classes; a fold that
        # really lacks a class is reported by check_fold with what to do.
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        return [val for _, val in splits], scheme


def assign_folds(
    df: pd.DataFrame, n_folds: int = 5, seed: int = 0, grouped: bool = True
) -> pd.DataFrame:
    """Add an int ``fold`` column: 0..n_folds-1 for ``split == "train"`` rows, -1 otherwise.

    Args:
        df (DataFrame): a manifest.
        n_folds (int, default 5): number of folds (>= 2).
        seed (int, default 0): shuffling seed.
        grouped (bool, default True): keep each patient/lesion within one fold
            (``StratifiedGroupKFold``); False gives plain ``StratifiedKFold`` as in the thesis.
            Without any patient/lesion id the folds are plain stratified either way.

    Returns:
        A copy of ``df`` with ``fold``; ``df.attrs["fold_scheme"]`` names the scheme used
        ("stratified-group" or "stratified"), to be logged with the run.
    """
    if n_folds < 2:
        raise IsicInputError(f"n_folds={n_folds}: cross-validation needs at least 2 folds")
    out = df.copy()
    out["fold"] = -1
    train_pos = np.flatnonzero(_train_mask(out))
    if len(train_pos) == 0:
        raise IsicInputError("no rows with split == 'train' to assign folds to")
    vals, scheme = _kfold(out.iloc[train_pos], n_folds, seed, grouped)
    fold_col = out.columns.get_loc("fold")
    for k, val in enumerate(vals):
        out.iloc[train_pos[val], fold_col] = k
    out["fold"] = out["fold"].astype("int64")
    out.attrs["fold_scheme"] = scheme
    return out


def _train_mask(df: pd.DataFrame) -> pd.Series:
    if "split" not in df.columns:
        return pd.Series(True, index=df.index)
    return df["split"].astype(str) == "train"


def fold_split(df: pd.DataFrame, k: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, validation) rows of fold ``k``: validation is fold k, train every other fold."""
    if "fold" not in df.columns:
        raise IsicInputError("no `fold` column; call assign_folds or apply a folds CSV first")
    folds = sorted(int(f) for f in df["fold"].unique() if f >= 0)
    if k not in folds:
        raise IsicInputError(f"fold {k} does not exist; folds are {folds}")
    val = df["fold"] == k
    train = (df["fold"] >= 0) & ~val
    return df[train].reset_index(drop=True), df[val].reset_index(drop=True)


def fold_class_counts(df: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """Images per class in the training and validation part of every fold (the thesis's
    Table 5): one row per (fold, part) with a column per class and the total, so a reader
    sees that each fold keeps the class balance (or how far it strays) before reading the
    fold's metrics. Labels outside ``classes`` are counted under their own name, not dropped.
    """
    if "fold" not in df.columns:
        raise IsicInputError("no `fold` column; call assign_folds or apply a folds CSV first")
    labels = df["label_name"].astype(str)
    names = list(classes) + sorted(set(labels) - set(classes))
    rows = []
    for k in sorted(int(f) for f in df["fold"].unique() if f >= 0):
        val = df["fold"] == k
        for part, mask in (("train", (df["fold"] >= 0) & ~val), ("validation", val)):
            counts = labels[mask].value_counts()
            row = {"fold": k, "part": part, **{c: int(counts.get(c, 0)) for c in names}}
            rows.append({**row, "total": int(mask.sum())})
    return pd.DataFrame(rows, columns=["fold", "part", *names, "total"])


def check_fold(
    train_df: pd.DataFrame, val_df: pd.DataFrame, classes: Sequence[str], k: int | str
) -> None:
    """Raise when a class has no image in the training or the validation part of fold ``k``.

    Such a fold cannot train or score that class (AUC and per-class metrics are undefined).
    """
    n_train = train_df["label"].value_counts()
    n_val = val_df["label"].value_counts()
    for label, name in enumerate(classes):
        a, b = int(n_train.get(label, 0)), int(n_val.get(label, 0))
        if a == 0 or b == 0:
            part = "training" if a == 0 else "validation"
            raise IsicInputError(
                f"fold {k}: class {name!r} (label {label}) has no image in the {part} part "
                f"(train {a}, validation {b}); use fewer folds, grouped=False, or more data "
                "for that class"
            )


def _repair_missing_classes(
    df: pd.DataFrame, is_val: np.ndarray, groups: pd.Series | None
) -> np.ndarray:
    """Move whole groups so every class with >= 2 images appears on both sides of a split."""
    is_val = is_val.copy()
    labels = df["label"].to_numpy()
    keys = groups.to_numpy() if groups is not None else np.arange(len(df)).astype(str)
    for label in np.unique(labels):
        for to_val in (True, False):
            side = is_val if to_val else ~is_val  # where the class must appear
            if (labels[side] == label).any() or (labels == label).sum() < 2:
                continue
            donors = ~side & (labels == label)
            for g in pd.unique(keys[donors]):
                moved = keys == g
                left = ~side & ~moved & (labels == label)
                if left.any():  # the donor side keeps the class
                    is_val[moved] = to_val
                    break
    return is_val


def holdout_split(
    df: pd.DataFrame, val_fraction: float = 0.2, seed: int = 0, grouped: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One stratified (grouped) train/validation split of the ``split == "train"`` rows.

    Classes with at least two images are put on both sides, moving whole patients/lesions
    when the stratified split alone misses a rare class.
    """
    if not 0.0 < val_fraction < 1.0:
        raise IsicInputError(f"val_fraction={val_fraction} must lie strictly between 0 and 1")
    train = df[_train_mask(df)].reset_index(drop=True)
    n_splits = max(2, round(1.0 / val_fraction))
    groups = group_ids(train) if grouped else None
    try:
        vals, _ = _kfold(train, n_splits, seed, grouped)
    except IsicInputError:
        n_splits = 2  # tiny sets: fall back to halves, then repair
        vals, _ = _kfold(train, n_splits, seed, grouped)
    is_val = np.zeros(len(train), dtype=bool)
    is_val[vals[0]] = True
    is_val = _repair_missing_classes(train, is_val, groups)
    return train[~is_val].reset_index(drop=True), train[is_val].reset_index(drop=True)


def stratified_subset(
    df: pd.DataFrame,
    fraction: float,
    seed: int = 0,
    grouped: bool = True,
    min_per_class: int = 2,
) -> pd.DataFrame:
    """About ``fraction`` of the ``split == "train"`` rows, stratified by label.

    Used for the hyper-parameter search (10 % in the thesis). With ``grouped`` whole patients
    or lesions are drawn. Every class keeps at least ``min_per_class`` images (or all it has),
    so a holdout split of the subset still sees each class on both sides.
    """
    if not 0.0 < fraction <= 1.0:
        raise IsicInputError(f"fraction={fraction} must lie in (0, 1]")
    train = df[_train_mask(df)].reset_index(drop=True)
    if fraction >= 1.0 or len(train) == 0:
        return train
    n_splits = max(2, round(1.0 / fraction))
    try:
        vals, _ = _kfold(train, n_splits, seed, grouped)
        keep = np.zeros(len(train), dtype=bool)
        keep[vals[0]] = True
    except IsicInputError:  # fewer groups than splits: plain per-class sampling below
        keep = np.zeros(len(train), dtype=bool)
    rng = np.random.default_rng(seed)
    labels = train["label"].to_numpy()
    for label in np.unique(labels):
        have = int((keep & (labels == label)).sum())
        want = min(
            int((labels == label).sum()),
            max(min_per_class, round(fraction * (labels == label).sum())),
        )
        if have < want:
            pool = np.flatnonzero(~keep & (labels == label))
            keep[rng.choice(pool, size=want - have, replace=False)] = True
    return train[keep].reset_index(drop=True)


def write_folds_csv(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``image_id, fold`` so another model can be trained on identical folds."""
    if "fold" not in df.columns:
        raise IsicInputError("no `fold` column to write; call assign_folds first")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.loc[:, list(FOLDS_COLUMNS)].to_csv(path, index=False)
    return path


def split_digest(df: pd.DataFrame) -> str:
    """A short hash of the (image_id, fold) pairs: equal digests mean identical folds."""
    if "fold" not in df.columns:
        raise IsicInputError("no `fold` column; call assign_folds first")
    pairs = sorted(zip(df["image_id"].astype(str), df["fold"].astype(int)))
    text = "\n".join(f"{i},{f}" for i, f in pairs)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
