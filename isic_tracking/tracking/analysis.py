"""Which natural images an analysis stage (filters, sanity, visualize) looks at."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import pandas as pd

from isic_tracking.data.manifest import read_manifest
from isic_tracking.errors import IsicInputError
from isic_tracking.tracking.registry import LoadedModel, training_manifest, training_split

if TYPE_CHECKING:
    from isic_tracking.data.decoded import DecodedImages


def split_rows(
    loaded: LoadedModel,
    manifest: str | None,
    split: str,
    fallback_manifest: Callable[[], str] | None = None,
) -> tuple[pd.DataFrame, str]:
    """(rows of ``split``, manifest path) for a model's analysis.

    Args:
        loaded: the analysed model; its training run supplies the default manifest and folds.
        manifest: explicit manifest path, else the training run's.
        split: ``valK`` (validation images of fold K of the training run, the thesis's
            choice with K=0), ``train``, ``test`` or ``all``.
        fallback_manifest: called for the manifest when the model has no training run
            (e.g. ``pretrained:<arch>``); without it that case is an error.
    """
    path = manifest
    if path is None:
        if loaded.train_run_id:
            path = training_manifest(loaded.train_run_id)
        elif fallback_manifest is not None:
            path = fallback_manifest()
        else:
            raise IsicInputError(
                f"model {loaded.uri} has no training run to take the manifest from: "
                "pass manifest=<path to manifest.csv>"
            )
    df = read_manifest(path)
    if split == "all":
        rows = df
    elif split in ("train", "test"):
        rows = df[df["split"] == split]
    elif re.fullmatch(r"val\d+", split):
        if loaded.train_run_id is None:
            raise IsicInputError(
                f"split={split} needs the folds of a training run, and {loaded.uri} has "
                "none: use split=train, test or all"
            )
        folds = training_split(loaded.train_run_id)
        ids = set(folds.loc[folds["fold"] == int(split[3:]), "image_id"].astype(str))
        if not ids:
            raise IsicInputError(
                f"training run {loaded.train_run_id} has no fold {split[3:]}; folds: "
                f"{sorted(folds['fold'].unique().tolist())}"
            )
        rows = df[df["image_id"].astype(str).isin(ids)]
    else:
        raise IsicInputError(f"unknown split {split!r}; use valK (e.g. val0), train, test or all")
    if rows.empty:
        raise IsicInputError(f"split {split!r} of {path} has no images")
    return rows.reset_index(drop=True), str(path)


def _natural_rows(
    loaded: LoadedModel, manifest: str | None, split: str, default_split: str
) -> tuple[pd.DataFrame | None, str]:
    """The analysed rows of ``split`` and what they are, or ``(None, why)`` (see
    :func:`natural_images`)."""
    split = split.strip()
    if split == "none":
        return None, "none (split=none)"
    try:
        rows, path = split_rows(loaded, manifest, split)
    except IsicInputError as err:
        if split != default_split:
            raise
        if not manifest:
            return None, f"none ({err}; pass manifest= and split= to compare)"
        split = "all"
        rows, path = split_rows(loaded, manifest, split)
    return rows, f"{len(rows)} images of split {split!r} of {path}"


def natural_images(
    loaded: LoadedModel,
    manifest: str | None,
    split: str,
    size: int,
    batch_size: int,
    default_split: str,
) -> tuple[DecodedImages | None, str]:
    """The analysed natural images of ``split``, decoded once into a scratch file (close it,
    or use it in a ``with`` block), each pass yielding ``(images in [0, 1] at ``size``,
    labels, row indices)``; and what they are. ``(None, why)`` for ``split=none``. When
    ``default_split`` cannot be had (a model without a training run and folds) an explicit
    ``manifest`` is used whole, and without one there are none (the run says why); an
    explicit split must work."""
    from isic_tracking.data.decoded import DecodedImages

    rows, about = _natural_rows(loaded, manifest, split, default_split)
    if rows is None:
        return None, about
    return DecodedImages(rows, size, mean=None, std=None, batch_size=batch_size), about
