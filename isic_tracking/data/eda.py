"""Exploratory figures of a manifest's metadata (the thesis's data chapter).

Every figure is optional: a figure whose columns are missing or empty is left out, and
missing values of a category (sex, site) are shown as "unknown"; nothing here raises on
incomplete metadata.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from isic_tracking.data.manifest import BINARY_CLASSES, MULTICLASS_CLASSES

UNKNOWN = "unknown"


def _target(df: pd.DataFrame) -> pd.Series:
    """The class name of each row, as a plain string ("unknown" when missing)."""
    return df["label_name"].astype("object").where(df["label_name"].notna(), UNKNOWN).astype(str)


def _class_order(names: pd.Series) -> list[str]:
    """Classes in the canonical order of the task, others appended alphabetically."""
    present = set(names)
    for canon in (BINARY_CLASSES, MULTICLASS_CLASSES):
        if present <= set(canon):
            return [c for c in canon if c in present]
    return sorted(present)


def _category(df: pd.DataFrame, col: str) -> pd.Series:
    """A metadata column as strings with missing / blank values as "unknown"."""
    s = df[col].astype("object")
    s = s.where(s.notna(), UNKNOWN).astype(str).str.strip()
    return s.where(s != "", UNKNOWN)


def _has(df: pd.DataFrame, col: str) -> bool:
    return col in df.columns and bool(df[col].notna().any())


def _bar_counts(ax, counts: pd.Series, title: str, log: bool = False) -> None:
    bars = ax.bar([str(i) for i in counts.index], counts.to_numpy(), color="tab:blue")
    ax.bar_label(bars, labels=[f"{int(v):,}" for v in counts.to_numpy()], fontsize=8)
    ax.set_title(title)
    ax.set_ylabel("images")
    if log:
        ax.set_yscale("log")
    ax.tick_params(axis="x", labelrotation=30)


def _share_by_target(df: pd.DataFrame, col: str, title: str, horizontal: bool = False) -> Figure:
    """Grouped bars: within each class, the share of each category of ``col``."""
    target = _target(df)
    cat = _category(df, col)
    table = pd.crosstab(cat, target, normalize="columns")[_class_order(target)]
    table = table.loc[table.sum(axis=1).sort_values(ascending=False).index]
    fig = Figure(figsize=(8, 0.35 * len(table) + 2.5) if horizontal else (7, 4))
    ax = fig.subplots()
    n_t = table.shape[1]
    width = 0.8 / n_t
    pos = np.arange(len(table))
    for j, name in enumerate(table.columns):
        n = int((target == name).sum())
        vals = table[name].to_numpy() * 100
        if horizontal:
            ax.barh(pos + j * width, vals, height=width, label=f"{name} (n={n:,})")
        else:
            ax.bar(pos + j * width, vals, width=width, label=f"{name} (n={n:,})")
    ticks = pos + width * (n_t - 1) / 2
    if horizontal:
        ax.set_yticks(ticks, table.index)
        ax.invert_yaxis()
        ax.set_xlabel("% of the class's images")
    else:
        ax.set_xticks(ticks, table.index)
        ax.set_ylabel("% of the class's images")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def class_frequency_figure(df: pd.DataFrame) -> Figure:
    """Images per class, one bar group per split (train / test)."""
    target = _target(df)
    split = _category(df, "split") if "split" in df.columns else pd.Series("all", index=df.index)
    table = pd.crosstab(target, split).loc[_class_order(target)]
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    width = 0.8 / table.shape[1]
    pos = np.arange(len(table))
    for j, s in enumerate(table.columns):
        bars = ax.bar(pos + j * width, table[s].to_numpy(), width=width, label=s)
        ax.bar_label(bars, fontsize=8)
    ax.set_xticks(pos + width * (table.shape[1] - 1) / 2, table.index)
    ax.set_ylabel("images")
    ax.set_title("Class frequency")
    ax.legend(title="split", fontsize=8)
    fig.tight_layout()
    return fig


def multiclass_frequency_figure(df: pd.DataFrame) -> Figure:
    """Images of each of the 8 ISIC 2019 classes, in the official order, zero bars included."""
    counts = _target(df).value_counts().reindex(list(MULTICLASS_CLASSES), fill_value=0)
    fig = Figure(figsize=(7, 4))
    _bar_counts(fig.subplots(), counts, "Multiclass frequency (ISIC 2019 classes)")
    fig.tight_layout()
    return fig


def age_figure(df: pd.DataFrame) -> Figure:
    """Age histogram of each class (density, so small classes stay visible)."""
    target = _target(df)
    age = pd.to_numeric(df["age"], errors="coerce")
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    finite = age.dropna()
    bins = np.arange(np.floor(finite.min() / 5) * 5, finite.max() + 10, 5)
    for name in _class_order(target):
        a = age[(target == name) & age.notna()]
        if len(a):
            ax.hist(
                a, bins=bins, density=True, histtype="step", lw=2, label=f"{name} (n={len(a):,})"
            )
    n_missing = int(age.isna().sum())
    ax.set_xlabel("age (years)" + (f"; {n_missing:,} unknown" if n_missing else ""))
    ax.set_ylabel("density")
    ax.set_title("Age distribution by class")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def image_size_figure(df: pd.DataFrame) -> Figure:
    """Scatter of the original image widths and heights, with how many images share a size."""
    sizes = df[["width", "height"]].apply(pd.to_numeric, errors="coerce").dropna()
    counts = sizes.value_counts().reset_index(name="n")
    fig = Figure(figsize=(6, 5))
    ax = fig.subplots()
    sc = ax.scatter(
        counts["width"],
        counts["height"],
        s=10 + 90 * np.sqrt(counts["n"] / counts["n"].max()),
        c=np.log10(counts["n"]),
        cmap="viridis",
    )
    fig.colorbar(sc, ax=ax, label="log10(images)")
    ax.set_xlabel("width (px)")
    ax.set_ylabel("height (px)")
    ax.set_title(f"Original image sizes ({len(counts)} distinct)")
    fig.tight_layout()
    return fig


def source_figure(df: pd.DataFrame) -> Figure:
    """Images per source, split into internal and external (merged-in) images."""
    source = _category(df, "source")
    ext = (
        df["is_external"].astype("boolean").fillna(False)
        if "is_external" in df.columns
        else pd.Series(False, index=df.index)
    )
    table = pd.crosstab(source, ext.map({True: "external", False: "internal"}))
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    bottom = np.zeros(len(table))
    for col in table.columns:
        bars = ax.bar(table.index, table[col].to_numpy(), bottom=bottom, label=col)
        ax.bar_label(bars, label_type="center", fontsize=8)
        bottom += table[col].to_numpy()
    ax.set_ylabel("images")
    ax.set_title("Images per source")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def eda_figures(df: pd.DataFrame) -> dict[str, Figure]:
    """Metadata figures of a manifest, keyed by a file-name-safe name.

    Keys (each only when its data exist): ``class_frequency``, ``multiclass_frequency``
    (manifests of the 8 ISIC 2019 classes), ``age_by_class``, ``sex_by_class``,
    ``site_by_class``, ``image_sizes`` (``width``/``height`` columns), ``sources``.
    """
    if df.empty or "label_name" not in df.columns:
        return {}
    figs: dict[str, Figure] = {"class_frequency": class_frequency_figure(df)}
    names = set(_target(df))
    if names <= set(MULTICLASS_CLASSES) and not names <= set(BINARY_CLASSES):
        figs["multiclass_frequency"] = multiclass_frequency_figure(df)
    if _has(df, "age") and pd.to_numeric(df["age"], errors="coerce").notna().any():
        figs["age_by_class"] = age_figure(df)
    if _has(df, "sex"):
        figs["sex_by_class"] = _share_by_target(df, "sex", "Sex by class")
    if _has(df, "site"):
        figs["site_by_class"] = _share_by_target(
            df, "site", "Anatomic site by class", horizontal=True
        )
    if _has(df, "width") and _has(df, "height"):
        sizes = df[["width", "height"]].apply(pd.to_numeric, errors="coerce").dropna()
        if len(sizes):
            figs["image_sizes"] = image_size_figure(df)
    if _has(df, "source"):
        figs["sources"] = source_figure(df)
    return figs
