"""A torch Dataset over a manifest, and a DataLoader with sensible, seeded defaults."""

from __future__ import annotations

import io
import random
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision.io import ImageReadMode, decode_jpeg

from isic_tracking.data.cache import to_rgb
from isic_tracking.data.image_bytes import read_image_bytes, split_member
from isic_tracking.errors import IsicInputError

_JPEG_MAGIC = b"\xff\xd8\xff"


def decode_image_file(path: str) -> Tensor:
    """Read an image file, or an HDF5 member (``train-image.hdf5::ISIC_0015670``, see
    :mod:`isic_tracking.data.image_bytes`), as a uint8 RGB ``[3, H, W]`` tensor, upright (see
    :func:`decode_image_bytes`)."""
    if split_member(path) is not None:  # each worker process opens the HDF5 file once
        return decode_image_bytes(read_image_bytes(path))
    return decode_image_bytes(np.fromfile(path, dtype=np.uint8))


def decode_image_bytes(data: bytes | np.ndarray) -> Tensor:
    """Decode an encoded image (file contents) as a uint8 RGB ``[3, H, W]`` tensor, upright.

    JPEGs (every cached image) go through libjpeg-turbo via :func:`torchvision.io.decode_jpeg`;
    anything else through PIL and :func:`isic_tracking.data.cache.to_rgb`, so grayscale,
    alpha, palette and 16-bit files give the same RGB as the cache. The served model decodes
    its input with this function too, so it sees the pixels training saw.
    """
    if not isinstance(data, np.ndarray):
        data = np.frombuffer(bytes(data), dtype=np.uint8).copy()
    if data[:3].tobytes() == _JPEG_MAGIC:
        try:
            return decode_jpeg(
                torch.from_numpy(data), mode=ImageReadMode.RGB, apply_exif_orientation=True
            )
        except RuntimeError as e:  # "decode_jpeg, <C++ source:line>, <reason>": keep the reason
            raise ValueError(str(e).rsplit(", ", 1)[-1]) from e
    img = to_rgb(Image.open(io.BytesIO(data.tobytes())))
    return torch.from_numpy(np.array(img)).permute(2, 0, 1).contiguous()


class ManifestDataset(Dataset):
    """Images and integer labels of a manifest.

    Paths and labels are kept in numpy arrays rather than the DataFrame: indexing them is
    cheap and, unlike lists of Python objects, does not copy pages into every forked
    DataLoader worker through reference counting.

    Args:
        df (DataFrame): a manifest (``image_id``, ``path``, ``label`` are used).
        transform (callable, optional): applied to the uint8 ``[3, H, W]`` tensor.
        return_index (bool, default False): also return the row position (to map
            predictions or activations back to ``df.iloc[index]``).
    """

    def __init__(
        self,
        df: pd.DataFrame,
        transform: Callable[[Tensor], Tensor] | None = None,
        return_index: bool = False,
    ) -> None:
        missing = [c for c in ("image_id", "path", "label") if c not in df.columns]
        if missing:
            raise IsicInputError(f"manifest lacks column(s) {missing} needed to load images")
        self.image_ids = np.asarray(df["image_id"].astype(str), dtype=str)
        self.paths = np.asarray(df["path"].astype(str), dtype=str)
        self.labels = np.asarray(df["label"], dtype=np.int64)
        self.transform = transform
        self.return_index = return_index

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Tensor, int] | tuple[Tensor, int, int]:
        path = str(self.paths[index])
        try:
            img = decode_image_file(path)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            raise IsicInputError(
                f"cannot decode image {self.image_ids[index]!r} at {path}: {e}. Run "
                "`prepare` on the data set: it caches readable images and lists bad ones "
                "in skipped.csv"
            ) from e
        if self.transform is not None:
            img = self.transform(img)
        label = int(self.labels[index])
        return (img, label, index) if self.return_index else (img, label)


def seed_worker(worker_id: int) -> None:
    """Seed numpy and ``random`` in a DataLoader worker from its torch seed.

    torch seeds each worker as ``base_seed + worker_id`` (base drawn from the loader's
    generator); numpy and ``random`` would otherwise repeat the same stream in every worker.
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(
    df: pd.DataFrame,
    transform: Callable[[Tensor], Tensor] | None,
    batch_size: int = 32,
    shuffle: bool = False,
    workers: int = 0,
    seed: int = 0,
    sampler: Sampler | None = None,
    drop_last: bool = False,
    return_index: bool = False,
) -> DataLoader:
    """A DataLoader over ``df`` whose shuffle order depends only on ``seed``.

    Args:
        df (DataFrame): a manifest.
        transform (callable): see :func:`isic_tracking.data.transforms.build_transforms`.
        batch_size (int, default 32): images per batch.
        shuffle (bool, default False): reshuffle each pass (ignored when ``sampler`` is set).
        workers (int, default 0): worker processes; 0 loads in the calling process.
        seed (int, default 0): seeds the shuffle order and the workers' random streams.
        sampler (Sampler, optional): e.g. a ``DistributedSampler`` or weighted sampler.
        drop_last (bool, default False): drop the last incomplete batch.
        return_index (bool, default False): batches are ``(images, labels, indices)``.

    With ``workers > 0`` the random augmentations also follow ``seed`` (each worker's torch,
    numpy and ``random`` streams derive from it); with ``workers=0`` they use the global torch
    RNG, seeded by :func:`isic_tracking.utils.seed_everything`. Workers persist across
    passes (no re-spawn per epoch); memory is pinned only when CUDA is available, where it
    speeds up host-to-device copies.
    """
    if batch_size < 1:
        raise IsicInputError(f"batch_size={batch_size} must be >= 1")
    if workers < 0:
        raise IsicInputError(f"workers={workers} must be >= 0")
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        ManifestDataset(df, transform, return_index=return_index),
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        drop_last=drop_last,
        persistent_workers=workers > 0,
        worker_init_fn=seed_worker if workers > 0 else None,
        generator=generator,
    )
