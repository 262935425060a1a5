"""The layout constants: the one place both the readers and the synthetic writer take them from."""

from __future__ import annotations

import subprocess
import sys

from isic_tracking.data.manifest import MULTICLASS_CLASSES
from isic_tracking.data.sources import constants


def _modules_after_import(module: str) -> set[str]:
    """The isic_tracking modules a fresh interpreter has loaded after ``import module``."""
    code = (
        f"import sys, {module}; "
        "print('\\n'.join(m for m in sys.modules if m.startswith('isic_tracking')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return set(out.split())


def test_readers_never_import_the_synthetic_writer():
    loaded = _modules_after_import("isic_tracking.data.sources")
    assert "isic_tracking.data.sources.registry" in loaded
    assert not {m for m in loaded if m.startswith("isic_tracking.data.synthetic")}


def test_synthetic_writer_takes_its_layout_from_the_reader_constants():
    from isic_tracking.data.synthetic import layouts

    assert layouts.ISIC2020_HEADER is constants.ISIC2020_HEADER
    assert layouts.ISIC2019_GT_HEADER is constants.ISIC2019_GT_HEADER


def test_headers_as_the_official_files_spell_them():
    assert ",".join(constants.ISIC2020_HEADER) == (
        "image_name,patient_id,sex,age_approx,anatom_site_general_challenge,diagnosis,"
        "benign_malignant,target"
    )
    assert constants.ISIC2019_GT_HEADER == ("image", *MULTICLASS_CLASSES, "UNK")
    assert set(constants.HAM_DX.values()) | {"SCC"} == set(MULTICLASS_CLASSES)
    assert set(constants.FOLDER_CLASSES.values()) == set(MULTICLASS_CLASSES)
    assert constants.ISIC2020_LAYOUTS[0] == (constants.ISIC2020_CSV, constants.ISIC2020_IMAGE_DIR)
