"""One-time resized image cache: decode every source image once, store a small RGB JPEG.

Full-size dermoscopy JPEGs (ISIC 2020: mostly 6000x4000) cost far more to decode than to train
on; training from a cache whose short side is 256 px makes loading cheap. JPEGs are decoded
with PIL's ``draft`` mode, which lets libjpeg scale by 1/2, 1/4 or 1/8 during decoding, so a
24-megapixel file decodes at 750x500. Every image becomes 8-bit RGB (grayscale, alpha,
CMYK, palette, 16-bit and EXIF-rotated files included). A source is a file or a member of an
HDF5 file (``train-image.hdf5::ISIC_0015670``, see :mod:`isic_tracking.data.image_bytes`).
Images that cannot be read are skipped and listed in ``out/skipped.csv``; the run fails only
when too many are bad.

Layout of ``out``::

    images/<image_id>.jpg   the cached images (JPEG, quality 95)
    index.csv               fingerprints that let a re-run skip unchanged images
    manifest.csv            the input manifest, ``path`` pointing into images/
    skipped.csv             image_id, path, reason for every file left out
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import re
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageOps, UnidentifiedImageError

from isic_tracking.data import image_bytes
from isic_tracking.data.manifest import validate_manifest, write_manifest
from isic_tracking.errors import IsicInputError
from isic_tracking.utils import progress

JPEG_QUALITY = 95
INDEX_COLUMNS = (
    "image_id",
    "orig_path",
    "src_size",
    "src_mtime_ns",
    "image_size",
    "cache_file",
    "width",
    "height",
    "fingerprint",
)
SKIPPED_COLUMNS = ("image_id", "path", "reason")
#: Below this many images to (re)build the pool's start-up costs more than it saves.
_MIN_PARALLEL = 16


@dataclass
class CacheResult:
    """What :func:`build_cache` did.

    Attributes:
        manifest: the cached images' manifest (``path`` -> cached file, plus ``orig_path``,
            ``width``, ``height`` of the source image and its ``fingerprint``).
        skipped: ``image_id, path, reason`` of every image left out.
        n_cached: images decoded and written by this call.
        n_reused: images already cached with an unchanged fingerprint.
        n_skipped: images left out (``len(skipped)``).
    """

    manifest: pd.DataFrame
    skipped: pd.DataFrame
    n_cached: int
    n_reused: int
    n_skipped: int


# --------------------------------------------------------------------------- decoding


def _to_8bit(arr: np.ndarray, sixteen_bit: bool = False) -> np.ndarray:
    """Scale gray values to 0..255 by their bit depth (16-bit data is scaled, never clipped).

    PIL's "I" mode does not say how many bits were stored, so the range is inferred from the
    peak value: <= 255 is 8-bit, <= 65535 is 16-bit, above that the peak maps to 255.
    """
    if arr.dtype == np.uint8:
        return arr
    peak = float(arr.max()) if arr.size else 0.0
    if sixteen_bit:
        scale = 255.0 / 65535.0
    elif arr.dtype.kind == "f" and peak <= 1.0:
        scale = 255.0  # float image in [0, 1]
    elif peak <= 255:
        scale = 1.0  # 8-bit values stored in a wider type
    elif peak <= 65535:
        scale = 255.0 / 65535.0  # 16-bit
    else:
        scale = 255.0 / peak
    return np.clip(np.rint(arr.astype(np.float64) * scale), 0, 255).astype(np.uint8)


def to_rgb(img: Image.Image) -> Image.Image:
    """Return ``img`` as 8-bit RGB, upright (EXIF orientation applied).

    Transparent images (LA, RGBA, PA, palette with transparency) are composited on white,
    16-bit and 32-bit gray images are scaled by their bit depth (65535 -> 255), CMYK and
    other modes go through PIL's conversion.
    """
    img = ImageOps.exif_transpose(img)
    if img.mode == "RGB":
        return img
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("LA", "PA", "RGBA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if img.mode.startswith("I") or img.mode == "F":
        gray = _to_8bit(np.asarray(img), sixteen_bit=img.mode.startswith("I;16"))
        return Image.fromarray(gray).convert("RGB")
    try:
        return img.convert("RGB")
    except ValueError as e:  # e.g. LAB or HSV without a conversion path
        raise ValueError(f"unsupported image mode {img.mode!r} ({e})") from e


def _short_side_size(width: int, height: int, short: int) -> tuple[int, int]:
    """(w, h) with the short side equal to ``short`` and the aspect ratio kept."""
    scale = short / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def decode_resized(data: bytes, image_size: int) -> tuple[Image.Image, tuple[int, int]]:
    """Decode encoded image bytes to RGB with short side ``image_size``.

    Returns:
        (image, (width, height) of the source as stored in the file).
    """
    img = Image.open(io.BytesIO(data))
    orig_size = img.size
    if img.format == "JPEG":
        # libjpeg scales by 1/2, 1/4 or 1/8 while decoding; the result stays >= the request.
        img.draft("RGB", (image_size, image_size))
    img = to_rgb(img)
    size = _short_side_size(*img.size, image_size)
    if size != img.size:
        img = img.resize(size, Image.Resampling.LANCZOS)
    return img, orig_size


def fingerprint(data: bytes, image_size: int) -> str:
    """Content fingerprint of a source image for a given cache size."""
    h = hashlib.blake2b(data, digest_size=16)
    h.update(f"|image_size={image_size}".encode())
    return h.hexdigest()


def _cache_one(task: tuple[str, str, str, int]) -> dict:
    """Decode one source image and write its cached copy (runs in a worker process)."""
    image_id, src, dst, image_size = task
    out = {"image_id": image_id, "orig_path": src, "ok": False, "reason": ""}
    try:
        src_size, src_mtime_ns = image_bytes.image_stat(src)
        data = image_bytes.read_image_bytes(src)
        if not data:
            out["reason"] = "empty file (0 bytes)"
            return out
        img, (width, height) = decode_resized(data, image_size)
        tmp = f"{dst}.tmp{os.getpid()}"
        img.save(tmp, format="JPEG", quality=JPEG_QUALITY)
        os.replace(tmp, dst)  # atomic: an interrupted run never leaves a half-written image
    except FileNotFoundError as e:
        out["reason"] = "missing: " + (
            str(e) if isinstance(e, image_bytes.MissingImage) else "file not found"
        )
        return out
    except PermissionError as e:
        out["reason"] = f"unreadable: {e.strerror or e}"
        return out
    except IsADirectoryError:
        out["reason"] = "unreadable: path is a directory"
        return out
    except UnidentifiedImageError:
        out["reason"] = "not an image: unknown or corrupt format"
        return out
    except Image.DecompressionBombError as e:
        out["reason"] = f"too large: {e}"
        return out
    except (OSError, SyntaxError, EOFError) as e:
        # PIL reports truncated / corrupt data as OSError or SyntaxError.
        out["reason"] = f"corrupt or truncated: {e}"
        return out
    except ValueError as e:
        out["reason"] = f"corrupt or unsupported: {e}"
        return out
    out.update(
        ok=True,
        src_size=src_size,
        src_mtime_ns=src_mtime_ns,
        image_size=image_size,
        cache_file=Path(dst).name,
        width=width,
        height=height,
        fingerprint=fingerprint(data, image_size),
    )
    return out


# --------------------------------------------------------------------------- bookkeeping


def _cache_name(image_id: str) -> str:
    """A file-system-safe, collision-free file name for an image id."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", image_id)
    if safe != image_id or safe.startswith("."):
        safe = f"{safe}-{hashlib.blake2b(image_id.encode(), digest_size=4).hexdigest()}"
    return f"{safe}.jpg"


