"""Leakage between the parts of a data set: the same image (or a near copy) under two ids.

ISIC 2016-2020 share images and lesions, so a merged training set and a test set can hold one
image twice: as a byte copy, re-encoded, resized or slightly cropped. A test image whose copy
was trained on inflates every test number. The check has three steps, each a pure function:

1. :func:`image_hashes` decodes every image once (through the project's byte reader, so HDF5
   members of ISIC 2024 work too) and keeps four fingerprints: the SHA-256 of its bytes, the
   SHA-256 of its decoded RGB pixels, its ImageHash ``phash`` (64 bits, for the record only) and
   a 32x32 RGB thumbnail (box-averaged, 3 KB; 1.2 GB for ISIC 2024's 401k images).
2. :func:`duplicate_pairs` pairs images: ``exact`` when bytes or decoded pixels are equal;
   ``near`` when a descriptor of the thumbnails is within ``max_candidate`` *and* the thumbnails
   registered onto each other differ by at most ``max_rms``
   (:mod:`isic_tracking.data.near_copies`: all-pairs descriptor search, then the best crop box).
3. :func:`drop_duplicates_from` drops members of pairs from the test side (``dedupe="test"``),
   one member per duplicate group anywhere (``"all"``) or nothing (``"none"``).

Why a registration, and the thresholds. Synthetic lesions are so alike (a centred round nevus
on plain skin) that unrelated images sit 2-4 phash bits apart, and a crop moves any global
hash or thumbnail more than that: a 1-pixel trim of a 64 px image moved phash by up to 16
bits. So a coarse descriptor (central 80 %, 4x4 cells, RGB) only nominates candidates, and the
decision compares the pictures after undoing the crop: every box trimming 0-10 % off each edge
(coarse to fine, 0.5 % last step), area-resampled to 16x16 cells, both directions; the score is
the RMS over the 80 % best-matching cells (the rest are sharp ruler ticks, hair and bubbles that
JPEG and resampling smear differently; an unrelated look-alike differs over its whole lesion,
and 80 % still asks most of the picture to agree). Measured on synthetic sets with planted
copies (2-8 % off one or two edges, rescaled 0.75-1.25, JPEG quality 60-85; 64 and 128 px
sets, seeds 0-4, 96-250 rows, binary and 8-class manifests, raw and cached at 48/64/128 px;
plus the demo sets, 240 rows at 128 px, seeds 0-1, cached at 48/128): planted copies lie
within descriptor distance 0.065 and registered RMS 0.0122; unrelated pairs come as close as
descriptor 0.020 but never under RMS 0.0182 (all 80 % cells: the 95 % variant gave 0.0184
against 0.0214, all cells 0.0281 against 0.0233, no threshold at all). Hence
``max_candidate=0.08`` (a few dozen candidates per image on these look-alikes, none missed) and
``max_rms=0.015`` (1.2x over the worst copy, 1.2x under the closest stranger): every planted
pair found, no false alarm. A guard, ``MAX_RMS_ALL_CELLS=0.045`` over all cells (planted copies:
at most 0.028), keeps a small lesion on plain skin from hiding in the 20 % left out. It is not
enough for near-blank pictures: 12 images of one smooth blob (radius 10-18 px of 128) on mildly
mottled skin of one tone gave 7 pairs among their 66 (the phash check before crops: 0), since a
shift and scale within 10 % maps one plain ellipse onto another. The limits: trims over 10 % per edge, flips, rotations and colour
changes are not searched; the thresholds are calibrated on synthetic images, so read
``leakage/pairs.csv`` on a new data set. Speed: the candidate search is N^2 / 2 distances in
BLAS chunks: 10,000 random descriptors took 1.0 s and 30,000 took 8.5 s on one shared CPU core
(ISIC 2024's 401k: about 25 min on one core, less with more BLAS threads). Registration: 81
boxes per direction for every candidate, 3 x 81 more only for those whose coarse score is within
2 x ``max_rms``; the demo set (240 rows at 128 px: 298 images binary, 240 in 8 classes, ~3,000-
4,000 candidates of look-alike nevi) took 4-11 s per check, and 0 pairs, on one shared core.
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
from isic_tracking.data.near_copies import THUMB, candidate_pairs, descriptors, registered_rms
from isic_tracking.errors import IsicInputError
from isic_tracking.utils import progress

#: Descriptor RMS distance (0-1) up to which two images are near-duplicate candidates.
MAX_CANDIDATE = 0.08
#: Registered RMS (0-1, best 80 % of cells) up to which a candidate is confirmed.
MAX_RMS = 0.015
#: Registered RMS over all cells up to which a candidate may be confirmed: a guard against
#: small unrelated lesions on plain skin, which match on the best 80 % of cells.
MAX_RMS_ALL_CELLS = 0.045
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
    """(bytes sha256, pixels sha256, phash as int, THUMB x THUMB x 3 uint8 thumbnail, box
    averaged over the whole picture) of one image."""
    import imagehash  # here: the prepare entry point imports this module for its --help

    img = Image.open(io.BytesIO(data)).convert("RGB")
    pixels = hashlib.sha256(f"{img.size}".encode() + img.tobytes()).hexdigest()
    bits = imagehash.phash(img).hash.flatten()
    value = int("".join("1" if b else "0" for b in bits), 2)
    thumb = np.asarray(img.resize((THUMB, THUMB), Image.Resampling.BOX), dtype=np.uint8)
    return hashlib.sha256(data).hexdigest(), pixels, value, thumb


def image_hashes(
    manifest: pd.DataFrame, read_bytes: Callable[[str], bytes] = read_image_bytes
) -> pd.DataFrame:
    """The fingerprints of every image of ``manifest``, each decoded once.

    Args:
        manifest: needs ``image_id`` and ``path`` (``split``/``source`` copied when present).
        read_bytes: the encoded bytes of a ``path`` (default: files and HDF5 members).

    Returns:
        One row per image: ``HASH_COLUMNS`` plus ``thumb`` (a ``THUMB`` x ``THUMB`` x 3 uint8
        array), in manifest order.

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


