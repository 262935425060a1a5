"""ISIC 2019 reader: one-hot ground truth, ``_downsampled`` ids, metadata, binary task."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from isic_tracking.data.manifest import MULTICLASS_CLASSES
from isic_tracking.data.sources import (
    read_isic2019,
)
from isic_tracking.errors import IsicInputError
from tests.data.sources.helpers import (
    GT_2019,
    HEADER_2019_GT,
    META_2019,
    check_manifest,
    jpeg,
    make_2019,
    write,
)


def test_isic2019_one_hot_downsampled_ids_and_metadata_join(tmp_path):
    root = make_2019(tmp_path, GT_2019, META_2019)
    result = read_isic2019(root)
    m = check_manifest(result, tmp_path).set_index("image_id")
    assert m["label_name"].to_dict() == {
        "ISIC_0000000": "NV",
        "ISIC_0000002": "MEL",  # _downsampled stripped from the id ...
        "ISIC_0010491": "BCC",
        "ISIC_0024329": "AK",
        "ISIC_0053456": "SCC",
    }
    assert m.loc["ISIC_0000002", "path"].endswith("ISIC_0000002_downsampled.jpg")  # ... not path
    assert (m["label"] == [MULTICLASS_CLASSES.index(n) for n in m["label_name"]]).all()
    assert m.loc["ISIC_0000002", "age"] == 60.0 and m.loc["ISIC_0000002", "sex"] == "female"
    assert m.loc["ISIC_0000002", "site"] == "upper extremity"
    assert pd.isna(m.loc["ISIC_0000000", "lesion_id"])
    assert m.loc["ISIC_0024329", "lesion_id"] == "HAM_0002954"
    assert len(result.report) == 0 and set(m["source"]) == {"isic2019"}


def test_isic2019_metadata_without_suffix_still_joins_and_metadata_is_optional(tmp_path):
    meta = [r.replace("_downsampled", "") for r in META_2019]
    m = read_isic2019(make_2019(tmp_path / "a", GT_2019, meta)).manifest.set_index("image_id")
    assert m.loc["ISIC_0000002", "age"] == 60.0
    m = read_isic2019(make_2019(tmp_path / "b", GT_2019)).manifest
    assert len(m) == 5 and m["age"].isna().all()


@pytest.mark.parametrize(
    "row, pattern",
    [
        (
            "ISIC_0000001,1.0,1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0",
            r"line 3 \(ISIC_0000001\): 2 classes set \['MEL', 'NV'\]",
        ),
        (
            "ISIC_0000001,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0",
            r"line 3 \(ISIC_0000001\): 0 classes set",
        ),
        (
            "ISIC_0000001,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,1.0",
            r"line 3 \(ISIC_0000001\): column 'UNK' is set",
        ),
        (
            "ISIC_0000001,0.0,2.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0",
            r"line 3, column 'NV': unknown value '2.0'",
        ),
    ],
    ids=["two-ones", "no-one", "unk", "bad-value"],
)
def test_isic2019_bad_one_hot_rows_name_the_row(tmp_path, row, pattern):
    make_2019(tmp_path, [GT_2019[0], row])
    with pytest.raises(IsicInputError, match=r"ISIC_2019_Training_GroundTruth\.csv, " + pattern):
        read_isic2019(tmp_path)


def test_isic2019_binary_task_and_malignant_classes(tmp_path):
    root = make_2019(tmp_path, GT_2019, META_2019)
    m = read_isic2019(root, task="binary").manifest.set_index("image_id")
    assert m["label_name"][m["label"] == 1].index.tolist() == ["ISIC_0000002"]
    assert set(m["label_name"]) == {"benign", "malignant"}
    m = read_isic2019(root, task="binary", malignant_classes=("MEL", "BCC", "SCC")).manifest
    assert sorted(m.loc[m["label"] == 1, "image_id"]) == [
        "ISIC_0000002",
        "ISIC_0010491",
        "ISIC_0053456",
    ]
    with pytest.raises(IsicInputError, match=r"unknown \['melanoma'\]"):
        read_isic2019(root, task="binary", malignant_classes=("melanoma",))


def test_isic2019_missing_ground_truth_columns(tmp_path):
    write(tmp_path / "ISIC_2019_Training_GroundTruth.csv", ["image,MEL,NV", "ISIC_0000000,1.0,0.0"])
    with pytest.raises(IsicInputError) as e:
        read_isic2019(tmp_path)
    assert "ISIC_2019_Training_GroundTruth.csv" in str(e.value)
    assert "'BCC'" in str(e.value) and HEADER_2019_GT in str(e.value)


def test_isic2019_images_in_a_nested_input_folder(tmp_path):
    make_2019(tmp_path, GT_2019[:2], images=[])
    nested = tmp_path / "ISIC_2019_Training_Input" / "ISIC_2019_Training_Input"
    jpeg(nested / "ISIC_0000000.jpg")
    jpeg(nested / "ISIC_0000002_downsampled.jpg")
    m = read_isic2019(tmp_path).manifest
    assert len(m) == 2 and all(Path(p).parent == nested.resolve() for p in m["path"])
