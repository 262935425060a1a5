"""ISIC 2016 Part 3 test reader: header-less ground truth, three label spellings."""

from __future__ import annotations

import pytest

from isic_tracking.data.sources import (
    read_isic2016_test,
)
from isic_tracking.errors import IsicInputError
from tests.data.sources.helpers import (
    check_manifest,
    jpeg,
    write,
)


@pytest.mark.parametrize("labels", [("0", "1"), ("0.0", "1.0"), ("benign", "malignant")])
def test_isic2016_test_label_spellings(tmp_path, labels):
    ids = ["ISIC_0000003", "ISIC_0000012", "ISIC_0000013"]
    values = [labels[0], labels[1], labels[0]]
    write(
        tmp_path / "ISBI2016_ISIC_Part3_Test_GroundTruth.csv",
        [f"{i},{v}" for i, v in zip(ids, values)],
    )
    for i in ids:
        jpeg(tmp_path / "ISBI2016_ISIC_Part3_Test_Data" / f"{i}.jpg")
    m = check_manifest(read_isic2016_test(tmp_path), tmp_path)
    assert m["image_id"].tolist() == ids  # no header: the first line is data
    assert m["label"].tolist() == [0, 1, 0]
    assert m["label_name"].tolist() == ["benign", "malignant", "benign"]
    assert set(m["split"]) == {"test"} and set(m["source"]) == {"isic2016"}


def test_isic2016_unknown_label_names_line_and_value(tmp_path):
    write(
        tmp_path / "ISBI2016_ISIC_Part3_Test_GroundTruth.csv",
        ["ISIC_0000003,0", "ISIC_0000012,maybe"],
    )
    with pytest.raises(
        IsicInputError, match=r"GroundTruth\.csv, line 2, column 'label': unknown value 'maybe'"
    ):
        read_isic2016_test(tmp_path)


def test_isic2016_wrong_column_count(tmp_path):
    write(tmp_path / "ISBI2016_ISIC_Part3_Test_GroundTruth.csv", ["ISIC_0000003,0,extra"])
    with pytest.raises(IsicInputError, match=r"3 column\(s\), expected 2 \(image,label, no header"):
        read_isic2016_test(tmp_path)
