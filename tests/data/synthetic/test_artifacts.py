"""Artifacts are visible where the truth file says."""

from __future__ import annotations

import numpy as np
import pandas as pd

from isic_tracking.data.sources import read_source
from isic_tracking.data.synthetic import ARTIFACTS, read_truth
from tests.data.synthetic.helpers import pixels


def _detectors(img: np.ndarray) -> dict[str, float]:
    """Simple per-image statistics each artifact should raise."""
    h, w, _ = img.shape
    lum = img.mean(axis=2)
    k = max(2, h // 10)
    corners = np.concatenate([lum[:k, :k], lum[:k, -k:], lum[-k:, :k], lum[-k:, -k:]], axis=None)
    yy, xx = np.mgrid[0:h, 0:w]
    outer = np.hypot((yy - h / 2) / (h / 2), (xx - w / 2) / (w / 2)) > 0.8
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    sat = img.max(axis=2) - img.min(axis=2)
    bands = [lum[:k], lum[-k:], lum[:, :k].T, lum[:, -k:].T]
    return {
        "dark_corners": 1 - corners.mean(),
        "hair": (lum[outer] < 0.3).mean(),
        "ruler": max(np.abs(np.diff(band, axis=1)).mean() for band in bands),
        "sticker": ((sat > 0.45) & ((g - b > 0.25) | (b - r > 0.2))).mean(),  # not red/skin
        "ink": ((b > g + 0.12) & (r > g + 0.05)).mean(),
        "fluid": (lum > 0.9).mean(),
    }


def test_artifacts_are_visible_where_recorded(synth):
    truth = read_truth(synth)
    truth = truth[truth["layout"] == "isic2020"]
    m = read_source("isic2020", synth / "isic2020").manifest
    paths = dict(zip(m["image_id"], m["path"]))
    scores = pd.DataFrame(
        [
            {"artifact": a, **_detectors(pixels(paths[i]))}
            for i, a in zip(truth["image_id"], truth["artifact"])
            if i in paths
        ]
    )
    means = scores.groupby("artifact").mean()
    for artifact in ARTIFACTS:
        with_it, without = means.loc[artifact, artifact], means.loc["none", artifact]
        assert with_it > 2 * without + 1e-3, (artifact, with_it, without)
