"""The registry: names, dispatch with task checks, layout detection, read-only readers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from isic_tracking.data.sources import (
    READERS,
    Reader,
    detect_dataset,
    get_reader,
    read_source,
)
from isic_tracking.errors import IsicInputError
from tests.data.sources.helpers import (
    GT_2019,
    HEADER_HAM,
    META_2019,
    jpeg,
    make_2019,
    make_2020,
    write,
)


def test_read_source_dispatch_and_errors(tmp_path):
    make_2020(tmp_path / "isic2020")
    assert len(read_source("isic2020", tmp_path / "isic2020").manifest) == 5
    with pytest.raises(IsicInputError, match=r"unknown dataset 'isic2018'.*'isic2019-folders'"):
        read_source("isic2018", tmp_path)
    with pytest.raises(IsicInputError, match="does not exist"):
        read_source("isic2019", tmp_path / "missing")
    with pytest.raises(IsicInputError, match=r"supports task\(s\) \['binary'\], not 'multiclass'"):
        read_source("isic2020", tmp_path / "isic2020", task="multiclass")
    assert set(READERS) == {
        "isic2020",
        "isic2019",
        "isic2019-folders",
        "isic2016-test",
        "ham10000",
        "isic-archive",
        "isic2024",
        "synthetic",
    }


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def test_readers_never_modify_the_data_folder(tmp_path):
    make_2020(tmp_path / "isic2020", duplicates=["ISIC_0015719,ISIC_0074268"])
    make_2019(tmp_path / "isic2019", GT_2019, META_2019)
    before = _snapshot(tmp_path)
    read_source("isic2020", tmp_path / "isic2020")
    read_source("isic2019", tmp_path / "isic2019", task="binary")
    assert _snapshot(tmp_path) == before


def test_detect_dataset_from_file_names(tmp_path):
    make_2020(tmp_path / "a")
    make_2019(tmp_path / "b", GT_2019)
    jpeg(tmp_path / "c" / "wrapper" / "Train" / "nevus" / "ISIC_0000001.jpg")
    write(tmp_path / "d" / "HAM10000_metadata.csv", [HEADER_HAM])
    write(tmp_path / "e" / "ISBI2016_ISIC_Part3_Test_GroundTruth.csv", ["ISIC_0000003,0"])
    (tmp_path / "f").mkdir()
    found = {k: detect_dataset(tmp_path / k) for k in "abcde"}
    assert found == {
        "a": "isic2020",
        "b": "isic2019",
        "c": "isic2019-folders",
        "d": "ham10000",
        "e": "isic2016-test",
    }
    with pytest.raises(IsicInputError, match="cannot tell which data set"):
        detect_dataset(tmp_path / "f")


def test_get_reader_unknown_name_lists_every_known_name():
    with pytest.raises(IsicInputError) as e:
        get_reader("isic2018")
    msg = str(e.value)
    assert "unknown dataset 'isic2018'" in msg
    for name in READERS:
        assert repr(name) in msg


def test_readers_are_frozen_dataclasses_with_their_own_name_and_default_task():
    for name, reader in READERS.items():
        assert isinstance(reader, Reader) and reader.name == name
        assert get_reader(name) is reader
        assert reader.default_task == reader.tasks[0]
        assert set(reader.tasks) <= {"binary", "multiclass"} and reader.description
    assert get_reader("isic2020").default_task == "binary"
    assert get_reader("isic2019").default_task == "multiclass"
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_reader("isic2020").tasks = ("multiclass",)  # type: ignore[misc]


def test_each_reader_detects_its_layout_and_the_order_resolves_overlaps(tmp_path):
    make_2020(tmp_path / "isic2020")
    make_2019(tmp_path / "isic2019", GT_2019)
    jpeg(tmp_path / "isic2019-folders" / "Train" / "nevus" / "ISIC_0000001.jpg")
    write(tmp_path / "ham10000" / "HAM10000_metadata.csv", [HEADER_HAM])
    write(tmp_path / "isic2016-test" / "ISBI2016_ISIC_Part3_Test_GroundTruth.csv", ["I,0"])
    make_2020(tmp_path / "synthetic" / "isic2020")
    write(tmp_path / "synthetic" / "isic2020" / "synthetic_truth.csv", ["image_id,artifact"])
    write(tmp_path / "isic-archive" / "metadata.csv", ["isic_id,attribution,diagnosis_1"])
    write(tmp_path / "isic-archive" / "licenses" / "CC-0.txt", ["licence"])
    write(tmp_path / "isic2024" / "train-metadata.csv", ["isic_id,target,patient_id"])
    hits = {
        layout: [name for name, r in READERS.items() if r.detect(tmp_path / layout)]
        for layout in READERS
    }
    # ISIC 2020's single jpeg/ folder (holding train/) looks like the Kaggle zip's wrapper
    # folder around Train/: the class-folders layout is tried last for that reason.
    assert hits == {
        "isic2020": ["isic2020", "isic2019-folders"],
        "isic2019": ["isic2019"],
        "isic2019-folders": ["isic2019-folders"],
        "isic2016-test": ["isic2016-test"],
        "ham10000": ["ham10000"],
        "isic-archive": ["isic-archive"],
        "isic2024": ["isic2024"],
        "synthetic": ["synthetic"],
    }
    assert {layout: detect_dataset(tmp_path / layout) for layout in READERS} == {
        layout: layout for layout in READERS
    }