def _bits(a: np.uint64, b: np.uint64) -> int:
    return int(np.bitwise_count(a ^ b))


def _exact_pairs(hashes: pd.DataFrame) -> set[tuple[int, int]]:
    """Index pairs (i < j) with equal bytes or equal decoded pixels."""
    out: set[tuple[int, int]] = set()
    for col in ("bytes_sha256", "pixels_sha256"):
        for idx in pd.Series(range(len(hashes))).groupby(hashes[col].to_numpy()).groups.values():
            members = sorted(int(k) for k in idx)
            out.update((i, j) for a, i in enumerate(members) for j in members[a + 1 :])
    return out


def duplicate_pairs(
    hashes: pd.DataFrame, max_candidate: float = MAX_CANDIDATE, max_rms: float = MAX_RMS
) -> pd.DataFrame:
    """Every pair of images that are the same picture: ``exact`` or ``near``.

    Args:
        hashes: the table of :func:`image_hashes`.
        max_candidate: descriptor RMS distance (0-1) of a near-duplicate candidate
            (:func:`isic_tracking.data.near_copies.candidate_pairs`).
        max_rms: registered thumbnail RMS (0-1) that confirms a candidate
            (:func:`isic_tracking.data.near_copies.registered_rms`; see the module doc).

    Returns:
        ``PAIR_COLUMNS``: ``id_a < id_b`` (manifest order), the phash ``distance`` (for the
        record: it plays no part in the decision), the registered ``rms`` (0 for exact pairs),
        ``kind`` (``exact``: same bytes or same decoded pixels; else ``near``) and each
        side's split and source; sorted by kind, rms and ids.
    """
    for name, value in (("max_candidate", max_candidate), ("max_rms", max_rms)):
        if not 0.0 <= value <= 1.0:
            raise IsicInputError(f"{name}={value} must lie in 0..1 (an RMS on a 0-1 scale)")
    thumbs = np.stack(list(hashes["thumb"])) if len(hashes) else np.zeros((0, THUMB, THUMB, 3))
    found: dict[tuple[int, int], tuple[float, str]] = {
        pair: (0.0, "exact") for pair in _exact_pairs(hashes)
    }
    chunks = list(candidate_pairs(descriptors(thumbs), max_candidate)) if len(hashes) else []
    i = np.concatenate([c[0] for c in chunks]) if chunks else np.zeros(0, dtype=int)
    j = np.concatenate([c[1] for c in chunks]) if chunks else np.zeros(0, dtype=int)
    if found:  # exact pairs need no registration
        done = np.array(sorted(found), dtype=np.int64).reshape(-1, 2)
        todo = ~np.isin(i.astype(np.int64) * len(hashes) + j, done[:, 0] * len(hashes) + done[:, 1])
        i, j = i[todo], j[todo]
    best, full = registered_rms(thumbs, i, j, give_up=2 * max_rms)
    for a, b, rms, rms_all in zip(i, j, best, full):
        if rms <= max_rms and rms_all <= MAX_RMS_ALL_CELLS:
            found[(int(a), int(b))] = (float(rms), "near")
    return _pair_table(hashes, found)


def _pair_table(hashes: pd.DataFrame, found: dict) -> pd.DataFrame:
    ids, split, source = (hashes[c].to_numpy() for c in ("image_id", "split", "source"))
    values = _phash_ints(hashes)
    rows = [
        (ids[i], ids[j], _bits(values[i], values[j]), round(rms, 5), kind)
        + (split[i], source[i], split[j], source[j])
        for (i, j), (rms, kind) in found.items()
    ]
    out = pd.DataFrame(rows, columns=list(PAIR_COLUMNS))
    out["distance"] = out["distance"].astype("int64")
    out["rms"] = out["rms"].astype("float64")
    return out.sort_values(["kind", "rms", "id_a", "id_b"]).reset_index(drop=True)


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
