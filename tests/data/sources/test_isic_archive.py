"""ISIC Archive reader (``isic image download DIR``): both metadata schemas, both tasks, skips."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from isic_tracking.data.sources import (
    detect_dataset,
    merge_external_malignant,
    read_isic_archive,
    read_source,
)
from isic_tracking.data.sources.isic_archive import detect, diagnosis_class
from isic_tracking.errors import IsicInputError
from tests.data.sources.helpers import check_manifest, jpeg, make_2020, write

#: What isic-cli writes: isic_id, attribution, copyright_license, then the metadata keys sorted.
HEADER_NEW = (
    "isic_id,attribution,copyright_license,age_approx,anatom_site_general,diagnosis_1,"
    "diagnosis_2,diagnosis_3,diagnosis_4,diagnosis_5,diagnosis_confirm_type,image_type,"
    "lesion_id,patient_id,sex"
).split(",")
HEADER_OLD = (
    "isic_id,attribution,copyright_license,age_approx,anatom_site_general,benign_malignant,"
    "diagnosis,diagnosis_confirm_type,image_type,lesion_id,melanocytic,patient_id,sex"
).split(",")
MEL = ("Malignant", "Malignant melanocytic proliferations (Melanoma)", "Melanoma Invasive")
ROWS_NEW = {  # isic_id -> diagnosis_1 .. diagnosis_5
    "ISIC_0000001": (*MEL, "Melanoma Invasive, Superficial spreading", ""),
    "ISIC_0000002": ("Benign", "Benign melanocytic proliferations", "Nevus", "Nevus, Spitz", ""),
    "ISIC_0000003": (
        "Indeterminate",
        "Indeterminate epidermal proliferations",
        "Solar or actinic keratosis",
        "",
        "",
    ),
    "ISIC_0000004": ("", "", "", "", ""),
    "ISIC_0000005": (
        "Malignant",
        "Malignant epidermal proliferations",
        "Squamous cell carcinoma in situ",
        "",
        "",
    ),
    "ISIC_0000006": (
        "Benign",
        "Benign epidermal proliferations",
        "Seborrheic keratosis",
        "",
        "",
    ),
    "ISIC_0000007": (
        "Malignant",
        "Malignant adnexal epithelial proliferations - Follicular",
        "Basal cell carcinoma",
        "Basal cell carcinoma, Nodular",
        "",
    ),
}


def write_csv(path: Path, header: list[str], rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf8") as f:
        writer = csv.DictWriter(f, header)
        writer.writeheader()
        writer.writerows(rows)
    return path


def make_new(root: Path, rows=ROWS_NEW, missing=("ISIC_0000006",)) -> Path:
    records = []
    for k, (isic_id, levels) in enumerate(rows.items()):
        record = {
            "isic_id": isic_id,
            "attribution": "Hospital Clinic de Barcelona",
            "copyright_license": "CC-BY-NC",
            "age_approx": str(40 + 5 * k) if k != 1 else "",
            "anatom_site_general": "posterior torso",
            "diagnosis_confirm_type": "histopathology",
            "image_type": "dermoscopic",
            "lesion_id": f"IL_{k // 2:07d}",
            "patient_id": f"IP_{k // 3:07d}",
            "sex": "female" if k % 2 else "male",
        }
        record |= {f"diagnosis_{i + 1}": v for i, v in enumerate(levels)}
        records.append(record)
        if isic_id not in missing:
            jpeg(root / f"{isic_id}.jpg")
    write_csv(root / "metadata.csv", HEADER_NEW, records)
    jpeg(root / "ISIC_0000099.jpg")  # downloaded but not listed
    write(root / "attribution.txt", ["Hospital Clinic de Barcelona"])
    write(root / "licenses" / "CC-BY-NC.txt", ["licence text"])
    return root


def test_current_schema_binary_labels_from_diagnosis_1(tmp_path):
    result = read_isic_archive(make_new(tmp_path))
    m = check_manifest(result, tmp_path).set_index("image_id")
    assert m["label"].to_dict() == {
        "ISIC_0000001": 1,
        "ISIC_0000002": 0,
        "ISIC_0000005": 1,
        "ISIC_0000007": 1,
    }
    assert m.loc["ISIC_0000001", "label_name"] == "malignant"
    assert m.loc["ISIC_0000002", "label_name"] == "benign"
    assert m.loc["ISIC_0000001", "diagnosis"] == "Melanoma Invasive, Superficial spreading"
    assert m.loc["ISIC_0000001", "patient_id"] == "IP_0000000"
    assert m.loc["ISIC_0000002", "lesion_id"] == "IL_0000000"
    assert m.loc["ISIC_0000007", "sex"] == "male" and m.loc["ISIC_0000007", "age"] == 70.0
    assert pd.isna(m.loc["ISIC_0000002", "age"]) and m.loc["ISIC_0000001", "site"] == (
        "posterior torso"
    )
    assert set(m["source"]) == {"isic-archive"} and set(m["split"]) == {"train"}
    reasons = result.report.set_index("image_id")["reason"].to_dict()
    assert reasons == {
        "ISIC_0000003": "no_label",  # Indeterminate: never guessed
        "ISIC_0000004": "no_label",  # no diagnosis at all
        "ISIC_0000006": "missing_file",
        "ISIC_0000099": "unlisted_file",
    }
    paths = result.report.set_index("image_id")["path"]
    assert paths["ISIC_0000003"] == str(tmp_path.resolve() / "ISIC_0000003.jpg")
    assert paths["ISIC_0000006"] == str(tmp_path.resolve() / "ISIC_0000006.jpg")
    assert (result.n_listed, result.n_missing, result.n_unlisted) == (7, 1, 1)


def test_current_schema_multiclass_from_the_deepest_mapped_level(tmp_path):
    result = read_isic_archive(make_new(tmp_path), task="multiclass")
    m = check_manifest(result, tmp_path).set_index("image_id")
    assert m["label_name"].to_dict() == {
        "ISIC_0000001": "MEL",
        "ISIC_0000002": "NV",  # Nevus, Spitz: its ancestor Nevus is mapped
        "ISIC_0000003": "AK",  # an Indeterminate diagnosis, yet one of the 8 classes
        "ISIC_0000007": "BCC",
    }
    assert m["label"].to_dict() == {
        "ISIC_0000001": 0,
        "ISIC_0000002": 1,
        "ISIC_0000003": 3,
        "ISIC_0000007": 2,
    }
    reasons = result.report.set_index("image_id")["reason"].to_dict()
    assert reasons["ISIC_0000004"] == "unmapped_diagnosis"
    assert reasons["ISIC_0000005"] == "unmapped_diagnosis"  # SCC in situ: AK or SCC?
    assert reasons["ISIC_0000006"] == "missing_file"  # BKL, but no image


OLD_ROWS = [  # isic_id, benign_malignant, diagnosis
    ("ISIC_0000000", "benign", "nevus"),
    ("ISIC_0000001", "malignant", "melanoma"),
    ("ISIC_0000002", "indeterminate/benign", "atypical melanocytic proliferation"),
    ("ISIC_0000003", "benign", "seborrheic keratosis"),
    ("ISIC_0000004", "", "lentigo NOS"),
    ("ISIC_0000005", "Malignant", "Basal Cell Carcinoma"),
]


def make_old(root: Path) -> Path:
    records = []
    for isic_id, bm, dx in OLD_ROWS:
        records.append(
            {
                "isic_id": isic_id,
                "attribution": "Anonymous",
                "copyright_license": "CC-0",
                "age_approx": "55",
                "anatom_site_general": "lower extremity",
                "benign_malignant": bm,
                "diagnosis": dx,
                "diagnosis_confirm_type": "histopathology",
                "image_type": "dermoscopic",
                "lesion_id": "",
                "melanocytic": "True",
                "patient_id": "",
                "sex": "male",
            }
        )
        jpeg(root / f"{isic_id}.jpg")
    write_csv(root / "metadata.csv", HEADER_OLD, records)
    return root


def test_older_schema_benign_malignant_and_flat_diagnosis(tmp_path):
    root = make_old(tmp_path)
    binary = read_isic_archive(root)
    b = check_manifest(binary, tmp_path).set_index("image_id")
    assert b["label"].to_dict() == {
        "ISIC_0000000": 0,
        "ISIC_0000001": 1,
        "ISIC_0000003": 0,
        "ISIC_0000005": 1,  # values are matched case-insensitively
    }
    assert b.loc["ISIC_0000003", "diagnosis"] == "seborrheic keratosis"
    assert pd.isna(b.loc["ISIC_0000000", "patient_id"])  # empty cells stay missing
    assert binary.report[["image_id", "reason"]].values.tolist() == [
        ["ISIC_0000002", "no_label"],
        ["ISIC_0000004", "no_label"],
    ]
    multi = read_source("isic-archive", root, task="multiclass")
    mm = check_manifest(multi, tmp_path).set_index("image_id")
    assert mm["label_name"].to_dict() == {
        "ISIC_0000000": "NV",
        "ISIC_0000001": "MEL",
        "ISIC_0000003": "BKL",
        "ISIC_0000005": "BCC",
    }
    assert sorted(multi.report["image_id"]) == ["ISIC_0000002", "ISIC_0000004"]
    assert set(multi.report["reason"]) == {"unmapped_diagnosis"}


def test_newest_schema_site_from_anatom_site_1_and_absent_columns(tmp_path):
    header = ["isic_id", "attribution", "copyright_license", "anatom_site_1", "diagnosis_1"]
    rows = [
        {"isic_id": "ISIC_0000001", "anatom_site_1": "Trunk", "diagnosis_1": "Malignant"},
        {"isic_id": "ISIC_0000002", "anatom_site_1": "", "diagnosis_1": "Benign"},
    ]
    write_csv(tmp_path / "metadata.csv", header, rows)
    for r in rows:
        jpeg(tmp_path / f"{r['isic_id']}.jpg")
    m = check_manifest(read_isic_archive(tmp_path), tmp_path).set_index("image_id")
    assert m.loc["ISIC_0000001", "site"] == "Trunk" and pd.isna(m.loc["ISIC_0000002", "site"])
    assert m["patient_id"].isna().all() and m["sex"].isna().all() and m["age"].isna().all()
    with pytest.raises(
        IsicInputError, match=r"none of its 2 rows has a usable label \(unmapped_diagnosis"
    ):
        read_isic_archive(tmp_path, task="multiclass")  # diagnosis_1 alone maps to no class


def test_a_task_that_cannot_be_derived_is_a_clear_error(tmp_path):
    header = ["isic_id", "attribution", "copyright_license", "age_approx", "sex"]
    write_csv(tmp_path / "a" / "metadata.csv", header, [{"isic_id": "ISIC_0000001"}])
    with pytest.raises(
        IsicInputError,
        match=r"metadata\.csv: cannot derive the binary task: no column diagnosis_1 or "
        r"benign_malignant .*isic image download",
    ):
        read_isic_archive(tmp_path / "a")
    with pytest.raises(IsicInputError, match=r"cannot derive the multiclass task: no column"):
        read_isic_archive(tmp_path / "a", task="multiclass")
    rows = {"ISIC_0000003": ROWS_NEW["ISIC_0000003"], "ISIC_0000004": ROWS_NEW["ISIC_0000004"]}
    make_new(tmp_path / "b", rows=rows)
    with pytest.raises(IsicInputError, match=r"none of its 2 rows has a usable label \(no_label"):
        read_isic_archive(tmp_path / "b")
    with pytest.raises(IsicInputError, match=r"supports task\(s\).*not 'segmentation'"):
        read_source("isic-archive", tmp_path / "b", task="segmentation")


def test_unknown_label_value_and_missing_metadata_name_the_file(tmp_path):
    rows = dict(ROWS_NEW)
    rows["ISIC_0000002"] = ("Probably benign", "", "", "", "")
    make_new(tmp_path / "a", rows=rows)
    with pytest.raises(
        IsicInputError, match=r"line 3, column 'diagnosis_1': unknown value 'Probably benign'"
    ):
        read_isic_archive(tmp_path / "a")
    jpeg(tmp_path / "b" / "ISIC_0000001.jpg")
    with pytest.raises(IsicInputError, match=r"metadata\.csv not found; .*isic_id,attribution"):
        read_isic_archive(tmp_path / "b")
    make_new(tmp_path / "c")
    lines = (tmp_path / "c" / "metadata.csv").read_text().splitlines()
    (tmp_path / "c" / "metadata.csv").write_text("\n".join([*lines, lines[1]]) + "\n")
    with pytest.raises(IsicInputError, match=r"duplicate isic_id 'ISIC_0000001' on lines \[2, 9\]"):
        read_isic_archive(tmp_path / "c")


def test_diagnosis_class_takes_the_deepest_mapped_ancestor():
    nevus = "Benign:Benign melanocytic proliferations:Nevus"
    assert diagnosis_class(nevus) == "NV"
    assert diagnosis_class(nevus + ":Blue nevus:Blue nevus, Cellular") == "NV"
    assert diagnosis_class("Malignant:Malignant melanocytic proliferations (Melanoma)") == "MEL"
    assert diagnosis_class("Benign:Benign melanocytic proliferations") is None
    assert diagnosis_class("Benign") is None and diagnosis_class("Malignant") is None
    scc = "Malignant:Malignant epidermal proliferations:Squamous cell carcinoma, Invasive"
    assert diagnosis_class(scc + ":Squamous cell carcinoma, Invasive, Verrucous") == "SCC"


def test_detect_isic_archive(tmp_path):
    root = make_new(tmp_path / "download")
    assert detect(root) and detect_dataset(root) == "isic-archive"
    assert detect_dataset(make_old(tmp_path / "old")) == "isic-archive"
    write(tmp_path / "other" / "metadata.csv", ["image,label", "ISIC_0000001,0"])
    assert not detect(tmp_path / "other")
    (tmp_path / "empty").mkdir()
    assert not detect(tmp_path / "empty")


def test_a_download_adds_its_melanomas_to_isic2020(tmp_path):
    base = read_source("isic2020", make_2020(tmp_path / "isic2020"))
    extra = read_source("isic-archive", make_new(tmp_path / "archive"), task="multiclass")
    merged = merge_external_malignant(base, extra)
    added = merged.manifest[merged.manifest["is_external"]]
    assert added["image_id"].tolist() == ["ISIC_0000001"]  # the one melanoma (MEL)
    assert added["label_name"].tolist() == ["malignant"] and added["source"].tolist() == [
        "isic-archive"
    ]
