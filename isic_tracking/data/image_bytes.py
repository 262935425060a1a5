"""The encoded bytes of the image a manifest ``path`` names: a file, or a member of an HDF5 file.

ISIC 2024 ships its 401,059 JPEGs inside one ``train-image.hdf5`` (key = ``isic_id``, value =
the JPEG bytes). Instead of extracting them, a manifest path may name a member: the HDF5 file's
path, ``::`` and the key, e.g. ``/data/isic2024/train-image.hdf5::ISIC_0015670``. The cache and
the data set read both kinds through :func:`read_image_bytes`, so a member is decoded exactly
like a file.

Each process opens an HDF5 file once and keeps it open (a cache or DataLoader worker reads
thousands of members); a forked child never uses its parent's handles (HDF5 handles are not
fork-safe) but opens its own. h5py is imported only when a member is read.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

HDF5_SEPARATOR = "::"
#: ``<file ending in .hdf5/.h5/.he5>::<key>``; other paths are plain files.
_MEMBER = re.compile(r"^(?P<file>.+\.(?:hdf5|h5|he5))::(?P<key>.+)$", re.IGNORECASE | re.DOTALL)

_handles: dict[str, Any] = {}
_handles_pid = os.getpid()
#: Handles inherited from a parent process: kept referenced, never used or closed here.
_inherited: list[Any] = []


class MissingImage(FileNotFoundError):
    """A key that its HDF5 file does not hold."""

    def __str__(self) -> str:
        return str(self.args[0])


def member_path(file: str | Path, key: str) -> str:
    """The manifest path of member ``key`` of HDF5 file ``file``: ``file::key``."""
    return f"{file}{HDF5_SEPARATOR}{key}"


def split_member(path: str | Path) -> tuple[str, str] | None:
    """``(hdf5 file, key)`` when ``path`` names an HDF5 member, else None (a plain file)."""
    m = _MEMBER.match(str(path))
    return (m["file"], m["key"]) if m else None


def _own_handles() -> dict[str, Any]:
    """This process's open HDF5 files by path (after a fork: none yet)."""
    global _handles_pid
    if _handles_pid != os.getpid():  # forked: the parent's handles are not ours to use
        _inherited.extend(_handles.values())
        _handles.clear()
        _handles_pid = os.getpid()
    return _handles


def _open(file: str) -> Any:
    """This process's read-only handle of HDF5 file ``file``, opened on first use."""
    handles = _own_handles()
    handle = handles.get(file)
    if handle is None:
        if not os.path.isfile(file):
            raise FileNotFoundError(2, "No such file or directory", file)
        import h5py

        handle = handles[file] = h5py.File(file, "r")
    return handle


def _dataset(path: str, file: str, key: str) -> Any:
    f = _open(file)
    try:
        obj = f[key]
    except KeyError:
        raise MissingImage(f"{key} is not in {file}") from None
    if not hasattr(obj, "dtype"):
        raise ValueError(f"{path}: {key!r} is an HDF5 group, not an encoded image")
    return obj


def read_image_bytes(path: str | Path) -> bytes:
    """The encoded image at ``path``: a file's contents, or the bytes of an HDF5 member.

    A member may hold the bytes as a scalar string (``bytes``), an opaque scalar
    (``np.void``) or a 1-D uint8 array.

    Raises:
        FileNotFoundError: no such file; :class:`MissingImage` when the HDF5 file lacks the key.
        OSError: unreadable file, or not an HDF5 file.
        ValueError: the member is a group or holds something other than bytes.
    """
    member = split_member(path)
    if member is None:
        with open(path, "rb") as f:
            return f.read()
    value = _dataset(str(path), *member)[()]
    if isinstance(value, bytes):  # also np.bytes_
        return bytes(value)
    if isinstance(value, np.void) or (
        isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.ndim == 1
    ):
        return value.tobytes()
    raise ValueError(
        f"{path}: the HDF5 member holds {type(value).__name__} of dtype "
        f"{getattr(value, 'dtype', '?')}, not the bytes of an encoded image"
    )


def image_stat(path: str | Path) -> tuple[int, int]:
    """``(size in bytes, mtime in ns)`` of the image: the file's, or for an HDF5 member its
    stored size and its HDF5 file's mtime (what a cache compares before re-reading)."""
    member = split_member(path)
    if member is None:
        st = os.stat(path)
        return st.st_size, st.st_mtime_ns
    file, key = member
    size = int(_dataset(str(path), file, key).nbytes)
    return size, os.stat(file).st_mtime_ns


def close_hdf5_files() -> None:
    """Close this process's HDF5 handles (e.g. before the file is rewritten)."""
    handles = _own_handles()
    for handle in handles.values():
        handle.close()
    handles.clear()
