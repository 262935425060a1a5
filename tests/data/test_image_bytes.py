"""Image bytes from a file or from a member of an HDF5 file (``file.hdf5::key``)."""

from __future__ import annotations

import multiprocessing
import os

import h5py
import numpy as np
import pytest

from isic_tracking.data.image_bytes import (
    MissingImage,
    close_hdf5_files,
    image_stat,
    member_path,
    read_image_bytes,
    split_member,
)
from tests.data.sources.helpers import jpeg_bytes, write_hdf5


@pytest.fixture
def h5(tmp_path):
    path = write_hdf5(
        tmp_path / "train-image.hdf5",
        {"ISIC_0000001": jpeg_bytes(1), "ISIC_0000002": jpeg_bytes(2)},
        as_void={"ISIC_0000002"},
    )
    with h5py.File(path, "a") as f:
        f["as_array"] = np.frombuffer(jpeg_bytes(3), dtype=np.uint8)
        f.create_group("group")
        f["floats"] = np.zeros(3)
    yield path
    close_hdf5_files()


def test_member_paths_round_trip_and_plain_paths_are_files():
    path = member_path("/data/isic2024/train-image.hdf5", "ISIC_0015670")
    assert path == "/data/isic2024/train-image.hdf5::ISIC_0015670"
    assert split_member(path) == ("/data/isic2024/train-image.hdf5", "ISIC_0015670")
    assert split_member("rel/x.H5::grp/key") == ("rel/x.H5", "grp/key")
    assert split_member("/data/ISIC_0000001.jpg") is None
    assert split_member("/data/odd::name.jpg") is None  # "::" without an HDF5 file before it
    assert split_member("/data/train-image.hdf5") is None  # the file itself, no key


def test_members_read_like_files_whatever_the_storage(h5, tmp_path):
    assert read_image_bytes(member_path(h5, "ISIC_0000001")) == jpeg_bytes(1)  # |S<n>
    assert read_image_bytes(member_path(h5, "ISIC_0000002")) == jpeg_bytes(2)  # opaque
    assert read_image_bytes(member_path(h5, "as_array")) == jpeg_bytes(3)  # uint8 array
    plain = tmp_path / "ISIC_0000001.jpg"
    plain.write_bytes(jpeg_bytes(1))
    assert read_image_bytes(plain) == read_image_bytes(member_path(h5, "ISIC_0000001"))
    size, mtime_ns = image_stat(member_path(h5, "ISIC_0000001"))
    assert size == len(jpeg_bytes(1)) and mtime_ns == os.stat(h5).st_mtime_ns
    assert image_stat(plain) == (plain.stat().st_size, plain.stat().st_mtime_ns)


def test_missing_and_unusable_members_raise_what_the_cache_reports(h5, tmp_path):
    with pytest.raises(MissingImage, match=r"^ISIC_9999999 is not in .*train-image\.hdf5$"):
        read_image_bytes(member_path(h5, "ISIC_9999999"))
    assert issubclass(MissingImage, FileNotFoundError)
    with pytest.raises(FileNotFoundError):
        read_image_bytes(member_path(tmp_path / "absent.hdf5", "ISIC_0000001"))
    with pytest.raises(FileNotFoundError):
        read_image_bytes(tmp_path / "absent.jpg")
    with pytest.raises(ValueError, match="HDF5 group"):
        read_image_bytes(member_path(h5, "group"))
    with pytest.raises(ValueError, match="float64"):
        read_image_bytes(member_path(h5, "floats"))
    not_hdf5 = tmp_path / "fake.hdf5"
    not_hdf5.write_bytes(b"plain text")
    with pytest.raises(OSError):
        read_image_bytes(member_path(not_hdf5, "ISIC_0000001"))


def _open_files() -> int:
    """HDF5 files this process holds open (the library's own count)."""
    return h5py.h5f.get_obj_count(h5py.h5f.OBJ_ALL, h5py.h5f.OBJ_FILE)


def test_each_process_opens_the_file_once(h5):
    close_hdf5_files()
    assert _open_files() == 0
    for _ in range(5):
        read_image_bytes(member_path(h5, "ISIC_0000001"))
        image_stat(member_path(h5, "ISIC_0000002"))
    assert _open_files() == 1  # one handle for ten reads
    close_hdf5_files()
    assert _open_files() == 0


def _child_reads(path: str, queue) -> None:
    queue.put((read_image_bytes(path), _open_files()))


def test_a_forked_child_opens_its_own_handle(h5):
    path = member_path(h5, "ISIC_0000002")
    assert read_image_bytes(path) == jpeg_bytes(2)  # the parent holds the file open
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_reads, args=(path, queue))
    child.start()
    data, n_open = queue.get(timeout=60)
    child.join(60)
    assert child.exitcode == 0 and data == jpeg_bytes(2)
    assert n_open == 2  # its own, plus the inherited one it never touches
    assert read_image_bytes(path) == jpeg_bytes(2)  # the parent's handle still works
