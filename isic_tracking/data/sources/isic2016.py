"""ISIC 2016 Part 3 test set: a header-less ``image,label`` ground truth, labels in 3 spellings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from isic_tracking.data.manifest import BINARY_CLASSES
from isic_tracking.data.sources.checks import (
    check_unique,
    parse_binary,
    read_csv_checked,
    require_dir,
    require_file,
)
from isic_tracking.data.sources.constants import (
    ISIC2016_TEST_CSV,
    ISIC2016_TEST_HEADER,
    ISIC2016_TEST_IMAGE_DIR,
)
from isic_tracking.data.sources.files import find_image_dir, match_files, scan_images
from isic_tracking.data.sources.result import SourceResult, finish


def detect(root: Path) -> bool:
    """True when ``root`` holds the ISIC 2016 test ground-truth CSV."""
    return (root / ISIC2016_TEST_CSV).is_file()


def read_isic2016_test(root: str | Path) -> SourceResult:
    """ISIC 2016 Part 3 test set (379 images): header-less ``image,label`` ground truth.

    Labels may be 0/1, 0.0/1.0 or benign/malignant (the training file's spelling).

    Args:
        root: folder with ``ISBI2016_ISIC_Part3_Test_GroundTruth.csv`` and
            ``ISBI2016_ISIC_Part3_Test_Data/``.

    Returns:
        SourceResult with source ``"isic2016"``, split ``"test"``.
    """
    root = require_dir(root, "ISIC 2016 test")
    path = require_file(root / ISIC2016_TEST_CSV, "ISIC 2016 ground truth", ISIC2016_TEST_HEADER)
    df = read_csv_checked(path, ISIC2016_TEST_HEADER, ISIC2016_TEST_HEADER, header=False)
    check_unique(df["image"], path, "image", header=False)
    labels = parse_binary(df["label"], path, "label", header=False, strings=True)
    out = pd.DataFrame(
        {
            "image_id": df["image"],
            "label": labels,
            "label_name": np.where(labels == 1, BINARY_CLASSES[1], BINARY_CLASSES[0]),
            "split": "test",
            "source": "isic2016",
        }
    )
    image_dir = find_image_dir(root, ISIC2016_TEST_IMAGE_DIR)
    files = scan_images(image_dir)
    paths, missing, unlisted = match_files(out["image_id"], files, image_dir)
    return finish(out, paths, [missing, unlisted], n_listed=len(df))
