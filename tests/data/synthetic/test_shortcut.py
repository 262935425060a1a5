"""The planted shortcut: the chosen artifact on the chosen fraction of malignant images only,
everything else as in the control set; off by default, leaving the output unchanged."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from isic_tracking.data.sources import read_shortcut, read_source, read_truth
from isic_tracking.data.synthetic import make_synthetic
from isic_tracking.data.synthetic.shortcut import Shortcut, plant_shortcut
from isic_tracking.errors import IsicInputError

SMALL = {"n_images": 32, "seed": 1, "image_size": 32}
#: sha256 over the CSVs of make_synthetic(n_images=48, seed=3) written by the code before the
#: shortcut existed (commit e98942b); the CSVs do not depend on image_size.
GOLDEN_CSV_DIGEST = "1ee4affeddd0cd8df6de9c6be15bc45e2f74c3968abfc1cc89b7fc692f3ec2b8"


def _csv_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.csv")):
        h.update(str(p.relative_to(root)).encode() + b"\n" + p.read_bytes())
    return h.hexdigest()


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _manifests(root: Path) -> dict[str, pd.DataFrame]:
    """The read-back images of each layout (listed duplicates dropped), malignant flagged."""
    binary = read_source("synthetic", root).manifest
    multi = read_source("synthetic", root, task="multiclass").manifest
    out = {
        "isic2020": binary[binary["source"] == "synthetic-isic2020"],
        "isic2016": binary[binary["source"] == "synthetic-isic2016"],
        "isic2019": multi,
    }
    return {
        k: m.assign(malignant=m["label_name"].isin(["malignant", "MEL"])) for k, m in out.items()
    }


@pytest.mark.parametrize("artifact, rate", [("ruler", 0.9), ("ink", 0.5), ("hair", 0.0)])
def test_measured_co_occurrence_matches_the_option(tmp_path, artifact, rate):
    make_synthetic(tmp_path, **SMALL, shortcut_artifact=artifact, shortcut_rate=rate)
    summary = read_shortcut(tmp_path)
    assert set(summary) == {"isic2020", "isic2019", "isic2016"}
    for layout, m in _manifests(tmp_path).items():
        carries = m["artifact"] == artifact
        n_mal = int(m["malignant"].sum())
        measured = carries[m["malignant"]].mean()
        assert abs(measured - rate) <= 0.5 / n_mal + 1e-12, (layout, measured)
        assert not carries[~m["malignant"]].any(), layout  # benign: never
        assert summary[layout]["malignant_rate"] == pytest.approx(measured)
        assert summary[layout]["benign_rate"] == 0.0
        assert (summary[layout]["artifact"], summary[layout]["rate"]) == (artifact, rate)
        others = set(m["artifact"]) - {"none", artifact}
        assert others, layout  # the other artifacts are still drawn


def test_rate_one_marks_every_malignant_image(tmp_path):
    make_synthetic(tmp_path, **SMALL, shortcut_artifact="sticker", shortcut_rate=1.0)
    for layout, m in _manifests(tmp_path).items():
        assert (m["artifact"] == "sticker").eq(m["malignant"]).all(), layout


def test_only_artifacts_change_against_the_control(tmp_path):
    control = tmp_path / "control"
    planted = tmp_path / "planted"
    make_synthetic(control, **SMALL)
    make_synthetic(planted, **SMALL, shortcut_artifact="ruler", shortcut_rate=0.9)
    a, b = _files(control), _files(planted)
    assert set(b) - set(a) == {f"{x}/synthetic_shortcut.json" for x in read_shortcut(planted)}
    truth_a = read_truth(control).set_index("image_id")["artifact"]
    truth_b = read_truth(planted).set_index("image_id")["artifact"]
    changed = set(truth_a.index[truth_a != truth_b])
    assert changed
    for rel, data in a.items():
        if rel.endswith("synthetic_truth.csv"):
            continue
        painted = rel.endswith((".jpg", ".png"))  # an image or its concept mask
        if painted and Path(rel).stem.removesuffix("_downsampled") in changed:
            assert b[rel] != data, rel
        else:
            assert b[rel] == data, rel  # labels, metadata, untouched images and masks: same bytes
    for m in _manifests(planted).values():
        m = m.set_index("image_id")
        for image_id in changed & set(m.index):
            if truth_b[image_id] == "ruler":
                assert m.loc[image_id, "malignant"]
            else:
                assert truth_a[image_id] == "ruler" and truth_b[image_id] == "none"


def test_off_by_default_output_unchanged(tmp_path):
    make_synthetic(tmp_path / "default", n_images=48, seed=3, image_size=32)
    make_synthetic(tmp_path / "none", n_images=48, seed=3, image_size=32, shortcut_artifact="none")
    off = {"shortcut_artifact": None, "shortcut_rate": 0.2}
    make_synthetic(tmp_path / "off", n_images=48, seed=3, image_size=32, **off)
    default = _files(tmp_path / "default")
    assert _files(tmp_path / "none") == default == _files(tmp_path / "off")
    assert not any(rel.endswith(".json") for rel in default)
    assert read_shortcut(tmp_path / "default") == {}
    assert _csv_digest(tmp_path / "default") == GOLDEN_CSV_DIGEST


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"shortcut_artifact": "mole"}, r"shortcut_artifact='mole'.*'ruler'"),
        ({"shortcut_artifact": "ruler", "shortcut_rate": 1.2}, r"shortcut_rate=1.2.*\[0, 1\]"),
        ({"shortcut_rate": -0.1}, r"shortcut_rate=-0.1"),
    ],
)
def test_bad_shortcut_options_name_the_option_and_write_nothing(tmp_path, kwargs, match):
    with pytest.raises(IsicInputError, match=match):
        make_synthetic(tmp_path / "out", **SMALL, **kwargs)
    assert not (tmp_path / "out").exists()


def test_plant_shortcut_keeps_byte_copies_equal_to_their_original():
    images = pd.DataFrame(
        {
            "image_id": ["a", "b", "c", "d", "e"],
            "kind": ["MEL", "MEL", "NV", "NV", "MEL"],
            "artifact": ["hair", "none", "ruler", "ink", "hair"],
            "copy_of": [None, None, None, None, "a"],
        }
    )
    out = plant_shortcut(images, Shortcut("ruler", 1.0), np.random.default_rng(0))
    assert out["artifact"].tolist() == ["ruler", "ruler", "none", "ink", "ruler"]
    assert images["artifact"].tolist()[0] == "hair"  # the input plan is not modified
