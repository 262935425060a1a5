"""Kaggle "Skin Cancer ISIC" class folders reader."""

from __future__ import annotations

import pytest

from isic_tracking.data.sources import (
    read_isic2019_folders,
)
from isic_tracking.errors import IsicInputError
from tests.data.sources.helpers import (
    check_manifest,
    jpeg,
)


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
