"""HAM10000 reader: two image folders, ``dx`` codes, 'unknown' values."""

from __future__ import annotations

import pandas as pd
import pytest

from isic_tracking.data.sources import (
    read_ham10000,
)
from isic_tracking.errors import IsicInputError
from tests.data.sources.helpers import (
    HEADER_HAM,
    check_manifest,
    jpeg,
    write,
)


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
