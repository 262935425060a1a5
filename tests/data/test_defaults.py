"""The default manifest: built once under $ISIC_DATA_DIR, then reused; task checks."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from isic_tracking.data import defaults
from isic_tracking.data.defaults import data_dir, default_manifest, load_task_manifest
from isic_tracking.data.manifest import MULTICLASS_CLASSES
from isic_tracking.errors import IsicInputError


@pytest.fixture
def small_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$ISIC_DATA_DIR at tmp_path, with a small synthetic default (48 images at 32 px)."""
    monkeypatch.setenv("ISIC_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(defaults, "SYNTH_N_IMAGES", 48)
    monkeypatch.setattr(defaults, "SYNTH_IMAGE_SIZE", 32)
    monkeypatch.setattr(defaults, "CACHE_SIZE", 32)
    return tmp_path


def test_data_dir_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``$ISIC_DATA_DIR`` when set, ``./data`` otherwise."""
    monkeypatch.delenv("ISIC_DATA_DIR", raising=False)
    assert data_dir() == Path("data")
    monkeypatch.setenv("ISIC_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path


def test_default_manifest_is_built_once_and_reused(small_data_dir: Path) -> None:
    """The first call generates + prepares; the second returns the cached manifest as is."""
    path = default_manifest("binary")
    assert path == small_data_dir / "synthetic" / "prepared-binary" / "manifest.csv"
    assert path.is_file()
    assert (small_data_dir / "synthetic" / "raw" / "isic2020" / "train.csv").is_file()
    df = pd.read_csv(path)
    assert set(df["label_name"]) <= {"benign", "malignant"} and len(df) > 0
    # mark the cached manifest: a rebuild would overwrite it, a reuse keeps it
    df.iloc[:5].to_csv(path, index=False)
    assert default_manifest("binary") == path
    assert len(pd.read_csv(path)) == 5


def test_other_task_reuses_the_raw_data(small_data_dir: Path) -> None:
    """A second task prepares from the raw data already generated (not regenerated)."""
    default_manifest("binary")
    train_csv = small_data_dir / "synthetic" / "raw" / "isic2020" / "train.csv"
    marker = train_csv.read_text() + "\n"  # a regenerated raw set would lose this newline
    train_csv.write_text(marker)
    path = default_manifest("multiclass")
    assert path == small_data_dir / "synthetic" / "prepared-multiclass" / "manifest.csv"
    assert train_csv.read_text() == marker
    assert set(pd.read_csv(path)["label_name"]) <= set(MULTICLASS_CLASSES)


def test_unknown_task_fails_before_generating(small_data_dir: Path) -> None:
    """An unknown task is refused without writing any data."""
    with pytest.raises(IsicInputError):
        default_manifest("ternary")
    assert not (small_data_dir / "synthetic").exists()


def test_load_task_manifest_reads_a_fitting_manifest(binary_manifest: Path) -> None:
    """A binary manifest for the binary task: read and returned with its path."""
    df, path = load_task_manifest(str(binary_manifest), "binary")
    assert path == str(binary_manifest)
    assert len(df) == len(pd.read_csv(binary_manifest))
    assert set(df["label_name"]) == {"benign", "malignant"}


@pytest.mark.parametrize("task", ["multiclass", "binary"])
def test_load_task_manifest_rejects_the_other_tasks_labels(
    binary_manifest: Path, multiclass_manifest: Path, task: str
) -> None:
    """Labels of the other task: the error names the path, the labels and the task."""
    manifest = binary_manifest if task == "multiclass" else multiclass_manifest
    with pytest.raises(IsicInputError) as err:
        load_task_manifest(str(manifest), task)
    msg = str(err.value)
    assert str(manifest) in msg and repr(task) in msg and "pick the other task" in msg
    offending = "['benign', 'malignant']" if task == "multiclass" else "['AK', 'BCC'"
    assert f"label names {offending}" in msg


def test_load_task_manifest_defaults_to_the_synthetic_data(small_data_dir: Path) -> None:
    """No manifest given: the default synthetic manifest of the task, built on demand."""
    df, path = load_task_manifest(None, "binary")
    assert Path(path) == small_data_dir / "synthetic" / "prepared-binary" / "manifest.csv"
    assert len(df) == len(pd.read_csv(path))


def test_load_task_manifest_missing_file(tmp_path: Path) -> None:
    """A manifest path that does not exist is an input error naming it."""
    missing = tmp_path / "nope.csv"
    with pytest.raises(IsicInputError, match="does not exist"):
        load_task_manifest(str(missing), "binary")
