"""make_synthetic: determinism, replacing its own output only, argument checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from isic_tracking.data.synthetic import make_synthetic
from isic_tracking.errors import IsicInputError
from tests.data.synthetic.helpers import csv_bytes, pixels


def test_same_seed_same_bytes_and_pixels_other_seed_differs(tmp_path):
    a = make_synthetic(tmp_path / "a", n_images=24, seed=3, image_size=32)
    b = make_synthetic(tmp_path / "b", n_images=24, seed=3, image_size=32)
    c = make_synthetic(tmp_path / "c", n_images=24, seed=4, image_size=32)
    assert csv_bytes(tmp_path / "a") == csv_bytes(tmp_path / "b")
    assert csv_bytes(tmp_path / "a") != csv_bytes(tmp_path / "c")
    for layout in a:
        files_a = sorted(a[layout].rglob("*.jpg"))
        assert [p.relative_to(a[layout]) for p in files_a] == [
            p.relative_to(b[layout]) for p in sorted(b[layout].rglob("*.jpg"))
        ]
        for p in files_a:
            np.testing.assert_array_equal(pixels(p), pixels(b[layout] / p.relative_to(a[layout])))
    assert sorted(c) == sorted(a)


def test_replaces_its_own_output_but_never_a_foreign_folder(tmp_path):
    make_synthetic(tmp_path, n_images=32, seed=0, image_size=32)
    stale = tmp_path / "isic2020" / "jpeg" / "train" / "ISIC_0000000.jpg"
    stale.write_bytes(b"old")
    make_synthetic(tmp_path, n_images=16, seed=1, image_size=32)
    assert not stale.exists()
    assert len(pd.read_csv(tmp_path / "isic2020" / "train.csv")) == 16
    with pytest.raises(IsicInputError, match="pass overwrite=True"):
        make_synthetic(tmp_path, n_images=16, image_size=32, overwrite=False)
    foreign = tmp_path / "other"
    (foreign / "isic2019").mkdir(parents=True)
    (foreign / "isic2019" / "mine.txt").write_text("user data")
    with pytest.raises(IsicInputError, match="not written by make_synthetic"):
        make_synthetic(foreign, n_images=16, image_size=32)
    assert (foreign / "isic2019" / "mine.txt").read_text() == "user data"
    assert not (foreign / "isic2020").exists()  # checked before anything is written


@pytest.mark.parametrize(
    "kwargs, match",
    [({"n_images": 8}, "at least 16"), ({"image_size": 16}, "at least 32"), ({"seed": -1}, "seed")],
)
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(IsicInputError, match=match):
        make_synthetic(tmp_path, **kwargs)
