"""``make_synthetic``: plan every layout, paint its images and write its CSV tables and truth."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from isic_tracking.data.sources.constants import (
    MASK_DIR,
    NEAR_DUPLICATES_FILE,
    SHORTCUT_FILE,
    TRUTH_FILE,
    TRUTH_HEADER,
)
from isic_tracking.data.synthetic.layouts import plan_isic2016, plan_isic2019, plan_isic2020
from isic_tracking.data.synthetic.masks import write_mask
from isic_tracking.data.synthetic.near_duplicates import plant_near_duplicates
from isic_tracking.data.synthetic.painting import SKIN_TONES, render_with_masks
from isic_tracking.data.synthetic.shortcut import (
    SHORTCUT_STREAM,
    plant_shortcut,
    shortcut_from_options,
    shortcut_summary,
)
from isic_tracking.errors import IsicInputError
from isic_tracking.utils import progress

MIN_N_IMAGES = 16
MIN_IMAGE_SIZE = 32
JPEG_QUALITY = 90


def _check_folder(folder: Path, overwrite: bool) -> bool:
    """True when ``folder`` holds an earlier synthetic set to replace; an error when it holds
    anything else (nothing outside our own output is ever deleted)."""
    if not folder.exists() or not any(folder.iterdir()):
        return False
    if not (folder / TRUTH_FILE).is_file():
        raise IsicInputError(
            f"{folder} exists and was not written by make_synthetic (no {TRUTH_FILE}); "
            "choose an empty or new output folder"
        )
    if not overwrite:
        raise IsicInputError(f"{folder} already holds a synthetic set; pass overwrite=True")
    return True


def _write_csv(table: pd.DataFrame, path: Path, header: bool) -> None:
    table.to_csv(path, index=False, header=header, lineterminator="\n")


_LAYOUT_CODES = {"isic2020": 0, "isic2019": 1, "isic2016": 2}


def make_synthetic(
    out: str | Path,
    n_images: int = 240,
    seed: int = 0,
    image_size: int = 128,
    overwrite: bool = True,
    shortcut_artifact: str | None = None,
    shortcut_rate: float = 0.9,
    near_duplicates: int = 0,
) -> dict[str, Path]:
    """Write the synthetic ISIC 2020, 2019 and 2016 layouts under ``out`` (see module docstring).

    Args:
        out: output folder (created). A layout folder already there is replaced only when it
            holds a ``synthetic_truth.csv`` (an earlier synthetic set).
        n_images: ISIC 2020 rows; 2019 gets max(n, 64), 2016 max(n // 4, 8). At least 16.
        seed: every random choice derives from it; same seed, same bytes.
        image_size: side of the square images in pixels (2016 and ``_downsampled`` 2019 images
            are 4:3). At least 32.
        overwrite: replace an earlier synthetic set in ``out``.
        shortcut_artifact: one of ``ARTIFACTS`` to plant as a shortcut (see
            :mod:`.shortcut`); None or "none" (the default) writes the set unchanged.
        shortcut_rate: the fraction in [0, 1] of malignant images that carry it (benign: none).
        near_duplicates: pairs of cropped, resized, re-encoded copies to plant across layouts (see
            :mod:`.near_duplicates`); 0 (the default) writes the set unchanged.

    Returns:
        ``{"isic2020": path, "isic2019": path, "isic2016": path}``, the layout folders, ready
        for :func:`isic_tracking.data.sources.read_source` (or ``read_source("synthetic", out)``).
    """
    if int(n_images) < MIN_N_IMAGES:
        raise IsicInputError(f"n_images={n_images}: use at least {MIN_N_IMAGES}")
    if int(image_size) < MIN_IMAGE_SIZE:
        raise IsicInputError(f"image_size={image_size}: use at least {MIN_IMAGE_SIZE} pixels")
    if int(seed) < 0:
        raise IsicInputError(f"seed={seed}: use a non-negative integer")
    shortcut = shortcut_from_options(shortcut_artifact, shortcut_rate)
    n, size, seed = int(n_images), int(image_size), int(seed)
    out = Path(out)
    plans = [
        plan_isic2020(np.random.default_rng([seed, 0]), n, size),
        plan_isic2019(np.random.default_rng([seed, 1]), max(n, 64), size),
        plan_isic2016(np.random.default_rng([seed, 2]), max(n // 4, 8), size),
    ]
    replace = {plan.name: _check_folder(out / plan.name, overwrite) for plan in plans}
    folders: dict[str, Path] = {}
    for plan in plans:
        folder = out / plan.name
        if replace[plan.name]:
            shutil.rmtree(folder)
        image_dir = folder / plan.image_dir
        image_dir.mkdir(parents=True, exist_ok=True)
        mask_dir = folder / MASK_DIR
        mask_dir.mkdir()
        code = _LAYOUT_CODES[plan.name]
        if shortcut is not None:
            rng = np.random.default_rng([seed, code, SHORTCUT_STREAM])
            plan.images = plant_shortcut(plan.images, shortcut, rng)
            summary = shortcut_summary(plan.images, shortcut)
            (folder / SHORTCUT_FILE).write_text(json.dumps(summary, indent=2) + "\n")
        originals = plan.images[plan.images["copy_of"].isna()]
        for row in progress(
            originals.itertuples(index=False), total=len(originals), desc=f"synth {plan.name}"
        ):
            rng = np.random.default_rng([seed, code, 1 + int(row.key)])
            arr, masks = render_with_masks(
                rng, row.kind, int(row.height), int(row.width), SKIN_TONES[row.tone], row.artifact
            )
            Image.fromarray(arr).save(image_dir / f"{row.stem}.jpg", quality=JPEG_QUALITY)
            write_mask(mask_dir / f"{row.stem}.png", masks, arr.shape[:2])
        for row in plan.images[plan.images["copy_of"].notna()].itertuples(index=False):
            shutil.copyfile(image_dir / f"{row.copy_of}.jpg", image_dir / f"{row.stem}.jpg")
            shutil.copyfile(mask_dir / f"{row.copy_of}.png", mask_dir / f"{row.stem}.png")
        for name, (table, header) in plan.tables.items():
            _write_csv(table, folder / name, header)
        truth = plan.images.sort_values("image_id")[list(TRUTH_HEADER)]
        _write_csv(truth, folder / TRUTH_FILE, True)
        folders[plan.name] = folder
    (out / NEAR_DUPLICATES_FILE).unlink(missing_ok=True)  # an earlier set's truth
    if int(near_duplicates):
        plant_near_duplicates(out, int(near_duplicates), seed)
    return folders
