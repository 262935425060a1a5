"""ISIC 2020 reader: the Kaggle, ISIC-site and resized layouts, duplicates, reports, bad rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from isic_tracking.data.sources import (
    read_isic2020,
)
from isic_tracking.errors import IsicInputError
from tests.data.sources.helpers import (
    HEADER_2020,
    ROWS_2020,
    check_manifest,
    jpeg,
    make_2020,
    write,
)


def test_isic2020_official_layout_labels_metadata_and_duplicates(tmp_path):
    root = make_2020(tmp_path, duplicates=["ISIC_0015719,ISIC_0074268"])
    result = read_isic2020(root)
    m = check_manifest(result, tmp_path).set_index("image_id")
    assert "ISIC_0074268" not in m.index  # every image_name_2 dropped
    assert result.n_duplicates_dropped == 1 and result.n_listed == 5
    assert result.report[["image_id", "reason"]].values.tolist() == [
        ["ISIC_0074268", "duplicate_dropped"]
    ]
    assert m.loc["ISIC_0068279", "label"] == 1
    assert m.loc["ISIC_0068279", "label_name"] == "malignant"
    assert m.loc["ISIC_2637011", "label_name"] == "benign"
    assert m.loc["ISIC_2637011", "patient_id"] == "IP_7279968"
    assert m.loc["ISIC_2637011", "site"] == "head/neck"  # anatom_site_general_challenge
    assert m.loc["ISIC_2637011", "age"] == 45.0
    assert pd.isna(m.loc["ISIC_0068279", "age"]) and pd.isna(m.loc["ISIC_0068279", "site"])
    assert set(m["source"]) == {"isic2020"} and set(m["split"]) == {"train"}
    assert not m["is_external"].any()


def test_isic2020_resized_reupload_layout_detected_below_root(tmp_path):
    sub = tmp_path / "jpeg-melanoma-512x512"
    rows = [
        "ISIC_2637011,IP_7279968,male,45.0,head/neck,unknown,benign,0,0,6000,4000",
        "ISIC_0068279,IP_6890425,female,45.0,upper extremity,melanoma,malignant,1,3,1872,1053",
    ]
    write(sub / "train.csv", [HEADER_2020 + ",tfrecord,width,height", *rows])
    for r in rows:
        jpeg(sub / "train" / f"{r.split(',')[0]}.jpg")
    for root in (tmp_path, sub):
        m = check_manifest(read_isic2020(root), sub).set_index("image_id")
        assert m["label"].to_dict() == {"ISIC_2637011": 0, "ISIC_0068279": 1}
        assert m.loc["ISIC_2637011", "orig_width"] == 6000
        assert "tfrecord" not in m.columns


def test_isic2020_isic_site_download_with_lesion_id(tmp_path):
    header = HEADER_2020.replace("patient_id,", "patient_id,lesion_id,")
    rows = ["ISIC_0068279,IP_6890425,IL_0000652,female,45.0,head/neck,melanoma,malignant,1"]
    write(tmp_path / "ISIC_2020_Training_GroundTruth_v2.csv", [header, *rows])
    jpeg(tmp_path / "ISIC_2020_Training_JPEG" / "train" / "ISIC_0068279.jpg")
    m = check_manifest(read_isic2020(tmp_path), tmp_path)
    assert m[["image_id", "lesion_id", "label"]].values.tolist() == [
        ["ISIC_0068279", "IL_0000652", 1]
    ]


def test_isic2020_missing_files_and_unlisted_files_are_reported(tmp_path):
    ids = [r.split(",")[0] for r in ROWS_2020]
    root = make_2020(tmp_path, images=ids[1:] + ["ISIC_9999999"])
    (root / "jpeg" / "train" / "notes.txt").write_text("not an image")
    result = read_isic2020(root)
    assert ids[0] not in set(result.manifest["image_id"])
    assert "ISIC_9999999" not in set(result.manifest["image_id"])
    report = result.report.set_index("image_id")
    assert report.loc[ids[0], "reason"] == "missing_file"
    assert report.loc[ids[0], "path"].endswith(f"jpeg/train/{ids[0]}.jpg")
    assert report.loc["ISIC_9999999", "reason"] == "unlisted_file"
    assert Path(report.loc["ISIC_9999999", "path"]).is_file()
    assert len(report) == 2  # the .txt file is not an image
    assert (result.n_missing, result.n_unlisted, len(result.manifest)) == (1, 1, 4)


def test_isic2020_wrong_column_names_file_columns_and_expected_header(tmp_path):
    write(tmp_path / "train.csv", [HEADER_2020.replace("_challenge", ""), ROWS_2020[0]])
    jpeg(tmp_path / "jpeg" / "train" / "ISIC_2637011.jpg")
    with pytest.raises(IsicInputError) as e:
        read_isic2020(tmp_path)
    msg = str(e.value)
    assert "train.csv" in msg and "['anatom_site_general_challenge']" in msg
    assert HEADER_2020 in msg


def test_unknown_target_value_names_file_line_column_value(tmp_path):
    rows = [*ROWS_2020[:2], ROWS_2020[2][:-1] + "yes"]
    make_2020(tmp_path, rows=rows)
    with pytest.raises(IsicInputError) as e:
        read_isic2020(tmp_path)
    msg = str(e.value)
    assert "train.csv, line 4, column 'target'" in msg and "'yes'" in msg
