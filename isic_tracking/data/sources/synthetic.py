"""The synthetic set of :func:`isic_tracking.data.synthetic.make_synthetic`: the official
layouts read by their own readers, plus each image's artifact truth."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from isic_tracking.data.manifest import normalize_manifest
from isic_tracking.data.sources.checks import require_dir
from isic_tracking.data.sources.constants import (
    MASK_COLUMN,
    MASK_DIR,
    SHORTCUT_FILE,
    SYNTHETIC_LAYOUTS,
    TRUTH_FILE,
)
from isic_tracking.data.sources.isic2016 import read_isic2016_test
from isic_tracking.data.sources.isic2019 import read_isic2019
from isic_tracking.data.sources.isic2020 import read_isic2020
from isic_tracking.data.sources.result import SourceResult, concat_results
from isic_tracking.errors import IsicInputError


def detect(root: Path) -> bool:
    """True when ``root`` holds a synthetic ISIC 2020 layout (with its truth file)."""
    return (root / "isic2020").is_dir() and (root / "isic2020" / TRUTH_FILE).is_file()


def read_truth(root: str | Path) -> pd.DataFrame:
    """The artifact truth of a synthetic set: ``image_id, artifact, layout``.

    Args:
        root: the ``make_synthetic`` output folder, or one of its layout folders.
    """
    root = Path(root)
    if (root / TRUTH_FILE).is_file():
        found = [(root.name, root / TRUTH_FILE)]
    else:
        found = [(name, root / name / TRUTH_FILE) for name in SYNTHETIC_LAYOUTS]
        found = [(name, p) for name, p in found if p.is_file()]
    if not found:
        raise IsicInputError(
            f"{root}: no {TRUTH_FILE} found; create a synthetic set with make_synthetic "
            "(`mlflow run . -e synth`)"
        )
    tables = [
        pd.read_csv(p, dtype=str, keep_default_na=False).assign(layout=name) for name, p in found
    ]
    return pd.concat(tables, ignore_index=True)


def read_shortcut(root: str | Path) -> dict[str, dict]:
    """The planted shortcut of a synthetic set, per layout (``{}`` when none was planted).

    Each value is the layout's ``synthetic_shortcut.json``: ``artifact``, ``rate`` and the
    counts and rates of malignant / benign images that carry the artifact.
    """
    root = Path(root)
    found = {name: root / name / SHORTCUT_FILE for name in SYNTHETIC_LAYOUTS}
    return {name: json.loads(p.read_text()) for name, p in found.items() if p.is_file()}


def _mask_path(root: Path, image: str) -> str:
    """The packed mask beside an image of the set (``<layout>/masks/<stem>.png``), or ``""``."""
    path = Path(image).resolve()
    layout = path.relative_to(root.resolve()).parts[0]
    mask = root.resolve() / layout / MASK_DIR / f"{path.stem}.png"
    return str(mask) if mask.is_file() else ""


def read_synthetic(root: str | Path, task: str = "binary") -> SourceResult:
    """The output of :func:`isic_tracking.data.synthetic.make_synthetic`, with artifact truth.

    Binary: ``isic2020/`` (train) plus ``isic2016/`` (split "test"); multiclass: ``isic2019/``.
    Sources are prefixed ``synthetic-`` so runs never pass synthetic data off as real.
    The ``artifact`` column comes from each folder's ``synthetic_truth.csv``, the ``mask``
    column (absolute path, empty when the set has none) from its ``masks/`` folder.
    """
    root = require_dir(root, "synthetic")
    if task == "binary":
        parts = [read_isic2020(root / "isic2020")]
        if (root / "isic2016").is_dir():
            parts.append(read_isic2016_test(root / "isic2016"))
        result = concat_results(parts)
    elif task == "multiclass":
        result = read_isic2019(root / "isic2019", task="multiclass")
    else:
        raise IsicInputError(f"unknown task {task!r}; choose 'binary' or 'multiclass'")
    manifest = result.manifest
    manifest["source"] = "synthetic-" + manifest["source"]
    truth = read_truth(root).drop_duplicates("image_id").set_index("image_id")["artifact"]
    manifest["artifact"] = manifest["image_id"].map(truth).fillna("none").astype(str)
    manifest[MASK_COLUMN] = [_mask_path(root, p) for p in manifest["path"]]
    result.manifest = normalize_manifest(manifest)
    return result
