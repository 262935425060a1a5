"""A manifest's evaluation images decoded once per run, read back as often as needed.

An analysis stage passes over the same images several times (``filters``: the ranking, then
the ablation of each ranked layer, the exemplar grids, the attribution maps). Decoding a JPEG
and resizing it costs more than reading its pixels back, and at the thesis's scale (thousands
of 224 px images) the passes are many. :class:`DecodedImages` decodes each image once, on the
first pass (through the usual :func:`~isic_tracking.data.dataset.make_loader`, workers
included), and writes its uint8 pixels after the resize and centre crop to a scratch file;
every later pass and every random access reads them back and normalizes. Memory stays one
batch whatever the number of images (the file is read with ``pread``, not mapped, so the
pixels never count towards the process's resident memory); the file, ``3 x S x S`` bytes per
image (147 KiB at 224 px), is deleted by :meth:`DecodedImages.close` (a ``with`` block), and
a crash leaves it only in the system's temporary folder.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torchvision.transforms import v2

from isic_tracking.data.dataset import make_loader
from isic_tracking.data.transforms import IMAGENET_MEAN, IMAGENET_STD


def _geometry(size: int) -> v2.Compose:
    """The uint8 part of the evaluation transform: resize the short side, centre crop."""
    return v2.Compose([v2.ToImage(), v2.Resize(size, antialias=True), v2.CenterCrop(size)])


class _Pixels:
    """Random access ``index -> (normalized image, label, index)`` over the scratch file."""

    def __init__(self, owner: DecodedImages) -> None:
        self.owner = owner

    def __len__(self) -> int:
        return len(self.owner.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, int, int]:
        self.owner.decode()
        x = self.owner.read(int(index), 1)
        return x[0], int(self.owner.labels[index]), int(index)


class DecodedImages:
    """Re-iterable ``(images, labels, indices)`` batches of ``rows``' evaluation images,
    normalized with ``mean``/``std`` (``mean=None``: floats in ``[0, 1]``), in row order.

    The first iteration decodes (``workers`` processes) and fills the scratch file; later
    ones read it. ``dataset[i]`` gives ``(image, label, i)`` like a ``ManifestDataset`` with
    ``return_index=True`` (decoding everything first if no pass has run yet).

    Args:
        rows: a manifest's rows (``image_id``, ``path``, ``label``).
        size: output side (resize short side + centre crop, as evaluation does).
        mean, std: normalization of the model's input.
        batch_size: images per batch.
        workers: decoding processes of the first pass.
        scratch: folder of the scratch file (default: the system's temporary folder).
    """

    def __init__(
        self,
        rows: pd.DataFrame,
        size: int,
        mean: Sequence[float] | None = IMAGENET_MEAN,
        std: Sequence[float] | None = IMAGENET_STD,
        batch_size: int = 64,
        workers: int = 0,
        scratch: str | Path | None = None,
    ) -> None:
        self.rows, self.size, self.batch_size, self.workers = rows, int(size), batch_size, workers
        self.labels = np.asarray(rows["label"], dtype=np.int64)
        self.mean = None if mean is None else torch.tensor(mean).view(1, 3, 1, 1)
        self.std = None if std is None else torch.tensor(std).view(1, 3, 1, 1)
        self._dir = tempfile.TemporaryDirectory(prefix="isic-decoded-", dir=scratch)
        self.path = Path(self._dir.name) / "pixels.u8"
        self._fd: int | None = None
        self._decoded = False
        self.dataset = _Pixels(self)

    @property
    def image_bytes(self) -> int:
        return 3 * self.size * self.size

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    def _normalize(self, pixels: Tensor) -> Tensor:
        x = pixels.float().div_(255.0)
        return x if self.mean is None else (x - self.mean) / self.std

    def read(self, start: int, count: int) -> Tensor:
        """``count`` images from row ``start`` on, normalized ``[count, 3, S, S]``."""
        buf = os.pread(self._fd, count * self.image_bytes, start * self.image_bytes)
        arr = np.frombuffer(buf, dtype=np.uint8).reshape(count, 3, self.size, self.size)
        return self._normalize(torch.from_numpy(arr.copy()))

    def _first_pass(self) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        loader = make_loader(
            self.rows, _geometry(self.size), self.batch_size, workers=self.workers,
            return_index=True,
        )  # fmt: skip
        if self._fd is not None:  # an earlier first pass left unfinished: start again
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        for pixels, labels, idx in loader:
            pixels = pixels.as_subclass(Tensor).contiguous()
            os.pwrite(self._fd, pixels.numpy().tobytes(), int(idx[0]) * self.image_bytes)
            yield self._normalize(pixels), labels, idx
        self._decoded = True

    def decode(self) -> None:
        """Decode every image now (no-op once done)."""
        if not self._decoded:
            for _ in self._first_pass():
                pass

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        if not self._decoded:
            yield from self._first_pass()
            return
        n = len(self.labels)
        for start in range(0, n, self.batch_size):
            count = min(self.batch_size, n - start)
            idx = torch.arange(start, start + count)
            yield self.read(start, count), torch.from_numpy(self.labels[idx.numpy()]), idx

    def close(self) -> None:
        """Delete the scratch file."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._dir.cleanup()

    def __enter__(self) -> DecodedImages:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
