"""Leakage between the parts of a data set: the same image (or a near copy) under two ids.

ISIC 2016-2020 share images and lesions, so a merged training set and a test set can hold one
image twice: as a byte copy, re-encoded or resized. A test image whose copy was trained on
inflates every test number. The check has three steps, each a pure function:

1. :func:`image_hashes` decodes every image once (through the project's byte reader, so HDF5
   members of ISIC 2024 work too) and keeps four fingerprints: the SHA-256 of its bytes, the
   SHA-256 of its decoded RGB pixels, its ImageHash ``phash`` (64 bits) and a 16x16 RGB (Lanczos)
   thumbnail.
2. :func:`duplicate_pairs` pairs images: ``exact`` when bytes or decoded pixels are equal,
   ``near`` when the phash Hamming distance is at most ``max_distance`` *and* the thumbnails'
   RMS difference is at most ``max_rms``.
3. :func:`drop_duplicates_from` drops members of pairs from the test side (``dedupe="test"``),
   one member per duplicate group anywhere (``"all"``) or nothing (``"none"``).

Why phash, and why the thumbnail check. phash (DCT of a 32x32 grey image, sign of the 8x8
lowest frequencies against their median) survives JPEG re-encoding and resizing better than
``average_hash``/``dhash``/``whash`` here, but no 64-bit hash alone separates copies from
*look-alike lesions*: a centred round nevus on plain skin has few strong DCT terms, so two
different nevi sit few bits apart. Measured on synthetic sets with 30 planted pairs
(``make_synthetic(near_duplicates=30)``: copies rescaled by 0.75-1.25 and saved at JPEG
quality 60-85; 4 settings: 64/128 px images, cached at 48/64/128 px, 120/240 rows, seeds
0-3; binary and 8-class manifests): planted copies lie within phash 6 and thumbnail RMS
0.014, unrelated images come as close as phash 4 but never under RMS 0.027. Hence phash finds
candidates generously (``max_distance=10``) and the thumbnail confirms them (``max_rms=0.02``,
between 0.014 and 0.027): every planted pair found, no false alarm, in all 4 settings. Crops
are the limit of any global hash: a 1-pixel trim of a 64 px image moved phash by up to 16 bits
and the thumbnail RMS past that of unrelated look-alikes, so cropped copies are not claimed.
Nor are images cached below 48 px (the smallest profile): at 32 px a planted 4:3 copy reached
RMS 0.023 and was missed.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image

from isic_tracking.data.image_bytes import read_image_bytes
from isic_tracking.errors import IsicInputError
from isic_tracking.utils import progress

#: phash Hamming distance (of 64 bits) up to which two images are near-duplicate candidates.
MAX_DISTANCE = 10
#: RMS difference of the 16x16 RGB thumbnails (0-1 scale) up to which a candidate is confirmed.
MAX_RMS = 0.02
THUMB = 16
#: What ``dedupe`` may be: drop the test-side member, one member per group, or nothing.
DEDUPE_CHOICES: tuple[str, ...] = ("test", "all", "none")
TEST_SPLIT = "test"
HASH_COLUMNS = ("image_id", "split", "source", "bytes_sha256", "pixels_sha256", "phash")
PAIR_COLUMNS = (
    "id_a",
    "id_b",
    "distance",
    "rms",
    "kind",
    "split_a",
    "source_a",
    "split_b",
    "source_b",
)
DROPPED_COLUMNS = ("image_id", "split", "source", "duplicate_of", "kind", "distance", "reason")


def _fingerprint(data: bytes) -> tuple[str, str, int, np.ndarray]:
    """(bytes sha256, pixels sha256, phash as int, 16x16x3 uint8 thumbnail) of one image."""
    import imagehash  # here: the prepare entry point imports this module for its --help

    img = Image.open(io.BytesIO(data)).convert("RGB")
    pixels = hashlib.sha256(f"{img.size}".encode() + img.tobytes()).hexdigest()
    bits = imagehash.phash(img).hash.flatten()
    value = int("".join("1" if b else "0" for b in bits), 2)
    thumb = np.asarray(img.resize((THUMB, THUMB), Image.Resampling.LANCZOS), dtype=np.uint8)
    return hashlib.sha256(data).hexdigest(), pixels, value, thumb


def image_hashes(
    manifest: pd.DataFrame, read_bytes: Callable[[str], bytes] = read_image_bytes
) -> pd.DataFrame:
    """The fingerprints of every image of ``manifest``, each decoded once.

    Args:
        manifest: needs ``image_id`` and ``path`` (``split``/``source`` copied when present).
        read_bytes: the encoded bytes of a ``path`` (default: files and HDF5 members).

    Returns:
        One row per image: ``HASH_COLUMNS`` plus ``thumb`` (a 16x16x3 uint8 array), in
        manifest order.

    Raises:
        IsicInputError: an image cannot be read or decoded (names its id and path).
    """
    rows, thumbs = [], []
    df = manifest.reset_index(drop=True)
    for r in progress(df.itertuples(index=False), total=len(df), desc="hashing images"):
        try:
            sha, pix, ph, thumb = _fingerprint(read_bytes(str(r.path)))
        except (OSError, ValueError, SyntaxError) as e:
            raise IsicInputError(
                f"leakage check: image {r.image_id} ({r.path}) cannot be read: {e}; "
                "re-run prepare, which lists unreadable images in skipped.csv"
            ) from e
        rows.append((r.image_id, sha, pix, f"{ph:016x}"))
        thumbs.append(thumb)
    out = pd.DataFrame(rows, columns=["image_id", "bytes_sha256", "pixels_sha256", "phash"])
    for col in ("split", "source"):
        out[col] = df[col].astype(str).to_numpy() if col in df.columns else ""
    out = out[list(HASH_COLUMNS)]
    out["thumb"] = pd.Series(thumbs, dtype=object)
    return out


def _phash_ints(hashes: pd.DataFrame) -> np.ndarray:
    return np.array([int(h, 16) for h in hashes["phash"]], dtype=np.uint64)


def _near_candidates(values: np.ndarray, max_distance: int, chunk: int = 256):
    """Index pairs (i < j) whose phash Hamming distance is <= max_distance, with it.

    All pairs, in row chunks (256 x 60,000 x 8 bytes = 123 MB at a time): 60,000 images are
    1.8e9 XOR + popcounts.
    """
    n = len(values)
    for start in range(0, n, chunk):
        block = values[start : start + chunk]
        dist = np.bitwise_count(block[:, None] ^ values[None, :])
        i, j = np.nonzero(dist <= max_distance)
        i = i + start
        keep = j > i
        yield from zip(i[keep], j[keep], dist[i[keep] - start, j[keep]])


def _thumb_rms(a: np.ndarray, b: np.ndarray) -> float:
    diff = a.astype(np.float64) - b.astype(np.float64)
    return float(np.sqrt(np.mean(diff**2)) / 255.0)


def duplicate_pairs(
    hashes: pd.DataFrame, max_distance: int = MAX_DISTANCE, max_rms: float = MAX_RMS
) -> pd.DataFrame:
    """Every pair of images that are the same picture: ``exact`` or ``near``.

    Args:
        hashes: the table of :func:`image_hashes`.
        max_distance: phash Hamming distance of a near-duplicate candidate (0-64).
        max_rms: thumbnail RMS difference (0-1) that confirms a candidate (see module doc).

    Returns:
        ``PAIR_COLUMNS``: ``id_a < id_b`` (manifest order), the phash ``distance``, the
        thumbnail ``rms``, ``kind`` (``exact``: same bytes or same decoded pixels; else
        ``near``) and each side's split and source; sorted by kind, distance and ids.
    """
    if not 0 <= max_distance <= 64:
        raise IsicInputError(f"max_distance={max_distance} must lie in 0..64 (phash bits)")
    values = _phash_ints(hashes)
    sha, pix = hashes["bytes_sha256"].to_numpy(), hashes["pixels_sha256"].to_numpy()
    thumbs = list(hashes["thumb"])
    found: dict[tuple[int, int], tuple[int, float, str]] = {}
    for col in (sha, pix):  # exact: equal digests, whatever the phash says
        for idx in pd.Series(range(len(col))).groupby(col).groups.values():
            members = sorted(int(k) for k in idx)
            for a, i in enumerate(members):
                for j in members[a + 1 :]:
                    d = int(np.bitwise_count(values[i] ^ values[j]))
                    found[(i, j)] = (d, _thumb_rms(thumbs[i], thumbs[j]), "exact")
    for i, j, d in _near_candidates(values, max_distance):
        if (int(i), int(j)) in found:
            continue
        rms = _thumb_rms(thumbs[i], thumbs[j])
        if rms <= max_rms:
            found[(int(i), int(j))] = (int(d), rms, "near")
    return _pair_table(hashes, found)


def _pair_table(hashes: pd.DataFrame, found: dict) -> pd.DataFrame:
    ids, split, source = (hashes[c].to_numpy() for c in ("image_id", "split", "source"))
    rows = [
        (ids[i], ids[j], d, round(rms, 5), kind, split[i], source[i], split[j], source[j])
        for (i, j), (d, rms, kind) in found.items()
    ]
    out = pd.DataFrame(rows, columns=list(PAIR_COLUMNS))
    out["distance"] = out["distance"].astype("int64")
    out["rms"] = out["rms"].astype("float64")
    return out.sort_values(["kind", "distance", "id_a", "id_b"]).reset_index(drop=True)


def check_dedupe(mode: str) -> str:
    """``mode`` when it is one of ``DEDUPE_CHOICES``, else an :class:`IsicInputError`."""
    if mode not in DEDUPE_CHOICES:
        raise IsicInputError(f"dedupe={mode!r} is not one of {', '.join(DEDUPE_CHOICES)}")
    return mode


def _groups(ids: Iterable[str], pairs: pd.DataFrame) -> dict[str, str]:
    """Union-find over the pairs: each id's group root."""
    parent = {i: i for i in ids}

    def root(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(pairs["id_a"], pairs["id_b"]):
        if a in parent and b in parent:
            parent[root(a)] = root(b)
    return {i: root(i) for i in parent}


def drop_duplicates_from(
    manifest: pd.DataFrame, pairs: pd.DataFrame, mode: str = "test", test_split: str = TEST_SPLIT
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Remove duplicates so that no image is evaluated on a copy of itself.

    Args:
        manifest: the images (``image_id``, ``split``, ``source``).
        pairs: :func:`duplicate_pairs` of (a superset of) these images.
        mode: ``test`` drops every ``test_split`` image paired with an image of another split
            (test/test pairs stay: no leakage, only a repeated test image); ``all`` keeps one
            image per duplicate group (a non-test one first, then the first in manifest order)
            so no copy sits in two folds either; ``none`` drops nothing.
        test_split: the split value of test images.

    Returns:
        ``(kept manifest, dropped)``; ``dropped`` has ``DROPPED_COLUMNS``: the image, the
        image it duplicates, the pair's kind and distance, and the reason in words.
    """
    check_dedupe(mode)
    df = manifest.reset_index(drop=True)
    info = df.set_index("image_id")[["split", "source"]].astype(str)
    present = pairs[pairs["id_a"].isin(info.index) & pairs["id_b"].isin(info.index)]
    drops: dict[str, tuple[str, str, int, str]] = {}
    if mode == "test":
        for p in present.itertuples(index=False):
            for mine, other in ((p.id_a, p.id_b), (p.id_b, p.id_a)):
                if info.at[mine, "split"] == test_split and info.at[other, "split"] != test_split:
                    why = f"{p.kind} duplicate of {info.at[other, 'split']} image {other}"
                    drops.setdefault(mine, (other, p.kind, p.distance, why))
    elif mode == "all":
        order = {i: k for k, i in enumerate(df["image_id"])}
        group = _groups(df["image_id"], present)
        members: dict[str, list[str]] = {}
        for i in df["image_id"]:
            members.setdefault(group[i], []).append(i)
        for ids in members.values():
            ids.sort(key=lambda i: (info.at[i, "split"] == test_split, order[i]))
            keep = ids[0]
            for i in ids[1:]:
                kind = _pair_kind(present, i, keep)
                drops[i] = (keep, kind[0], kind[1], f"{kind[0]} duplicate of kept image {keep}")
    dropped = pd.DataFrame(
        [
            (i, info.at[i, "split"], info.at[i, "source"], o, k, d, why)
            for i, (o, k, d, why) in drops.items()
        ],
        columns=list(DROPPED_COLUMNS),
    )
    return df[~df["image_id"].isin(drops)].reset_index(drop=True), dropped


def _pair_kind(pairs: pd.DataFrame, a: str, b: str) -> tuple[str, int]:
    """(kind, distance) of the pair a-b, or ("near", -1) when they are linked only through
    other members of their group."""
    hit = pairs[
        ((pairs["id_a"] == a) & (pairs["id_b"] == b))
        | ((pairs["id_a"] == b) & (pairs["id_b"] == a))
    ]
    if hit.empty:
        return "near", -1
    return str(hit["kind"].iloc[0]), int(hit["distance"].iloc[0])


@dataclass(frozen=True)
class PlantedCheck:
    """Found pairs against planted truth: how many planted pairs were found, how many
    found pairs were not planted (false alarms)."""

    n_planted: int
    n_found: int
    n_missed: int
    n_false_alarms: int

    def metrics(self) -> dict[str, int]:
        return {
            "leakage_planted": self.n_planted,
            "leakage_planted_found": self.n_found,
            "leakage_planted_missed": self.n_missed,
            "leakage_false_alarms": self.n_false_alarms,
        }


def check_planted(pairs: pd.DataFrame, planted: pd.DataFrame, ids: Iterable[str]) -> PlantedCheck:
    """Compare :func:`duplicate_pairs` with planted truth (``image_id, copy_of`` columns),
    counting only planted pairs whose two images are among ``ids``."""
    ids = set(ids)
    truth = {
        frozenset((a, b))
        for a, b in zip(planted["image_id"], planted["copy_of"])
        if a in ids and b in ids
    }
    found = {frozenset((a, b)) for a, b in zip(pairs["id_a"], pairs["id_b"])}
    return PlantedCheck(
        n_planted=len(truth),
        n_found=len(truth & found),
        n_missed=len(truth - found),
        n_false_alarms=len(found - truth),
    )
