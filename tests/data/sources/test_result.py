"""Reader results: merging another source's malignant images."""

from __future__ import annotations

import pytest

from isic_tracking.data.manifest import validate_manifest
from isic_tracking.data.sources import (
    merge_external_malignant,
    read_isic2019,
    read_isic2020,
)
from isic_tracking.errors import IsicInputError
from tests.data.sources.helpers import (
    GT_2019,
    make_2019,
    make_2020,
)


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
