"""Bissoto artifact labels: both file kinds, bad rows, name mapping, the join onto a manifest
and the filters stage's multi-label groups on the result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from isic_tracking.data.artifact_labels import (
    ANNOTATED,
    INFERRED,
    join_artifacts,
    label_id,
    read_artifact_labels,
)
from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.filters import filter_percentages, membership
from isic_tracking.stages.filters.outputs import group_sources

HEADER_2020 = "image;dark_corner;hair;gel_border;gel_bubble;ruler;ink;patches;label;label_string"
HEADER_2022 = (
    "image,dark_corner,hair,gel_border,gel_bubble,ruler,ink,patches,label,label_string,vasc"
)


@pytest.fixture
def annotated(tmp_path: Path) -> Path:
    """Bissoto 2020 style: 0/1, ';', ids with .png; line 5 non-numeric, line 6 a duplicate,
    line 7 not 0/1."""
    lines = [
        HEADER_2020,
        "ISIC_0000000.png;1;1;0;0;0;0;0;0;benign",  # dark corner + hair
        "ISIC_0000001.png;0;0;0;0;0;0;0;1;malignant",  # none
        "ISIC_0000002.png;0;0;1;1;1;1;1;0;benign",  # gel border, fluid, ruler, ink, sticker
        "ISIC_0000003.png;0;x;0;0;0;0;0;0;benign",
        "ISIC_0000000.png;0;0;0;0;0;0;0;0;benign",
        "ISIC_0000004.png;0;2;0;0;0;0;0;0;benign",
        "ISIC_9999999.png;0;1;0;0;0;0;0;0;benign",  # not in the data
    ]
    path = tmp_path / "isic_bias.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def inferred(tmp_path: Path) -> Path:
    """Bissoto 2022 style: probabilities, ',', vasc; label_string deliberately wrong; line 4
    out of range."""
    lines = [
        HEADER_2022,
        "ISIC_0000000,0.9,0.2,0.0,0.0,0.7,0.0,0.0,0,MEL,0.1",
        "ISIC_0000001_downsampled,0.1,0.6,0.0,0.0,0.0,0.0,0.0,1,NV,0.8",
        "ISIC_0000002,0.1,1.5,0.0,0.0,0.0,0.0,0.0,1,NV,0.0",
    ]
    path = tmp_path / "isic_inferred_wocarcinoma.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _manifest(ids) -> pd.DataFrame:
    return pd.DataFrame({"image_id": list(ids), "label_name": "benign"})


def test_annotated_file_kind_names_and_bad_rows(annotated: Path):
    labels = read_artifact_labels(annotated)
    assert labels.kind == ANNOTATED
    assert labels.artifacts == [
        "dark_corners", "hair", "gel_border", "fluid", "ruler", "ink", "sticker"
    ]  # fmt: skip
    assert list(labels.table["image_id"]) == [
        "ISIC_0000000",
        "ISIC_0000001",
        "ISIC_0000002",
        "ISIC_9999999",
    ]
    skipped = labels.skipped
    assert list(skipped["line"]) == [5, 6, 7]
    assert list(skipped["reason"]) == [
        "not a number",
        "duplicate image id (first row kept)",
        "not 0/1",
    ]
    assert skipped["column"].iloc[0] == "hair" and skipped["value"].iloc[0] == "x"
    assert set(skipped["file"]) == {str(annotated)}


def test_inferred_file_threshold_and_vasc(inferred: Path):
    labels = read_artifact_labels(inferred, threshold=0.5)
    assert labels.kind == INFERRED and "vasc" in labels.artifacts
    t = labels.table.set_index("image_id")
    assert list(t.index) == ["ISIC_0000000", "ISIC_0000001"]  # _downsampled stripped
    assert t.loc["ISIC_0000000", "dark_corners"] and t.loc["ISIC_0000000", "ruler"]
    assert not t.loc["ISIC_0000000", "hair"]
    assert t.loc["ISIC_0000001", "vasc"] and t.loc["ISIC_0000001", "hair"]
    assert list(labels.skipped["reason"]) == ["outside [0, 1]"]
    strict = read_artifact_labels(inferred, threshold=0.95).table.set_index("image_id")
    assert not strict.loc["ISIC_0000000"].any()


def test_missing_column_unknown_separator_and_threshold_are_errors(tmp_path: Path):
    bad = tmp_path / "bad.csv"
    bad.write_text("image;hair;ruler\nISIC_1;0;1\n")
    with pytest.raises(IsicInputError, match=r"missing column\(s\) \['dark_corner'"):
        read_artifact_labels(bad)
    tab = tmp_path / "tab.csv"
    tab.write_text("image\thair\n")
    with pytest.raises(IsicInputError, match="neither"):
        read_artifact_labels(tab)
    with pytest.raises(IsicInputError, match="artifact_threshold"):
        read_artifact_labels(bad, threshold=0.0)
    with pytest.raises(IsicInputError, match="cannot read"):
        read_artifact_labels(tmp_path / "absent.csv")


def test_join_multi_label_unmatched_and_prevalence(annotated: Path):
    labels = read_artifact_labels(annotated)
    data = _manifest(["ISIC_0000000", "ISIC_0000001", "ISIC_0000002", "ISIC_0000005"])
    out, join = join_artifacts(data, labels)
    assert list(out["artifact"].fillna("<unlabelled>")) == [
        "dark_corners|hair",
        "none",
        "gel_border|fluid|ruler|ink|sticker",
        "<unlabelled>",
    ]
    assert join.n_labelled == 3
    assert join.file_only == ["ISIC_9999999"] and join.data_only == ["ISIC_0000005"]
    prev = join.prevalence.set_index("artifact")
    assert prev.loc["hair", "n_images"] == 1 and prev.loc["hair", "fraction"] == pytest.approx(
        1 / 3
    )
    assert join.counts(skipped_rows=3)["artifact_prevalence/ruler"] == pytest.approx(1 / 3)
    assert set(join.unmatched()["side"]) == {"file_only", "data_only"}
    assert label_id("ISIC_0000000.PNG") == "ISIC_0000000"


def test_filters_groups_count_an_image_in_each_of_its_artifacts(annotated: Path):
    """What ``filters -P groups=artifact`` does with the joined column: image 0 is in
    dark_corners and hair, image 2 in five groups, the unlabelled image in none."""
    labels = read_artifact_labels(annotated)
    data = _manifest(["ISIC_0000000", "ISIC_0000001", "ISIC_0000002", "ISIC_0000005"])
    out, _ = join_artifacts(data, labels)
    sources, notes = group_sources("artifact", list(out.columns))
    assert sources == ["artifact"] and not notes
    member = membership(out["artifact"])
    assert member.sum(axis=0).to_dict() == {
        "dark_corners": 1, "fluid": 1, "gel_border": 1, "hair": 1, "ink": 1, "ruler": 1,
        "sticker": 1,
    }  # fmt: skip
    assert member.iloc[0].sum() == 2 and member.iloc[2].sum() == 5
    assert not member.iloc[[1, 3]].to_numpy().any()
    acts = np.zeros((4, 3))
    acts[0, 1] = acts[2, 1] = 5.0  # filter 1 fires on the two images with artifacts
    occ, pct = filter_percentages(acts, out["artifact"], quantile=0.5)
    assert occ.loc["hair", 1] == 1 and occ.loc["ruler", 1] == 1 and pct.loc["ink", 1] == 100.0
