"""Class- and group-specific filters (thesis §5.4.1, Fig. 26, Table 10), Jaccard overlap,
artifact recovery.

A filter "fires" on an image when the image's max activation of that filter exceeds the
filter's own quantile (default 0.95) over all images of the split. For each group of images
(a class, or an artifact group such as hair or ruler) the firing images are counted and
normalized to percentages of the group's images; the filters with the highest percentages
are the group's specific filters. Comparing the top filters of artifact groups with those
of classes (Jaccard index) tells outlier-specific filters from class-specific ones.

Only live filters are ranked (:mod:`.liveness`): a dead or constant filter never appears in a
top table nor as the best filter of a recovery AUC; the percentages keep every filter.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from torch import Tensor

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.liveness import live_mask, max_matrix

#: Group value meaning "no artifact" (synthetic truth, z-score detector): never a group.
NO_GROUP: tuple[str, ...] = ("none", "", "nan", "<NA>")


def labels_array(labels: Tensor | np.ndarray | Sequence[int]) -> np.ndarray:
    if isinstance(labels, Tensor):
        labels = labels.detach().cpu().numpy()
    return np.asarray(labels).reshape(-1).astype(np.int64)


def filter_thresholds(max_acts: Tensor | np.ndarray, quantile: float = 0.95) -> np.ndarray:
    """Per-filter threshold: the ``quantile`` of the filter's max activation over all images.

    numpy rather than ``torch.quantile``, which refuses inputs over 2**24 elements.
    """
    if not 0.0 < quantile < 1.0:
        raise IsicInputError(f"quantile must lie in (0, 1), got {quantile}")
    return np.quantile(max_matrix(max_acts), quantile, axis=0)


def membership(groups: pd.Series | pd.DataFrame, n: int | None = None) -> pd.DataFrame:
    """Boolean ``[images, groups]`` table from a column of group names or a boolean table.

    A Series holds one name per image; ``"a|b"`` puts an image in two groups; ``none``/empty/NA
    puts it in none. A DataFrame is taken as already boolean (one column per group).
    """
    if isinstance(groups, pd.DataFrame):
        table = groups.astype(bool).reset_index(drop=True)
    else:
        s = pd.Series(groups).reset_index(drop=True)
        s = s.astype("string").fillna("none").str.strip()
        table = s.str.get_dummies(sep="|").astype(bool)
        table = table.drop(columns=[c for c in table.columns if c in NO_GROUP])
    if n is not None and len(table) != n:
        raise IsicInputError(f"{len(table)} group entries for {n} images: they must match")
    table.columns = [str(c) for c in table.columns]
    return table


def filter_percentages(
    max_acts: Tensor | np.ndarray,
    groups: pd.Series | pd.DataFrame,
    quantile: float = 0.95,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per group and filter: how many of the group's images exceed the filter's threshold.

    Args:
        max_acts: ``[N, C]`` per-image max activation (``LayerStats.max``).
        groups: group of each image (see :func:`membership`).
        quantile: threshold quantile per filter over all N images (default 0.95).

    Returns:
        ``(occurrences, percent)``: two ``[groups, C]`` DataFrames (index = group names,
        columns = filter indices); percent is occurrences / group size * 100.
    """
    acts = max_matrix(max_acts)
    member = membership(groups, acts.shape[0])
    fires = acts > filter_thresholds(acts, quantile)[None, :]  # [N, C]
    m = member.to_numpy(dtype=np.float64)  # [N, G]
    occ = m.T @ fires.astype(np.float64)  # [G, C]
    sizes = m.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = np.where(sizes[:, None] > 0, occ / sizes[:, None] * 100.0, np.nan)
    cols = pd.RangeIndex(acts.shape[1], name="filter")
    idx = pd.Index(member.columns, name="group")
    return (
        pd.DataFrame(occ.astype(np.int64), index=idx, columns=cols),
        pd.DataFrame(pct, index=idx, columns=cols),
    )


