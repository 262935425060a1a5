"""The readers by data-set name: ``get_reader(name)``, ``read_source`` and ``detect_dataset``.

One :class:`Reader` per official layout (like timm's model registry: a name, the function and
what it supports); entry points list ``READERS`` as their ``--dataset`` choices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from isic_tracking.data.sources import (
    ham10000,
    isic2016,
    isic2019,
    isic2019_folders,
    isic2020,
    isic2024,
    isic_archive,
)
from isic_tracking.data.sources import synthetic as synthetic_source
from isic_tracking.data.sources.checks import require_dir
from isic_tracking.data.sources.result import SourceResult
from isic_tracking.errors import IsicInputError


@dataclass(frozen=True)
class Reader:
    """One data-set layout and how to read it.

    Attributes:
        name: the ``--dataset`` name.
        read: ``read(root)`` or ``read(root, task=...)`` -> :class:`SourceResult`.
        tasks: the tasks it supports; the first is the default.
        description: one line for help texts.
        detect: ``detect(root)`` is True when ``root`` looks like this layout.
    """

    name: str
    read: Callable[..., SourceResult]
    tasks: tuple[str, ...]
    description: str
    detect: Callable[[Path], bool]

    @property
    def default_task(self) -> str:
        """The task used when none is given."""
        return self.tasks[0]


_ALL: tuple[Reader, ...] = (
    Reader(
        "isic2020",
        isic2020.read_isic2020,
        ("binary",),
        "ISIC 2020 (SIIM-ISIC) training set: train.csv + jpeg/train/",
        isic2020.detect,
    ),
    Reader(
        "isic2019",
        isic2019.read_isic2019,
        ("multiclass", "binary"),
        "ISIC 2019 training set: one-hot ground truth + metadata + images",
        isic2019.detect,
    ),
    Reader(
        "isic2019-folders",
        isic2019_folders.read_isic2019_folders,
        ("multiclass", "binary"),
        'Kaggle "Skin Cancer ISIC": {Train,Test}/<class name>/*.jpg',
        isic2019_folders.detect,
    ),
    Reader(
        "isic2016-test",
        isic2016.read_isic2016_test,
        ("binary",),
        "ISIC 2016 Part 3 test set: header-less image,label ground truth",
        isic2016.detect,
    ),
    Reader(
        "ham10000",
        ham10000.read_ham10000,
        ("multiclass", "binary"),
        "HAM10000: metadata CSV + two image folders",
        ham10000.detect,
    ),
    Reader(
        "isic-archive",
        isic_archive.read_isic_archive,
        ("binary", "multiclass"),
        "ISIC Archive download (isic image download DIR): metadata.csv + <isic_id>.jpg",
        isic_archive.detect,
    ),
    Reader(
        "isic2024",
        isic2024.read_isic2024,
        ("binary",),
        "ISIC 2024 (SLICE-3D): train-metadata.csv + train-image.hdf5, read in place",
        isic2024.detect,
    ),
    Reader(
        "synthetic",
        synthetic_source.read_synthetic,
        ("binary", "multiclass"),
        "the bundled synthetic set (make_synthetic) with artifact truth",
        synthetic_source.detect,
    ),
)

#: dataset name -> Reader, in the order the entry points list them.
READERS: dict[str, Reader] = {r.name: r for r in _ALL}

#: The order :func:`detect_dataset` tries the layouts: the synthetic set first (it contains an
#: ISIC 2020 folder), the Kaggle class folders last (any folder with Train/ matches).
_DETECTION_ORDER: tuple[str, ...] = (
    "synthetic",
    "isic2019",
    "ham10000",
    "isic2016-test",
    "isic2024",
    "isic-archive",
    "isic2020",
    "isic2019-folders",
)


def get_reader(name: str) -> Reader:
    """The reader of data set ``name``; an error listing the known names."""
    try:
        return READERS[name]
    except KeyError:
        raise IsicInputError(f"unknown dataset {name!r}; choose one of {list(READERS)}") from None


def read_source(dataset: str, root: str | Path, task: str | None = None) -> SourceResult:
    """Read ``root`` with the reader of ``dataset`` (one of ``READERS``).

    Args:
        dataset: one of ``READERS`` (isic2020, isic2019, isic2019-folders, isic2016-test,
            ham10000, isic-archive, isic2024, synthetic).
        root: the data folder.
        task: ``None`` for the reader's default, else ``"binary"`` / ``"multiclass"``.
    """
    reader = get_reader(dataset)
    require_dir(root, dataset)
    if task is None or task == reader.default_task and len(reader.tasks) == 1:
        return reader.read(root)
    if task not in reader.tasks:
        raise IsicInputError(
            f"dataset {dataset!r} supports task(s) {list(reader.tasks)}, not {task!r}"
        )
    return reader.read(root, task=task)


def detect_dataset(root: str | Path) -> str:
    """Guess the layout under ``root`` (a key of ``READERS``), e.g. for ``extra_malignant``.

    Looks only at a few file and folder names; raises when nothing matches.
    """
    root = require_dir(root, "data")
    for name in _DETECTION_ORDER:
        if READERS[name].detect(root):
            return name
    raise IsicInputError(
        f"{root}: cannot tell which data set this is; expected one of the official layouts "
        f"({list(READERS)}); name it explicitly"
    )
