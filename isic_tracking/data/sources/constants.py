"""The official layouts as data: file names, exact headers, column values, skip reasons.

Readers check input against these; :mod:`isic_tracking.data.synthetic` writes its layouts with
them, so a synthetic set and the reader of the real one cannot drift apart. This module
imports nothing of the package but the manifest's class lists.
"""

from __future__ import annotations

from isic_tracking.data.manifest import MULTICLASS_CLASSES

# --- ISIC 2020 (Kaggle SIIM-ISIC) ------------------------------------------------------------
ISIC2020_CSV = "train.csv"
ISIC2020_HEADER: tuple[str, ...] = (
    "image_name",
    "patient_id",
    "sex",
    "age_approx",
    "anatom_site_general_challenge",
    "diagnosis",
    "benign_malignant",
    "target",
)
ISIC2020_DUPLICATES_CSV = "ISIC_2020_Training_Duplicates.csv"
ISIC2020_DUPLICATES_HEADER: tuple[str, ...] = ("image_name_1", "image_name_2")
ISIC2020_IMAGE_DIR = "jpeg/train"
#: The resized re-uploads live in folders named like this (``jpeg-melanoma-512x512``).
ISIC2020_RESIZED_GLOB = "jpeg-melanoma-*"
#: (label CSV, image folder) candidates, tried in order: the Kaggle competition layout, the
#: ISIC-site download, and the resized re-upload (``jpeg-melanoma-512x512``: train.csv + train/).
ISIC2020_LAYOUTS: tuple[tuple[str, str], ...] = (
    (ISIC2020_CSV, ISIC2020_IMAGE_DIR),
    ("ISIC_2020_Training_GroundTruth_v2.csv", "ISIC_2020_Training_JPEG/train"),
    ("ISIC_2020_Training_GroundTruth_v2.csv", "train"),
    ("ISIC_2020_Training_GroundTruth.csv", "ISIC_2020_Training_JPEG/train"),
    ("ISIC_2020_Training_GroundTruth.csv", "train"),
    (ISIC2020_CSV, "train"),
)

# --- ISIC 2019 -------------------------------------------------------------------------------
ISIC2019_GT_CSV = "ISIC_2019_Training_GroundTruth.csv"
ISIC2019_GT_HEADER: tuple[str, ...] = ("image", *MULTICLASS_CLASSES, "UNK")
ISIC2019_META_CSV = "ISIC_2019_Training_Metadata.csv"
ISIC2019_META_HEADER: tuple[str, ...] = (
    "image",
    "age_approx",
    "anatom_site_general",
    "lesion_id",
    "sex",
)
ISIC2019_IMAGE_DIR = "ISIC_2019_Training_Input"
DOWNSAMPLED_SUFFIX = "_downsampled"

# --- ISIC 2016 Part 3 test -------------------------------------------------------------------
ISIC2016_TEST_CSV = "ISBI2016_ISIC_Part3_Test_GroundTruth.csv"
ISIC2016_TEST_HEADER: tuple[str, ...] = ("image", "label")  # the file itself has no header
ISIC2016_TEST_IMAGE_DIR = "ISBI2016_ISIC_Part3_Test_Data"

# --- HAM10000 --------------------------------------------------------------------------------
HAM_CSV = "HAM10000_metadata.csv"
HAM_HEADER: tuple[str, ...] = (
    "lesion_id",
    "image_id",
    "dx",
    "dx_type",
    "age",
    "sex",
    "localization",
)
HAM_IMAGE_DIRS: tuple[str, ...] = ("HAM10000_images_part_1", "HAM10000_images_part_2")
HAM_DX: dict[str, str] = {
    "akiec": "AK",
    "bcc": "BCC",
    "bkl": "BKL",
    "df": "DF",
    "mel": "MEL",
    "nv": "NV",
    "vasc": "VASC",
}

# --- Kaggle "Skin Cancer ISIC" class folders -------------------------------------------------
#: Class folder name (lower case) -> ISIC 2019 class.
FOLDER_CLASSES: dict[str, str] = {
    "actinic keratosis": "AK",
    "basal cell carcinoma": "BCC",
    "dermatofibroma": "DF",
    "melanoma": "MEL",
    "nevus": "NV",
    "pigmented benign keratosis": "BKL",
    "seborrheic keratosis": "BKL",
    "squamous cell carcinoma": "SCC",
    "vascular lesion": "VASC",
}
FOLDER_SPLITS: dict[str, str] = {"train": "train", "test": "test"}

# --- the synthetic set (``make_synthetic``): the official layouts plus artifact truth --------
#: Layout folders of a synthetic set, in writing order.
SYNTHETIC_LAYOUTS: tuple[str, ...] = ("isic2020", "isic2019", "isic2016")
TRUTH_FILE = "synthetic_truth.csv"
TRUTH_HEADER: tuple[str, ...] = ("image_id", "artifact")
#: Written only when a shortcut is planted: what was planted and how often, per layout.
SHORTCUT_FILE = "synthetic_shortcut.json"

# --- what every reader shares ----------------------------------------------------------------
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png")
REASONS: tuple[str, ...] = (
    "missing_file",
    "unlisted_file",
    "duplicate_dropped",
    "already_present",
)
REPORT_COLUMNS: tuple[str, ...] = ("image_id", "path", "reason")