def group_mean_z(max_acts: Tensor | np.ndarray, groups: pd.Series | pd.DataFrame) -> pd.DataFrame:
    """Mean over each group's images of every filter's standardized max activation.

    ``z = (a - mean_f) / std_f`` over all images (0 for a constant filter). The quantile count
    is coarse on small splits (5 % of 80 images is 4 images, so many filters tie at the same
    percentage); this continuous score breaks those ties.

    Returns:
        ``[groups, C]`` DataFrame.
    """
    acts = max_matrix(max_acts)
    member = membership(groups, acts.shape[0])
    sd = acts.std(axis=0)
    z = (acts - acts.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    m = member.to_numpy(dtype=np.float64)
    sizes = m.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mz = np.where(sizes[:, None] > 0, (m.T @ z) / sizes[:, None], np.nan)
    cols = pd.RangeIndex(acts.shape[1], name="filter")
    return pd.DataFrame(mz, index=pd.Index(member.columns, name="group"), columns=cols)


TOP_COLUMNS = ["filter", "occurrences", "percent", "rank", "mean_z"]
RECOVERY_COLUMNS = ["artifact", "filter", "auc", "best_filter", "best_auc", "n_pos", "n_neg"]


def _top_table(
    occ: pd.DataFrame,
    pct: pd.DataFrame,
    mz: pd.DataFrame,
    top_n: int,
    key: str,
    live: np.ndarray,
) -> pd.DataFrame:
    """Long table of the ``top_n`` live filters per group: percent first, ties broken by the
    group's mean z-score, then by the lower filter index (fewer rows when fewer are live)."""
    if top_n < 1:
        raise IsicInputError(f"top_n must be >= 1, got {top_n}")
    candidates = np.flatnonzero(live)
    rows = []
    for g in pct.index:
        p, z = pct.loc[g].to_numpy(), mz.loc[g].to_numpy()
        pc, zc = p[candidates], z[candidates]
        order = candidates[np.lexsort((candidates, -zc, -pc))[:top_n]]  # last key: primary
        for rank, f in enumerate(order, start=1):
            rows.append((g, int(f), int(occ.loc[g].iloc[f]), float(p[f]), rank, float(z[f])))
    return pd.DataFrame(rows, columns=[key, *TOP_COLUMNS])


def ranked_layer(
    acts: np.ndarray, member: pd.DataFrame, quantile: float, top_n: int, key: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(top table of the live filters, percent table of all) of one layer for ``member``'s
    groups."""
    occ, pct = filter_percentages(acts, member, quantile)
    return _top_table(occ, pct, group_mean_z(acts, member), top_n, key, live_mask(acts)), pct


def class_specific_filters(
    max_acts: Tensor | np.ndarray,
    labels: Tensor | np.ndarray | Sequence[int],
    class_names: Sequence[str],
    quantile: float = 0.95,
    top_n: int = 5,
    *,
    split: str = "the split",
) -> pd.DataFrame:
    """Top-N live class-specific filters (thesis §5.4.1, Table 10).

    Args:
        max_acts: ``[N, C]`` per-image max activation of one layer.
        labels: ``[N]`` class index of each image (index into ``class_names``).
        class_names: names of the classes, index = label.
        quantile: per-filter threshold quantile over all images (default 0.95).
        top_n: filters kept per class (default 5).
        split: name of the split, for the error message.

    Returns:
        DataFrame ``class, filter, occurrences, percent, rank, mean_z`` (``top_n`` rows per
        class, in the order of ``class_names``; ``mean_z`` breaks ties, see
        :func:`group_mean_z`).

    Raises:
        IsicInputError: a class has no image in the split, or a label is out of range.
    """
    check_classes_present(labels, class_names, split)
    lab = labels_array(labels)
    names = [str(c) for c in class_names]
    member = pd.DataFrame({n: lab == i for i, n in enumerate(names)})
    return ranked_layer(max_matrix(max_acts), member, quantile, top_n, "class")[0]


def group_specific_filters(
    max_acts: Tensor | np.ndarray,
    groups: pd.Series | pd.DataFrame,
    quantile: float = 0.95,
    top_n: int = 5,
    *,
    min_images: int = 1,
) -> pd.DataFrame:
    """Top-N live filters of image groups beyond classes (artifacts: hair, ruler, sticker, ...).

    Args:
        max_acts: ``[N, C]`` per-image max activation of one layer.
        groups: a Series of group names per image (manifest or synthetic ``artifact`` column,
            ``none`` = no group, ``a|b`` = two groups) or a boolean ``[N, groups]`` table (the
            z-score detector's flags).
        quantile: per-filter threshold quantile over all images (default 0.95).
        top_n: filters kept per group (default 5).
        min_images: groups with fewer images are left out (their percentages are noise).

    Returns:
        DataFrame ``group, filter, occurrences, percent, rank, mean_z``; empty when no group
        has ``min_images`` images.
    """
    acts = max_matrix(max_acts)
    member = membership(groups, acts.shape[0])
    member = member.loc[:, member.sum(axis=0) >= max(min_images, 1)]
    if member.shape[1] == 0:
        return pd.DataFrame(columns=["group", *TOP_COLUMNS])
    return ranked_layer(acts, member, quantile, top_n, "group")[0]


def _filter_sets(top: pd.DataFrame) -> dict[str, set]:
    key = top.columns[0]
    cols = ["layer", "filter"] if "layer" in top.columns else ["filter"]
    return {
        str(g): set(map(tuple, d[cols].itertuples(index=False)))
        for g, d in top.groupby(key, sort=False)
    }


def jaccard_overlap(top_a: pd.DataFrame, top_b: pd.DataFrame | None = None) -> pd.DataFrame:
    """Jaccard index ``|A & B| / |A | B|`` between the top-filter sets of groups.

    Args:
        top_a: a top table (first column = group key, e.g. from :func:`class_specific_filters`);
            with a ``layer`` column, filters are ``(layer, filter)`` pairs.
        top_b: another top table (e.g. :func:`group_specific_filters`); default ``top_a``.

    Returns:
        DataFrame with ``top_a``'s groups as index and ``top_b``'s as columns.
    """
    a = _filter_sets(top_a)
    b = _filter_sets(top_b if top_b is not None else top_a)
    data = [
        [len(sa & sb) / len(sa | sb) if sa | sb else np.nan for sb in b.values()]
        for sa in a.values()
    ]
    return pd.DataFrame(data, index=pd.Index(list(a), name=top_a.columns[0]), columns=list(b))


def rank_auc(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """ROC AUC of every column of ``scores`` ``[N, C]`` for the boolean ``positive`` ``[N]``.

    Mann-Whitney U from average ranks (ties count half), vectorized over the columns.
    """
    pos = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return np.full(scores.shape[1], np.nan)
    ranks = rankdata(scores, axis=0)
    return (ranks[pos].sum(axis=0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def artifact_recovery_auc(
    max_acts: Tensor | np.ndarray,
    groups: pd.Series | pd.DataFrame,
    quantile: float = 0.95,
    top: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """How well each artifact group's top filter recovers "has this artifact".

    The top filter (rank 1 of :func:`group_specific_filters`, or of ``top``) is chosen on the
    same images the AUC is measured on, so the AUC is optimistic for tiny groups;
    ``best_auc`` (the best single live filter of the layer) is the ceiling for comparison.

    Returns:
        DataFrame ``artifact, filter, auc, best_filter, best_auc, n_pos, n_neg``: AUC of the
        top filter's max activation, images of the group vs every other image.
    """
    acts = max_matrix(max_acts)
    member = membership(groups, acts.shape[0])
    if top is None:
        top = group_specific_filters(acts, member, quantile, top_n=1)
    first = top[top["rank"] == 1].set_index(top.columns[0])["filter"]
    live = live_mask(acts)
    rows = []
    for g in member.columns:
        if g not in first.index:
            continue
        pos = member[g].to_numpy()
        aucs = np.where(live, rank_auc(acts, pos), np.nan)
        f = int(first[g])
        best = int(np.nanargmax(aucs)) if np.isfinite(aucs).any() else -1
        rows.append(
            (g, f, float(aucs[f]), best, float(aucs[best]), int(pos.sum()), int((~pos).sum()))
        )
    return pd.DataFrame(rows, columns=RECOVERY_COLUMNS)


def check_classes_present(
    labels: Tensor | np.ndarray | Sequence[int], class_names: Sequence[str], split: str
) -> None:
    """Raise :class:`IsicInputError` naming every class without an image in ``split`` (and
    labels outside the class list), before any expensive pass over the images."""
    lab = labels_array(labels)
    names = [str(c) for c in class_names]
    if lab.size and (lab.min() < 0 or lab.max() >= len(names)):
        raise IsicInputError(f"labels must lie in 0..{len(names) - 1} for classes {names}")
    counts = np.bincount(lab, minlength=len(names))
    empty = [n for n, k in zip(names, counts) if k == 0]
    if empty:
        raise IsicInputError(
            f"class {', '.join(map(repr, empty))} has no images in {split}: pick a split that "
            "holds every class (e.g. split=all) or a manifest with images of that class"
        )