def _read_index(path: Path) -> dict[str, dict]:
    if not path.is_file():
        return {}
    try:
        idx = pd.read_csv(path, dtype={"image_id": str, "orig_path": str, "fingerprint": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return {}  # a damaged index only costs a rebuild
    if list(idx.columns) != list(INDEX_COLUMNS):
        return {}
    return {r["image_id"]: r for r in idx.to_dict("records")}


def _write_index(path: Path, records: Iterable[dict]) -> None:
    df = pd.DataFrame(list(records), columns=list(INDEX_COLUMNS))
    tmp = path.with_suffix(".tmp")
    df.to_csv(tmp, index=False)
    os.replace(tmp, path)


def _is_fresh(entry: dict | None, src: str, image_size: int, images_dir: Path) -> bool:
    """Cheap re-use check: same source path, size, mtime and cache size, cached file present.

    When size or mtime changed we fall back to comparing the content fingerprint.
    """
    if entry is None or entry["orig_path"] != src or int(entry["image_size"]) != image_size:
        return False
    if not (images_dir / entry["cache_file"]).is_file():
        return False
    try:
        size, mtime_ns = image_bytes.image_stat(src)
        if (size, mtime_ns) == (int(entry["src_size"]), int(entry["src_mtime_ns"])):
            return True
        same = fingerprint(image_bytes.read_image_bytes(src), image_size) == entry["fingerprint"]
    except (OSError, ValueError):
        return False
    if same:  # touched but unchanged: remember the new stat so the next check is cheap
        entry["src_size"], entry["src_mtime_ns"] = size, mtime_ns
    return same


def default_workers() -> int:
    """Cores available to this process."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _start_method() -> str:
    """ "fork" on Linux, else the platform default.

    Forked workers start at once with every module already imported; "spawn" would re-import
    pandas, torch and the calling entry point (MLflow included) in each worker, seconds per
    worker. The workers only run PIL and file I/O, which use no locks of the parent's threads.
    """
    if sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods():
        return "fork"
    return multiprocessing.get_start_method()


def _run_tasks(tasks: list[tuple[str, str, str, int]], workers: int) -> Iterator[dict]:
    """Run :func:`_cache_one` over ``tasks``, in a process pool when it pays off."""
    if workers <= 1 or len(tasks) < _MIN_PARALLEL:
        yield from progress(map(_cache_one, tasks), total=len(tasks), desc="caching images")
        return
    chunksize = max(1, min(64, len(tasks) // (workers * 4)))
    image_bytes.close_hdf5_files()  # the freshness checks opened it: each worker opens its own
    ctx = multiprocessing.get_context(_start_method())
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        results = pool.map(_cache_one, tasks, chunksize=chunksize)
        yield from progress(results, total=len(tasks), desc="caching images")


def _check_out_dir(out: Path, sources: Iterable[str]) -> None:
    """Refuse an output folder that contains the source images (never write into user data)."""
    for parent in {Path(s).parent for s in sources}:
        if parent == out or out in parent.parents:
            raise IsicInputError(
                f"cache folder {out} contains source images ({parent}); choose an `out` "
                "folder outside the data set so the source folder is never modified"
            )


# --------------------------------------------------------------------------- entry point


def build_cache(
    manifest: pd.DataFrame,
    out: str | Path,
    image_size: int = 256,
    max_bad_fraction: float = 0.05,
    workers: int | None = None,
) -> CacheResult:
    """Decode every image of ``manifest`` once and store it resized under ``out``.

    Args:
        manifest: a manifest (see DESIGN.md); ``path`` holds the source images.
        out: cache folder (created); must not contain the source images.
        image_size (int, default 256): short side of the cached images, in pixels.
        max_bad_fraction (float, default 0.05): the call fails when more than this fraction
            of the images cannot be read.
        workers (int, optional): processes to use; default all available cores.

    Returns:
        :class:`CacheResult`; also writes ``out/manifest.csv``, ``out/skipped.csv`` and
        ``out/index.csv``.

    Raises:
        IsicInputError: more than ``max_bad_fraction`` of the images are unreadable
            (the message names ``skipped.csv``), or ``out`` holds source images.
    """
    if image_size < 8:
        raise IsicInputError(f"image_size={image_size} is too small; use e.g. 256")
    if not 0.0 <= max_bad_fraction <= 1.0:
        raise IsicInputError(f"max_bad_fraction={max_bad_fraction} must lie in [0, 1]")
    df = validate_manifest(manifest)
    out = Path(out).resolve()
    sources = [str(Path(p).absolute()) for p in df["path"]]
    _check_out_dir(out, sources)
    images_dir = out / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    index_path = out / "index.csv"
    index = _read_index(index_path)

    done: dict[str, dict] = {}
    tasks = []
    for image_id, src in zip(df["image_id"], sources):
        entry = index.get(image_id)
        if _is_fresh(entry, src, image_size, images_dir):
            done[image_id] = entry
        else:
            tasks.append((image_id, src, str(images_dir / _cache_name(image_id)), image_size))
    n_reused = len(done)

    skipped_rows = []
    try:
        for res in _run_tasks(tasks, workers or default_workers()):
            if res["ok"]:
                done[res["image_id"]] = {k: res[k] for k in INDEX_COLUMNS}
            else:
                skipped_rows.append((res["image_id"], res["orig_path"], res["reason"]))
    finally:
        # Keep the entries of this call's images (and older ones still valid) even when
        # interrupted, so the next run resumes instead of starting over.
        keep = {k: v for k, v in index.items() if k not in done} | done
        _write_index(index_path, keep.values())

    skipped = pd.DataFrame(skipped_rows, columns=list(SKIPPED_COLUMNS))
    skipped.to_csv(out / "skipped.csv", index=False)
    n_bad, n_total = len(skipped), len(df)
    if n_total and n_bad / n_total > max_bad_fraction:
        raise IsicInputError(
            f"{n_bad} of {n_total} images ({n_bad / n_total:.1%}) could not be read, more than "
            f"max_bad_fraction={max_bad_fraction:g}; the reasons are listed in "
            f"{out / 'skipped.csv'}. Fix or remove those files, or raise the threshold "
            f"(-P max_bad_fraction=0.2 / --max_bad_fraction 0.2)."
        )

    ok = df[df["image_id"].isin(done)].copy()
    meta = [done[i] for i in ok["image_id"]]
    ok["orig_path"] = ok["path"].map(lambda p: str(Path(p).absolute()))
    ok["path"] = [str(images_dir / m["cache_file"]) for m in meta]
    ok["width"] = [int(m["width"]) for m in meta]
    ok["height"] = [int(m["height"]) for m in meta]
    ok["fingerprint"] = [str(m["fingerprint"]) for m in meta]
    ok = ok.reset_index(drop=True)
    write_manifest(ok, out / "manifest.csv")
    return CacheResult(
        manifest=ok,
        skipped=skipped,
        n_cached=len(tasks) - n_bad,
        n_reused=n_reused,
        n_skipped=n_bad,
    )
