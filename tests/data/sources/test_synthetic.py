"""The synthetic reader: every layout read back, artifact truth attached."""

from __future__ import annotations

import pytest

from isic_tracking.data.manifest import MULTICLASS_CLASSES, validate_manifest
from isic_tracking.data.sources import detect_dataset, read_source
from isic_tracking.data.synthetic import read_truth
from isic_tracking.errors import IsicInputError
from tests.data.synthetic.helpers import N


def test_readers_round_trip_with_artifact_truth(synth):
    assert detect_dataset(synth) == "synthetic"
    binary = read_source("synthetic", synth)
    m = validate_manifest(binary.manifest)
    assert binary.n_duplicates_dropped == 2 and binary.n_missing == 0 and binary.n_unlisted == 0
    assert (m["split"] == "train").sum() == N - 2 and (m["split"] == "test").sum() == N // 4
    assert set(m["source"]) == {"synthetic-isic2020", "synthetic-isic2016"}
    truth = read_truth(synth).set_index("image_id")["artifact"]
    assert (m["artifact"] == m["image_id"].map(truth)).all()
    multi = read_source("synthetic", synth, task="multiclass").manifest
    assert len(multi) == N and set(multi["label_name"]) == set(MULTICLASS_CLASSES)
    assert not multi["image_id"].str.endswith("_downsampled").any()
    assert multi["path"].str.endswith("_downsampled.jpg").sum() >= 2
    assert (multi["artifact"] == multi["image_id"].map(truth)).all()
    assert multi["lesion_id"].notna().any()


def test_read_truth_of_a_folder_without_a_synthetic_set_says_how_to_make_one(tmp_path):
    with pytest.raises(IsicInputError, match=r"no synthetic_truth\.csv found.*-e synth"):
        read_truth(tmp_path)
