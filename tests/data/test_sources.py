"""Readers of the official layouts, on tiny files that copy the official headers exactly."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from isic_tracking.data.manifest import MANIFEST_COLUMNS, MULTICLASS_CLASSES, validate_manifest
from isic_tracking.data.sources import (
    READERS,
    SourceResult,
    detect_dataset,
    merge_external_malignant,
    read_ham10000,
    read_isic2016_test,
    read_isic2019,
    read_isic2019_folders,
    read_isic2020,
    read_source,
    scan_images,
)
from isic_tracking.errors import IsicInputError

HEADER_2020 = (
    "image_name,patient_id,sex,age_approx,anatom_site_general_challenge,diagnosis,"
    "benign_malignant,target"
)
HEADER_2019_GT = "image,MEL,NV,BCC,AK,BKL,DF,VASC,SCC,UNK"
HEADER_2019_META = "image,age_approx,anatom_site_general,lesion_id,sex"
HEADER_HAM = "lesion_id,image_id,dx,dx_type,age,sex,localization"


def jpeg(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (140, 90, 70)).save(path)
    return path


def write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


ROWS_2020 = [
    "ISIC_2637011,IP_7279968,male,45.0,head/neck,unknown,benign,0",
    "ISIC_0015719,IP_3075186,female,45.0,upper extremity,unknown,benign,0",
    "ISIC_0052212,IP_2842074,female,50.0,lower extremity,nevus,benign,0",
    "ISIC_0068279,IP_6890425,female,,,melanoma,malignant,1",
    "ISIC_0074268,IP_6890425,female,55.0,upper extremity,unknown,benign,0",
]


def make_2020(root: Path, rows=ROWS_2020, images=None, duplicates=None) -> Path:
    write(root / "train.csv", [HEADER_2020, *rows])
    ids = [r.split(",")[0] for r in rows] if images is None else images
    for i in ids:
        jpeg(root / "jpeg" / "train" / f"{i}.jpg")
    if duplicates is not None:
        write(
            root / "ISIC_2020_Training_Duplicates.csv", ["image_name_1,image_name_2", *duplicates]
        )
    return root


def make_2019(root: Path, gt_rows, meta_rows=None, images=None) -> Path:
    write(root / "ISIC_2019_Training_GroundTruth.csv", [HEADER_2019_GT, *gt_rows])
    if meta_rows is not None:
        write(root / "ISIC_2019_Training_Metadata.csv", [HEADER_2019_META, *meta_rows])
    ids = [r.split(",")[0] for r in gt_rows] if images is None else images
    for i in ids:
        jpeg(root / "ISIC_2019_Training_Input" / f"{i}.jpg")
    return root


GT_2019 = [
    "ISIC_0000000,0.0,1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0",
    "ISIC_0000002_downsampled,1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0",
    "ISIC_0010491,0.0,0.0,1.0,0.0,0.0,0.0,0.0,0.0,0.0",
    "ISIC_0024329,0.0,0.0,0.0,1.0,0.0,0.0,0.0,0.0,0.0",
    "ISIC_0053456,0.0,0.0,0.0,0.0,0.0,0.0,0.0,1.0,0.0",
]
META_2019 = [
    "ISIC_0000000,55.0,anterior torso,,female",
    "ISIC_0000002_downsampled,60.0,upper extremity,,female",
    "ISIC_0010491,,posterior torso,BCN_0000031,male",
    "ISIC_0024329,75.0,lower extremity,HAM_0002954,female",
    "ISIC_0053456,70.0,head/neck,BCN_0003925,male",
]


def check_manifest(result: SourceResult, root: Path) -> pd.DataFrame:
    m = result.manifest
    assert list(m.columns[: len(MANIFEST_COLUMNS)]) == list(MANIFEST_COLUMNS)
    validate_manifest(m)
    for p in m["path"]:
        assert os.path.isabs(p) and Path(p).is_file()
        assert Path(p).resolve().is_relative_to(root.resolve())
    return m


# --- ISIC 2020 --------------------------------------------------------------------------------
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


@pytest.mark.parametrize("content", ["", HEADER_2020 + "\n"], ids=["zero-bytes", "header-only"])
def test_empty_csv_is_an_error(tmp_path, content):
    (tmp_path / "jpeg" / "train").mkdir(parents=True)
    (tmp_path / "train.csv").write_text(content)
    with pytest.raises(IsicInputError, match=r"train\.csv (is empty|has no data rows)"):
        read_isic2020(tmp_path)


def test_unknown_target_value_names_file_line_column_value(tmp_path):
    rows = [*ROWS_2020[:2], ROWS_2020[2][:-1] + "yes"]
    make_2020(tmp_path, rows=rows)
    with pytest.raises(IsicInputError) as e:
        read_isic2020(tmp_path)
    msg = str(e.value)
    assert "train.csv, line 4, column 'target'" in msg and "'yes'" in msg


def test_duplicate_ids_in_csv_name_file_and_lines(tmp_path):
    make_2020(tmp_path, rows=[ROWS_2020[0], ROWS_2020[1], ROWS_2020[0]])
    with pytest.raises(
        IsicInputError, match=r"train\.csv: duplicate image_name 'ISIC_2637011' on lines \[2, 4\]"
    ):
        read_isic2020(tmp_path)


def test_root_that_does_not_exist_is_a_clear_error(tmp_path):
    with pytest.raises(IsicInputError, match="does not exist"):
        read_isic2020(tmp_path / "nope")
    with pytest.raises(IsicInputError, match="no ISIC 2020 layout"):
        read_isic2020(tmp_path)


# --- ISIC 2019 --------------------------------------------------------------------------------
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


# --- Kaggle folders ---------------------------------------------------------------------------
def test_isic2019_folders_classes_with_spaces_and_splits(tmp_path):
    root = tmp_path / "Skin cancer ISIC The International Skin Imaging Collaboration"
    jpeg(root / "Train" / "melanoma" / "ISIC_0000139.jpg")
    jpeg(root / "Train" / "seborrheic keratosis" / "ISIC_0010808.jpg")
    jpeg(root / "Train" / "pigmented benign keratosis" / "ISIC_0024324.jpg")
    jpeg(root / "Train" / "actinic keratosis" / "ISIC_0025780.jpg")
    jpeg(root / "Test" / "basal cell carcinoma" / "ISIC_0024331.jpg")
    jpeg(root / "Test" / "vascular lesion" / "ISIC_0024375.jpg")
    jpeg(root / "Test" / "melanoma" / "ISIC_0000139.jpg")  # same id again: kept once
    result = read_isic2019_folders(tmp_path)  # the Kaggle zip's extra folder is entered
    m = check_manifest(result, tmp_path).set_index("image_id")
    assert m["label_name"].to_dict() == {
        "ISIC_0000139": "MEL",
        "ISIC_0010808": "BKL",
        "ISIC_0024324": "BKL",
        "ISIC_0025780": "AK",
        "ISIC_0024331": "BCC",
        "ISIC_0024375": "VASC",
    }
    assert m.loc["ISIC_0000139", "split"] == "train" and m.loc["ISIC_0024331", "split"] == "test"
    assert result.n_duplicates_dropped == 1
    assert result.report["path"].iloc[0].endswith("Test/melanoma/ISIC_0000139.jpg")


def test_isic2019_folders_unknown_class_folder_lists_known_names(tmp_path):
    jpeg(tmp_path / "Train" / "melanoma" / "ISIC_0000139.jpg")
    jpeg(tmp_path / "Train" / "freckle" / "ISIC_0000140.jpg")
    with pytest.raises(
        IsicInputError, match=r"unknown class folder 'freckle'.*'actinic keratosis'"
    ):
        read_isic2019_folders(tmp_path)


# --- ISIC 2016 --------------------------------------------------------------------------------
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


# --- HAM10000 ---------------------------------------------------------------------------------
def test_ham10000_two_parts_dx_mapping_and_extra_dataset_column(tmp_path):
    rows = [
        "HAM_0000118,ISIC_0027419,bkl,histo,80.0,male,scalp,vidir_modern",
        "HAM_0002730,ISIC_0026769,akiec,histo,80.0,male,scalp,vidir_modern",
        "HAM_0001466,ISIC_0031633,mel,histo,75.0,unknown,ear,rosendahl",
        "HAM_0001466,ISIC_0027850,nv,follow_up,,female,unknown,vienna_dias",
    ]
    write(tmp_path / "HAM10000_metadata.csv", [HEADER_HAM + ",dataset", *rows])
    jpeg(tmp_path / "HAM10000_images_part_1" / "ISIC_0027419.jpg")
    jpeg(tmp_path / "HAM10000_images_part_1" / "ISIC_0026769.jpg")
    jpeg(tmp_path / "HAM10000_images_part_2" / "ISIC_0031633.jpg")
    jpeg(tmp_path / "HAM10000_images_part_2" / "ISIC_0027850.jpg")
    m = check_manifest(read_ham10000(tmp_path), tmp_path).set_index("image_id")
    assert m["label_name"].to_dict() == {
        "ISIC_0027419": "BKL",
        "ISIC_0026769": "AK",
        "ISIC_0031633": "MEL",
        "ISIC_0027850": "NV",
    }
    assert m.loc["ISIC_0031633", "lesion_id"] == "HAM_0001466"
    assert pd.isna(m.loc["ISIC_0031633", "sex"]) and pd.isna(m.loc["ISIC_0027850", "site"])
    assert m.loc["ISIC_0027419", "site"] == "scalp" and pd.isna(m.loc["ISIC_0027850", "age"])
    b = read_ham10000(tmp_path, task="binary").manifest
    assert b.loc[b["label"] == 1, "image_id"].tolist() == ["ISIC_0031633"]


def test_ham10000_unknown_dx(tmp_path):
    write(
        tmp_path / "HAM10000_metadata.csv",
        [HEADER_HAM, "HAM_1,ISIC_0000001,lentigo,histo,50,male,back"],
    )
    with pytest.raises(IsicInputError, match=r"line 2, column 'dx': unknown value 'lentigo'"):
        read_ham10000(tmp_path)


# --- dispatch, merge, safety ------------------------------------------------------------------
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
        "synthetic",
    }


def test_merge_external_malignant_adds_only_new_malignant_images(tmp_path):
    base = read_isic2020(make_2020(tmp_path / "isic2020"))
    gt = [*GT_2019, "ISIC_0068279,1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0"]  # also in base
    extra = read_isic2019(make_2019(tmp_path / "isic2019", gt))
    merged = merge_external_malignant(base, extra)
    m = validate_manifest(merged.manifest).set_index("image_id")
    added = m[m["is_external"]]
    assert added.index.tolist() == ["ISIC_0000002"]  # MEL only, the overlap skipped
    assert added["label"].tolist() == [1] and added["label_name"].tolist() == ["malignant"]
    assert added["split"].tolist() == ["train"] and added["source"].tolist() == ["isic2019"]
    assert (m["label"] == 1).sum() == 2  # 1 + 1
    assert merged.n_external_added == 1 and merged.n_already_present == 1
    assert merged.report.set_index("image_id").loc["ISIC_0068279", "reason"] == "already_present"
    wider = merge_external_malignant(base, extra, malignant_classes=("MEL", "BCC", "SCC"))
    assert wider.n_external_added == 3
    with pytest.raises(IsicInputError, match="binary base"):
        merge_external_malignant(extra, base)


def test_scan_images_filters_extensions_and_prefers_jpg(tmp_path):
    jpeg(tmp_path / "a.JPG")
    jpeg(tmp_path / "b.jpg")
    Image.new("RGB", (4, 4)).save(tmp_path / "b.png")
    (tmp_path / ".c.jpg").write_bytes(b"")
    (tmp_path / "d.txt").write_text("x")
    (tmp_path / "e.jpg").mkdir()
    files = scan_images(tmp_path)
    assert sorted(files) == ["a", "b"] and files["b"].endswith("b.jpg")


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


def test_isic2019_images_in_a_nested_input_folder(tmp_path):
    make_2019(tmp_path, GT_2019[:2], images=[])
    nested = tmp_path / "ISIC_2019_Training_Input" / "ISIC_2019_Training_Input"
    jpeg(nested / "ISIC_0000000.jpg")
    jpeg(nested / "ISIC_0000002_downsampled.jpg")
    m = read_isic2019(tmp_path).manifest
    assert len(m) == 2 and all(Path(p).parent == nested.resolve() for p in m["path"])


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
