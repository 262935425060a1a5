"""What each synthetic layout holds: ids, labels, metadata, duplicates and which image gets
which artifact, as the official CSV tables plus a plan of the images to paint.

Pure planning from one generator per layout (no files): :mod:`.generate` paints and writes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from isic_tracking.data.manifest import MULTICLASS_CLASSES
from isic_tracking.data.sources.constants import (
    ISIC2016_TEST_CSV,
    ISIC2016_TEST_IMAGE_DIR,
    ISIC2019_GT_CSV,
    ISIC2019_GT_HEADER,
    ISIC2019_IMAGE_DIR,
    ISIC2019_META_CSV,
    ISIC2019_META_HEADER,
    ISIC2020_CSV,
    ISIC2020_DUPLICATES_CSV,
    ISIC2020_DUPLICATES_HEADER,
    ISIC2020_HEADER,
    ISIC2020_IMAGE_DIR,
)
from isic_tracking.data.synthetic.artifacts import ARTIFACTS
from isic_tracking.data.synthetic.painting import SKIN_TONES

ARTIFACT_FRACTION = 0.35
MALIGNANT_FRACTION_2020 = 0.27
MALIGNANT_FRACTION_2016 = 0.30

# Real ISIC 2019 class counts: the synthetic set is weighted by their square root.
_REAL_2019_COUNTS = {
    "MEL": 4522,
    "NV": 12875,
    "BCC": 3323,
    "AK": 867,
    "BKL": 2624,
    "DF": 239,
    "VASC": 253,
    "SCC": 628,
}
_SITES_2020 = ("torso", "lower extremity", "upper extremity", "head/neck", "palms/soles")
_SITES_2019 = (
    "anterior torso",
    "posterior torso",
    "lower extremity",
    "upper extremity",
    "head/neck",
    "lateral torso",
    "palms/soles",
)


@dataclass
class Layout:
    """What to write for one layout: the images to draw and the CSV tables (string cells)."""

    name: str
    image_dir: str
    images: pd.DataFrame  # stem, image_id, kind, artifact, height, width, key, tone, copy_of
    tables: dict[str, tuple[pd.DataFrame, bool]]  # file name -> (table, write header?)


def assign_artifacts(rng: np.random.Generator, n: int) -> np.ndarray:
    """'none' everywhere but on a random ARTIFACT_FRACTION subset, the six kinds in turn."""
    k = int(round(ARTIFACT_FRACTION * n))
    out = np.full(n, "none", dtype=object)
    out[rng.permutation(n)[:k]] = [ARTIFACTS[j % len(ARTIFACTS)] for j in range(k)]
    return out


def _ids(rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
    """n distinct ISIC-style ids ``ISIC_%07d`` drawn from [low, high)."""
    nums = rng.choice(high - low, size=n, replace=False) + low
    return np.array([f"ISIC_{v:07d}" for v in nums], dtype=object)


def _fmt_age(age: np.ndarray, missing: np.ndarray) -> list[str]:
    return ["" if m else f"{a:.1f}" for a, m in zip(age, missing)]


def _maybe_empty(rng, values: np.ndarray, p: float) -> np.ndarray:
    values = values.astype(object)
    values[rng.random(len(values)) < p] = ""
    return values


def plan_isic2020(rng: np.random.Generator, n: int, size: int) -> Layout:
    n_dup = min(2, n // 10)
    n_u = n - n_dup
    sizes: list[int] = []
    while sum(sizes) < n_u:
        sizes.append(int(rng.integers(2, 7)))
    sizes[-1] -= sum(sizes) - n_u
    patient = np.repeat(np.arange(len(sizes)), sizes)
    n_pat = len(sizes)
    pids = np.array([f"IP_{v:07d}" for v in rng.choice(9_000_000, n_pat, replace=False) + 10**6])
    pat_sex = _maybe_empty(rng, rng.choice(np.array(["male", "female"]), n_pat), 0.03)
    pat_age = rng.integers(5, 16, n_pat) * 5
    pat_tone = rng.integers(len(SKIN_TONES), size=n_pat)

    malignant = np.zeros(n_u, dtype=bool)
    malignant[rng.choice(n_u, max(2, round(MALIGNANT_FRACTION_2020 * n_u)), replace=False)] = True
    age = np.clip(pat_age[patient] + 10 * malignant + rng.choice([-5, 0, 0, 5], n_u), 10, 90)
    sites = _maybe_empty(
        rng, rng.choice(np.array(_SITES_2020), n_u, p=[0.5, 0.25, 0.15, 0.07, 0.03]), 0.02
    )
    diagnosis = np.where(
        malignant, "melanoma", rng.choice(np.array(["unknown", "nevus"]), n_u, p=[0.75, 0.25])
    )
    ids = _ids(rng, n, 2_000_000, 10_000_000)
    artifact = assign_artifacts(rng, n_u)
    rows = pd.DataFrame(
        {
            "image_name": ids[:n_u],
            "patient_id": pids[patient],
            "sex": pat_sex[patient],
            "age_approx": _fmt_age(age, rng.random(n_u) < 0.02),
            "anatom_site_general_challenge": sites,
            "diagnosis": diagnosis,
            "benign_malignant": np.where(malignant, "malignant", "benign"),
            "target": malignant.astype(int).astype(str),
        }
    )
    images = pd.DataFrame(
        {
            "stem": ids[:n_u],
            "image_id": ids[:n_u],
            "kind": np.where(malignant, "MEL", "NV"),
            "artifact": artifact,
            "height": size,
            "width": size,
            "key": np.arange(n_u),
            "tone": pat_tone[patient],
            "copy_of": None,
        }
    )
    originals = rng.choice(n_u, n_dup, replace=False)
    copies = rows.iloc[originals].assign(image_name=ids[n_u:])
    copy_images = images.iloc[originals].assign(
        stem=ids[n_u:], image_id=ids[n_u:], copy_of=ids[originals], key=-1
    )
    rows = pd.concat([rows, copies]).sort_values("image_name")
    images = pd.concat([images, copy_images], ignore_index=True)
    duplicates = pd.DataFrame({"image_name_1": ids[originals], "image_name_2": ids[n_u:]})
    return Layout(
        "isic2020",
        ISIC2020_IMAGE_DIR,
        images,
        {
            ISIC2020_CSV: (rows[list(ISIC2020_HEADER)], True),
            ISIC2020_DUPLICATES_CSV: (duplicates[list(ISIC2020_DUPLICATES_HEADER)], True),
        },
    )


def _class_counts(n: int) -> dict[str, int]:
    """At least 8 per class, the rest by sqrt of the real ISIC 2019 counts (largest remainder)."""
    base = 8
    weights = np.sqrt([_REAL_2019_COUNTS[c] for c in MULTICLASS_CLASSES])
    share = (n - base * len(weights)) * weights / weights.sum()
    counts = np.floor(share).astype(int)
    counts[np.argsort(-(share - counts))[: (n - base * len(weights)) - counts.sum()]] += 1
    return dict(zip(MULTICLASS_CLASSES, (counts + base).tolist()))


def plan_isic2019(rng: np.random.Generator, n: int, size: int) -> Layout:
    counts = _class_counts(n)
    kinds = np.repeat(np.array(MULTICLASS_CLASSES, dtype=object), list(counts.values()))
    kinds = kinds[rng.permutation(n)]
    # Lesions: 1-3 images of one class; ~20 % of images have no lesion id (as in the BCN part).
    lesion = np.full(n, -1)
    n_lesions = 0
    for cls in MULTICLASS_CLASSES:
        idx = list(np.flatnonzero(kinds == cls))
        while idx:
            if rng.random() < 0.2:
                idx.pop()
                continue
            k = min(len(idx), int(rng.integers(1, 4)))
            lesion[idx[:k]] = n_lesions
            n_lesions += 1
            idx = idx[k:]
    prefix = rng.choice(np.array(["HAM", "BCN"]), n_lesions)
    lesion_names = np.array(
        [f"{p}_{v:07d}" for p, v in zip(prefix, rng.choice(10**6, n_lesions, replace=False))]
    )
    group = np.where(lesion >= 0, lesion, n_lesions + np.arange(n))  # per-lesion metadata
    n_groups = n_lesions + n
    g_age = rng.integers(3, 18, n_groups) * 5
    g_sex = _maybe_empty(rng, rng.choice(np.array(["male", "female"]), n_groups), 0.02)
    g_site = _maybe_empty(rng, rng.choice(np.array(_SITES_2019), n_groups), 0.05)

    ids = _ids(rng, n, 0, 1_000_000)
    downsampled = np.zeros(n, dtype=bool)
    downsampled[rng.choice(n, max(2, round(0.03 * n)), replace=False)] = True
    stems = np.where(downsampled, ids + "_downsampled", ids)
    one_hot = {c: np.where(kinds == c, "1.0", "0.0") for c in MULTICLASS_CLASSES}
    gt = pd.DataFrame({"image": stems, **one_hot, "UNK": "0.0"})
    meta = pd.DataFrame(
        {
            "image": stems,
            "age_approx": _fmt_age(g_age[group], rng.random(n) < 0.02),
            "anatom_site_general": g_site[group],
            "lesion_id": np.where(lesion >= 0, lesion_names[np.maximum(lesion, 0)], ""),
            "sex": g_sex[group],
        }
    )
    order = np.argsort(stems, kind="stable")
    images = pd.DataFrame(
        {
            "stem": stems,
            "image_id": ids,
            "kind": kinds,
            "artifact": assign_artifacts(rng, n),
            "height": np.where(downsampled, round(0.75 * size), size),
            "width": size,
            "key": np.arange(n),
            "tone": rng.integers(len(SKIN_TONES), size=n),
            "copy_of": None,
        }
    )
    return Layout(
        "isic2019",
        ISIC2019_IMAGE_DIR,
        images,
        {
            ISIC2019_GT_CSV: (gt.iloc[order][list(ISIC2019_GT_HEADER)], True),
            ISIC2019_META_CSV: (meta.iloc[order][list(ISIC2019_META_HEADER)], True),
        },
    )


def plan_isic2016(rng: np.random.Generator, n: int, size: int) -> Layout:
    malignant = np.zeros(n, dtype=bool)
    malignant[rng.choice(n, max(2, round(MALIGNANT_FRACTION_2016 * n)), replace=False)] = True
    ids = _ids(rng, n, 1_000_000, 2_000_000)
    order = np.argsort(ids, kind="stable")
    gt = pd.DataFrame({"image": ids, "label": np.where(malignant, "1.0", "0.0")})
    images = pd.DataFrame(
        {
            "stem": ids,
            "image_id": ids,
            "kind": np.where(malignant, "MEL", "NV"),
            "artifact": assign_artifacts(rng, n),
            "height": size,
            "width": round(size * 4 / 3),
            "key": np.arange(n),
            "tone": rng.integers(len(SKIN_TONES), size=n),
            "copy_of": None,
        }
    )
    return Layout(
        "isic2016", ISIC2016_TEST_IMAGE_DIR, images, {ISIC2016_TEST_CSV: (gt.iloc[order], False)}
    )
