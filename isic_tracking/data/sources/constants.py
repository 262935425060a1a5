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

# --- ISIC Archive: a folder written by the official CLI (``isic image download DIR``) ---------
# Checked against ImageMarkup/isic-cli (``isic_cli/cli/image.py``, ``_extract_metadata``:
# ``isic_id,attribution,copyright_license`` then every metadata key of the downloaded images,
# sorted; a key no image has is no column), ImageMarkup/isic-metadata (``benign_malignant`` and
# the flat ``diagnosis`` until 2024-10 / 2025-06, then ``diagnosis_1`` .. ``diagnosis_5``, each
# one level of ``DiagnosisEnum``, e.g. ``Benign:Benign melanocytic proliferations:Nevus``;
# ``anatom_site_general`` removed 2026-05 for ``anatom_site_1`` .. ``_5``) and ImageMarkup/isic
# (``age_approx`` computed from the age). Images: ``DIR/<isic_id>.<ext>`` (usually jpg).
ARCHIVE_CSV = "metadata.csv"
ARCHIVE_HEADER: tuple[str, ...] = (
    "isic_id",
    "attribution",
    "copyright_license",
    "age_approx",
    "anatom_site_general",
    "benign_malignant",
    "diagnosis",
    "diagnosis_1",
    "diagnosis_2",
    "diagnosis_3",
    "diagnosis_4",
    "diagnosis_5",
    "lesion_id",
    "patient_id",
    "sex",
)
ARCHIVE_DIAGNOSIS_LEVELS: tuple[str, ...] = tuple(f"diagnosis_{i}" for i in range(1, 6))
#: Binary label columns, in the order they are asked: the current schema first. The first with a
#: value in a row decides; "Indeterminate" (or "indeterminate/benign", ...) gives no label.
ARCHIVE_BINARY_COLUMNS: tuple[str, ...] = ("diagnosis_1", "benign_malignant")
ARCHIVE_BINARY: dict[str, int] = {"benign": 0, "malignant": 1}
ARCHIVE_NO_BINARY: tuple[str, ...] = (
    "indeterminate",
    "indeterminate/benign",
    "indeterminate/malignant",
)
#: Old flat ``diagnosis`` values (isic-metadata ``DiagnosisEnum`` before 2024-10) -> ISIC 2019
#: class; the others ("lentigo NOS", "nevus spilus", "AIMP", "other", ...) are not mapped.
ARCHIVE_OLD_DIAGNOSES: dict[str, str] = {
    "melanoma": "MEL",
    "melanoma metastasis": "MEL",
    "nevus": "NV",
    "basal cell carcinoma": "BCC",
    "actinic keratosis": "AK",
    "seborrheic keratosis": "BKL",
    "solar lentigo": "BKL",
    "lichenoid keratosis": "BKL",
    "pigmented benign keratosis": "BKL",
    "dermatofibroma": "DF",
    "vascular lesion": "VASC",
    "angioma": "VASC",
    "angiokeratoma": "VASC",
    "pyogenic granuloma": "VASC",
    "squamous cell carcinoma": "SCC",
}
#: Hierarchical diagnoses (``diagnosis_1:...:diagnosis_N``) -> ISIC 2019 class; a row takes the
#: class of its deepest listed ancestor. Unlisted on purpose: squamous cell carcinoma in situ
#: (Bowen's disease: AK in HAM10000, SCC elsewhere), indeterminate melanocytic lesions.
ARCHIVE_DIAGNOSES: dict[str, str] = {
    "Malignant:Malignant melanocytic proliferations (Melanoma)": "MEL",
    "Benign:Benign melanocytic proliferations:Nevus": "NV",
    "Malignant:Malignant adnexal epithelial proliferations - Follicular:Basal cell carcinoma": (
        "BCC"
    ),
    "Indeterminate:Indeterminate epidermal proliferations:Solar or actinic keratosis": "AK",
    "Benign:Benign epidermal proliferations:Seborrheic keratosis": "BKL",
    "Benign:Benign epidermal proliferations:Solar lentigo": "BKL",
    "Benign:Benign epidermal proliferations:Lichen planus like keratosis": "BKL",
    "Benign:Benign epidermal proliferations:Pigmented benign keratosis": "BKL",
    "Benign:Benign soft tissue proliferations - Fibro-histiocytic:Dermatofibroma": "DF",
    "Benign:Benign soft tissue proliferations - Vascular:Hemangioma": "VASC",
    "Benign:Benign soft tissue proliferations - Vascular:Angiokeratoma": "VASC",
    "Benign:Benign soft tissue proliferations - Vascular:Pyogenic granuloma": "VASC",
    "Malignant:Malignant epidermal proliferations:Squamous cell carcinoma, Invasive": "SCC",
    "Malignant:Malignant epidermal proliferations:Squamous cell carcinoma, NOS": "SCC",
}

# --- ISIC 2024 / SLICE-3D (Kaggle isic-2024-challenge) ---------------------------------------
ISIC2024_CSV = "train-metadata.csv"
#: The first 6 of its 55 columns (``lesion_id``, ``iddx_full`` come later); the images are the
#: members of ISIC2024_HDF5, key = isic_id, value = the JPEG bytes.
ISIC2024_HEADER: tuple[str, ...] = (
    "isic_id",
    "target",
    "patient_id",
    "age_approx",
    "sex",
    "anatom_site_general",
)
ISIC2024_HDF5 = "train-image.hdf5"

# --- the synthetic set (``make_synthetic``): the official layouts plus artifact truth --------
#: Layout folders of a synthetic set, in writing order.
SYNTHETIC_LAYOUTS: tuple[str, ...] = ("isic2020", "isic2019", "isic2016")
TRUTH_FILE = "synthetic_truth.csv"
TRUTH_HEADER: tuple[str, ...] = ("image_id", "artifact")
#: Written only when a shortcut is planted: what was planted and how often, per layout.
SHORTCUT_FILE = "synthetic_shortcut.json"
#: Written only when near-duplicates are planted, in the set's root folder: one row per pair.
NEAR_DUPLICATES_FILE = "synthetic_near_duplicates.csv"
NEAR_DUPLICATES_HEADER: tuple[str, ...] = (
    "image_id",
    "layout",
    "copy_of",
    "copy_of_layout",
    "jpeg_quality",
    "scale",
    "crop_left",
    "crop_top",
    "crop_right",
    "crop_bottom",
)
#: The synthetic set's folder of bit-packed concept masks, and the manifest column naming each
#: image's mask file (empty: none); see :mod:`isic_tracking.data.synthetic.masks`.
MASK_DIR = "masks"
MASK_COLUMN = "mask"

# --- what every reader shares ----------------------------------------------------------------
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png")
REASONS: tuple[str, ...] = (
    "missing_file",
    "unlisted_file",
    "duplicate_dropped",
    "already_present",
    "no_label",
    "unmapped_diagnosis",
    "missing_in_hdf5",
    "leakage_duplicate",
)
REPORT_COLUMNS: tuple[str, ...] = ("image_id", "path", "reason")
