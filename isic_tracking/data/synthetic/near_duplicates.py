"""Planted near-duplicates: cropped, resized, re-encoded copies of written images under new
ids, placed in another layout so that they cross splits and sources, recorded as truth.

The real sets share images: ISIC 2019 contains re-encoded and downsampled 2017/2018 images,
2020 re-uploads, 2016 test images return in later training sets. ``plant_near_duplicates``
imitates that on a finished synthetic set, after :func:`.generate.make_synthetic` wrote it,
so the rest of the set is byte-identical with or without planting. Pair ``k`` goes, in turn:

- ``isic2020 -> isic2016``: a training image reappears in the test set (other source);
- ``isic2016 -> isic2020``: a test image reappears in training;
- ``isic2019 -> isic2019``: a copy under a new id with no lesion id (inside one source: the
  8-class task, whose folds it crosses).

Each copy is the original with a random 2-8 % (``CROP``) trimmed off one or two of its edges,
then rescaled by a factor in [0.75, 1.25] (Lanczos) and saved at JPEG quality 60-85 (the set
is written at 90); its row copies the original's label, with a new patient (2020) or no lesion
id (2019), and its artifact truth is the original's (a crop may cut an edge artifact a little).
The pairs go to ``<out>/synthetic_near_duplicates.csv`` with what was done to each copy: the
fraction trimmed off each edge (``crop_left``, ``crop_top``, ``crop_right``, ``crop_bottom``),
the ``scale`` and the ``jpeg_quality`` (``NEAR_DUPLICATES_HEADER``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from isic_tracking.data.sources.constants import (
    ISIC2016_TEST_CSV,
    ISIC2016_TEST_HEADER,
    ISIC2016_TEST_IMAGE_DIR,
    ISIC2019_GT_CSV,
    ISIC2019_IMAGE_DIR,
    ISIC2019_META_CSV,
    ISIC2020_CSV,
    ISIC2020_DUPLICATES_CSV,
    ISIC2020_IMAGE_DIR,
    NEAR_DUPLICATES_FILE,
    NEAR_DUPLICATES_HEADER,
    TRUTH_FILE,
)
from isic_tracking.errors import IsicInputError

#: (from layout, to layout) of pair k, in turn.
DIRECTIONS: tuple[tuple[str, str], ...] = (
    ("isic2020", "isic2016"),
    ("isic2016", "isic2020"),
    ("isic2019", "isic2019"),
)
IMAGE_DIRS = {
    "isic2020": ISIC2020_IMAGE_DIR,
    "isic2019": ISIC2019_IMAGE_DIR,
    "isic2016": ISIC2016_TEST_IMAGE_DIR,
}
QUALITY = (60, 85)
SCALE = (0.75, 1.25)
#: Fraction of the width (height) trimmed off each cropped edge; one or two edges per copy.
CROP = (0.02, 0.08)
EDGES: tuple[str, ...] = ("left", "top", "right", "bottom")
NEAR_DUPLICATE_STREAM = 7  # random stream of the planting, apart from the layouts' own


def _read(path: Path, header: bool = True) -> pd.DataFrame:
    names = None if header else list(ISIC2016_TEST_HEADER)
    return pd.read_csv(
        path, dtype=str, keep_default_na=False, header=0 if header else None, names=names
    )


def _write(table: pd.DataFrame, path: Path, header: bool = True) -> None:
    table.to_csv(path, index=False, header=header, lineterminator="\n")


def _labels(out: Path) -> dict[str, pd.Series]:
    """Per layout: binary label ("0"/"1") of each plantable original (index = id)."""
    t20 = _read(out / "isic2020" / ISIC2020_CSV)
    dup = _read(out / "isic2020" / ISIC2020_DUPLICATES_CSV)
    t20 = t20[~t20["image_name"].isin(set(dup["image_name_1"]) | set(dup["image_name_2"]))]
    t16 = _read(out / "isic2016" / ISIC2016_TEST_CSV, header=False)
    t19 = _read(out / "isic2019" / ISIC2019_GT_CSV)
    t19 = t19[~t19["image"].str.endswith("_downsampled")]
    return {
        "isic2020": t20.set_index("image_name")["target"],
        "isic2016": t16.set_index("image")["label"].map(lambda v: str(int(float(v)))),
        "isic2019": t19.set_index("image")["MEL"],
    }


def _new_ids(rng: np.random.Generator, n: int, taken: set[str]) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        cand = f"ISIC_{int(rng.integers(0, 10_000_000)):07d}"
        if cand not in taken:
            taken.add(cand)
            out.append(cand)
    return out


def _crop_box(rng: np.random.Generator) -> dict[str, float]:
    """Fractions trimmed off each edge: a random ``CROP`` fraction off one or two edges."""
    edges = rng.choice(len(EDGES), size=int(rng.integers(1, 3)), replace=False)
    trim = dict.fromkeys(EDGES, 0.0)
    for e in sorted(int(k) for k in edges):
        trim[EDGES[e]] = round(float(rng.uniform(*CROP)), 4)
    return trim


def _copy_image(
    src: Path, dst: Path, rng: np.random.Generator
) -> tuple[dict[str, float], float, int]:
    """Write the cropped, rescaled, re-encoded copy; return (trim per edge, scale, quality)."""
    img = Image.open(src).convert("RGB")
    trim = _crop_box(rng)
    box = (
        round(trim["left"] * img.width),
        round(trim["top"] * img.height),
        img.width - round(trim["right"] * img.width),
        img.height - round(trim["bottom"] * img.height),
    )
    img = img.crop(box)
    scale = float(rng.uniform(*SCALE))
    size = (max(8, round(img.width * scale)), max(8, round(img.height * scale)))
    quality = int(rng.integers(QUALITY[0], QUALITY[1] + 1))
    img.resize(size, Image.Resampling.LANCZOS).save(dst, quality=quality)
    return trim, round(scale, 4), quality


def _add_row(out: Path, layout: str, new: str, original: str, label: str, k: int) -> None:
    """Append the copy's row to the target layout's official table(s)."""
    folder = out / layout
    if layout == "isic2016":
        table = _read(folder / ISIC2016_TEST_CSV, header=False)
        row = pd.DataFrame({"image": [new], "label": [f"{int(label)}.0"]})
        _write(pd.concat([table, row]).sort_values("image"), folder / ISIC2016_TEST_CSV, False)
    elif layout == "isic2020":
        table = _read(folder / ISIC2020_CSV)
        malignant = label == "1"
        row = {c: "" for c in table.columns} | {
            "image_name": new,
            "patient_id": f"IP_copy{k:04d}",
            "diagnosis": "melanoma" if malignant else "unknown",
            "benign_malignant": "malignant" if malignant else "benign",
            "target": label,
        }
        table = pd.concat([table, pd.DataFrame([row])]).sort_values("image_name")
        _write(table, folder / ISIC2020_CSV)
    else:
        for name in (ISIC2019_GT_CSV, ISIC2019_META_CSV):
            table = _read(folder / name)
            row = table[table["image"] == original].assign(image=new)
            if "lesion_id" in row.columns:
                row = row.assign(lesion_id="")
            _write(pd.concat([table, row]).sort_values("image"), folder / name)


def _add_truth(out: Path, layout: str, new: str, artifact: str) -> None:
    path = out / layout / TRUTH_FILE
    truth = _read(path)
    row = pd.DataFrame({"image_id": [new], "artifact": [artifact]})
    _write(pd.concat([truth, row]).sort_values("image_id"), path)


def plant_near_duplicates(out: str | Path, n: int, seed: int = 0) -> pd.DataFrame:
    """Plant ``n`` near-duplicate pairs into the synthetic set at ``out`` (see module doc).

    Args:
        out: a folder written by ``make_synthetic``.
        n: pairs to plant (at least 0); each original is copied at most once.
        seed: with ``n``, fixes every choice.

    Returns:
        The truth table (``NEAR_DUPLICATES_HEADER``), also written to
        ``out/synthetic_near_duplicates.csv``.
    """
    out = Path(out)
    if n < 0:
        raise IsicInputError(f"near_duplicates={n}: use 0 or more")
    rng = np.random.default_rng([seed, NEAR_DUPLICATE_STREAM])
    labels = _labels(out)
    pools = {k: list(rng.permutation(v.index.to_numpy())) for k, v in labels.items()}
    truth_of = {
        layout: _read(out / layout / TRUTH_FILE).set_index("image_id")["artifact"]
        for layout in IMAGE_DIRS
    }
    taken = {i for t in truth_of.values() for i in t.index}
    rows = []
    for k in range(n):
        src, dst = DIRECTIONS[k % len(DIRECTIONS)]
        if not pools[src]:
            raise IsicInputError(f"near_duplicates={n}: {src} has too few images to copy")
        original = str(pools[src].pop())
        (new,) = _new_ids(rng, 1, taken)
        trim, scale, quality = _copy_image(
            out / src / IMAGE_DIRS[src] / f"{original}.jpg",
            out / dst / IMAGE_DIRS[dst] / f"{new}.jpg",
            rng,
        )
        label = str(labels[src][original])
        _add_row(out, dst, new, original, label, k)
        _add_truth(out, dst, new, str(truth_of[src].get(original, "none")))
        rows.append((new, dst, original, src, quality, scale, *(trim[e] for e in EDGES)))
    truth = pd.DataFrame(rows, columns=list(NEAR_DUPLICATES_HEADER))
    _write(truth, out / NEAR_DUPLICATES_FILE)
    return truth


def read_near_duplicates(*folders: str | Path) -> pd.DataFrame | None:
    """The planted pairs found in ``folders`` or their parents (a synthetic root, or one of
    its layout folders), without repeats; None when no folder has the file."""
    found = []
    for folder in folders:
        for cand in (Path(folder), Path(folder).parent):
            if (cand / NEAR_DUPLICATES_FILE).is_file():
                found.append(_read(cand / NEAR_DUPLICATES_FILE))
                break
    if not found:
        return None
    return pd.concat(found, ignore_index=True).drop_duplicates().reset_index(drop=True)
