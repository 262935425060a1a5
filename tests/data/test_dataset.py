from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch.utils.data import SequentialSampler

from isic_tracking.data.dataset import ManifestDataset, decode_image_file, make_loader
from isic_tracking.data.image_bytes import close_hdf5_files, member_path
from isic_tracking.data.manifest import normalize_manifest
from isic_tracking.data.transforms import build_transforms
from isic_tracking.errors import IsicInputError
from tests.data.sources.helpers import write_hdf5


def image_manifest(folder: Path, n: int = 6, size: int = 20) -> pd.DataFrame:
    """``n`` small JPEGs whose red channel encodes the row (10 * i) so order can be read back."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        path = folder / f"img{i}.jpg"
        arr = np.zeros((size, size + 4, 3), np.uint8)
        arr[..., 0] = 10 * i
        arr[..., 1] = 128
        Image.fromarray(arr).save(path, quality=100)
        rows.append(
            {
                "image_id": f"img{i}",
                "path": str(path),
                "label": i % 2,
                "label_name": ("benign", "malignant")[i % 2],
                "source": "test",
            }
        )
    return normalize_manifest(pd.DataFrame(rows))


def row_of(img: torch.Tensor) -> int:
    """The row index encoded in an un-normalized float image's red channel."""
    return round(float(img[0].mean()) * 255 / 10)


def test_items_are_uint8_rgb_without_transform(tmp_path):
    df = image_manifest(tmp_path)
    ds = ManifestDataset(df, transform=None)
    img, label = ds[3]
    assert len(ds) == 6 and img.dtype == torch.uint8 and img.shape == (3, 20, 24)
    assert label == 1 and isinstance(label, int)
    assert abs(int(img[0].float().mean()) - 30) <= 2
    img, label, idx = ManifestDataset(df, None, return_index=True)[4]
    assert (label, idx) == (0, 4)


def test_transform_is_applied(tmp_path):
    ds = ManifestDataset(image_manifest(tmp_path), build_transforms(16, train=False, mean=None))
    img, _ = ds[2]
    assert img.shape == (3, 16, 16) and img.dtype == torch.float32
    assert row_of(img) == 2


def test_non_jpeg_files_decode_to_rgb(tmp_path):
    gray = tmp_path / "gray.png"
    Image.new("L", (10, 8), 77).save(gray)
    rgba = tmp_path / "rgba.png"
    Image.new("RGBA", (10, 8), (10, 20, 30, 0)).save(rgba)  # transparent: white, as in the cache
    img = decode_image_file(str(gray))
    assert img.shape == (3, 8, 10) and img.dtype == torch.uint8 and int(img.max()) == 77
    assert int(decode_image_file(str(rgba)).min()) == 255


def test_cmyk_and_gray_jpegs_decode_to_rgb(tmp_path):
    cmyk, gray = tmp_path / "cmyk.jpg", tmp_path / "gray.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(cmyk)  # pure red
    Image.new("L", (8, 8), 77).save(gray)
    assert decode_image_file(str(cmyk))[:, 4, 4].tolist() == [255, 0, 0]
    assert decode_image_file(str(gray)).shape == (3, 8, 8)


def test_jpeg_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "rot.jpg"
    img = Image.new("RGB", (40, 20), (200, 0, 0))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 deg clockwise when displayed
    img.save(path, exif=exif)
    assert decode_image_file(str(path)).shape == (3, 40, 20)


@pytest.mark.parametrize("content", [b"", b"\xff\xd8\xff\xe0garbage", b"plain text"])
def test_undecodable_file_names_id_and_path(tmp_path, content):
    df = image_manifest(tmp_path, n=2)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(content)
    df.loc[1, "path"] = str(bad)
    ds = ManifestDataset(df, None)
    with pytest.raises(IsicInputError, match=r"'img1'.*bad\.jpg"):
        ds[1]


def test_missing_file_raises_input_error(tmp_path):
    df = image_manifest(tmp_path, n=1)
    df.loc[0, "path"] = str(tmp_path / "nowhere.jpg")
    with pytest.raises(IsicInputError, match="nowhere.jpg"):
        ManifestDataset(df, None)[0]


def test_missing_columns_raise():
    with pytest.raises(IsicInputError, match="path"):
        ManifestDataset(pd.DataFrame({"image_id": ["a"], "label": [0]}), None)


def test_loader_batches_and_indices(tmp_path):
    df = image_manifest(tmp_path, n=5)
    tf = build_transforms(16, train=False, mean=None)
    loader = make_loader(df, tf, batch_size=2, return_index=True)
    batches = list(loader)
    assert [len(b[0]) for b in batches] == [2, 2, 1]
    images, labels, idx = batches[0]
    assert images.shape == (2, 3, 16, 16) and labels.dtype == torch.int64
    assert idx.tolist() == [0, 1] and [row_of(x) for x in images] == [0, 1]
    assert len(list(make_loader(df, tf, batch_size=2, drop_last=True))) == 2
    assert not loader.pin_memory or torch.cuda.is_available()


def test_shuffle_order_follows_the_seed(tmp_path):
    df = image_manifest(tmp_path, n=8)

    def order(seed: int) -> list[int]:
        loader = make_loader(df, None, batch_size=8, shuffle=True, seed=seed, return_index=True)
        return next(iter(loader))[2].tolist()

    assert order(1) == order(1)
    assert order(1) != order(2)
    assert sorted(order(1)) == list(range(8))


def test_sampler_overrides_shuffle(tmp_path):
    df = image_manifest(tmp_path, n=4)
    ds_order = make_loader(
        df, None, batch_size=4, shuffle=True, sampler=SequentialSampler(range(4)), return_index=True
    )
    assert next(iter(ds_order))[2].tolist() == [0, 1, 2, 3]


def test_workers_are_persistent_and_augmentation_reproducible(tmp_path):
    df = image_manifest(tmp_path, n=4)
    tf = build_transforms(16, train=True, mean=None)

    def run(seed: int) -> torch.Tensor:
        loader = make_loader(df, tf, batch_size=2, workers=2, seed=seed)
        assert loader.persistent_workers
        return torch.cat([b[0] for b in loader])

    a, b, c = run(5), run(5), run(6)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_bad_loader_arguments(tmp_path):
    df = image_manifest(tmp_path, n=1)
    with pytest.raises(IsicInputError, match="batch_size"):
        make_loader(df, None, batch_size=0)
    with pytest.raises(IsicInputError, match="workers"):
        make_loader(df, None, workers=-1)


def test_hdf5_members_load_like_files_in_worker_processes(tmp_path):
    """``file.hdf5::key`` paths (ISIC 2024 read in place): the same tensors as the files,
    also from DataLoader workers, each opening the HDF5 file for itself."""
    df = image_manifest(tmp_path / "files", n=4)
    h5 = write_hdf5(
        tmp_path / "images.hdf5", {i: Path(p).read_bytes() for i, p in zip(df.image_id, df.path)}
    )
    members = df.assign(path=[member_path(h5, i) for i in df["image_id"]])
    assert torch.equal(
        decode_image_file(members.loc[2, "path"]), decode_image_file(df.loc[2, "path"])
    )
    from_files = torch.cat([b[0] for b in make_loader(df, None, batch_size=2)])
    from_h5 = torch.cat([b[0] for b in make_loader(members, None, batch_size=2, workers=2)])
    assert torch.equal(from_h5, from_files)
    missing = members.assign(path=member_path(h5, "img9"))
    with pytest.raises(IsicInputError, match=r"'img0'.*img9 is not in .*images\.hdf5"):
        ManifestDataset(missing, None)[0]
    close_hdf5_files()
