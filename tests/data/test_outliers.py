from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from isic_tracking.data.dataset import make_loader
from isic_tracking.data.manifest import normalize_manifest
from isic_tracking.data.outliers import (
    dataset_channel_stats,
    outlier_mask,
    outlier_scores,
    score_table,
    zscore_maps,
)
from isic_tracking.data.transforms import build_transforms
from isic_tracking.errors import IsicInputError

SIZE = 32


def lesion(seed: int, artifact: str = "none") -> torch.Tensor:
    """A skin-coloured float image with a brown lesion, noise and an optional artifact."""
    g = torch.Generator().manual_seed(seed)
    img = torch.tensor([0.85, 0.65, 0.55]).view(3, 1, 1).repeat(1, SIZE, SIZE)
    yy, xx = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    r = ((yy - SIZE / 2) ** 2 + (xx - SIZE / 2) ** 2).sqrt()
    img[:, r < 8] = torch.tensor([0.55, 0.35, 0.25]).view(3, 1)
    img = img + 0.03 * torch.randn(3, SIZE, SIZE, generator=g)
    if artifact == "sticker":
        img[:, 2:10, 22:30] = 1.0  # bright round-ish sticker
    elif artifact == "dark_corners":
        img[:, r > 17] = 0.02
    return img.clamp(0, 1)


def plain_and_artifacts() -> tuple[torch.Tensor, list[str]]:
    kinds = ["none"] * 10 + ["sticker", "dark_corners"]
    return torch.stack([lesion(i, k) for i, k in enumerate(kinds)]), kinds


def test_channel_stats_match_direct_computation_for_any_batching():
    x = torch.rand(10, 3, 6, 5) * torch.tensor([1.0, 0.5, 2.0]).view(1, 3, 1, 1)
    direct = x.transpose(0, 1).reshape(3, -1)
    for bs in (1, 3, 10):
        mean, std = dataset_channel_stats((x[i : i + bs], None) for i in range(0, 10, bs))
        assert torch.allclose(mean, direct.mean(1), atol=1e-6)
        assert torch.allclose(std, direct.std(1, unbiased=False), atol=1e-6)
    with pytest.raises(IsicInputError, match="empty"):
        dataset_channel_stats([])


def test_zscores_and_mask():
    x = torch.zeros(1, 3, 2, 2)
    x[0, 1, 0, 0] = 3.0  # only green of one pixel is far
    z = zscore_maps(x, [0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    assert torch.equal(z, x)
    mask = outlier_mask(x, [0, 0, 0], [1, 1, 1], threshold=2.0)
    assert mask.shape == (1, 2, 2) and mask.sum() == 1 and mask[0, 0, 0]
    assert outlier_scores(x, [0, 0, 0], [1, 1, 1]).tolist() == [0.25]
    assert outlier_scores(x, [0, 0, 0], [1, 1, 1], threshold=3.5).tolist() == [0.0]


def test_sticker_and_dark_corners_score_higher_than_plain_images():
    images, kinds = plain_and_artifacts()
    mean, std = dataset_channel_stats([images])
    scores = outlier_scores(images, mean, std, threshold=2.0)
    plain_max = scores[:10].max()
    assert scores[10] > plain_max and scores[11] > plain_max
    assert scores[11] > 2 * plain_max  # corners cover a large area


def _write(images: torch.Tensor, kinds: list[str], folder) -> pd.DataFrame:
    folder.mkdir()
    rows = []
    for i, (img, kind) in enumerate(zip(images, kinds)):
        path = folder / f"im{i}.png"  # lossless, so scores match the in-memory images
        Image.fromarray((img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path)
        rows.append(
            {
                "image_id": f"im{i}",
                "path": str(path),
                "label": 0,
                "label_name": "benign",
                "source": "t",
                "artifact": kind,
            }
        )
    return normalize_manifest(pd.DataFrame(rows))


def test_score_table_flags_the_artifacts_in_any_loader_order(tmp_path):
    images, kinds = plain_and_artifacts()
    df = _write(images, kinds, tmp_path / "img")
    tf = build_transforms(SIZE, train=False, mean=None)
    ordered = score_table(df, make_loader(df, tf, batch_size=5), threshold=2.0)
    assert list(ordered.columns) == ["image_id", "score", "is_outlier", "label_name", "artifact"]
    assert ordered["image_id"].tolist() == df["image_id"].tolist()
    flagged = set(ordered.loc[ordered["is_outlier"], "artifact"])
    assert flagged == {"dark_corners"}  # far above the rest: score z > 2
    top2 = ordered.nlargest(2, "score")["artifact"]
    assert set(top2) == {"sticker", "dark_corners"}
    shuffled = make_loader(df, tf, batch_size=5, shuffle=True, seed=1, return_index=True)
    by_index = score_table(df, shuffled, threshold=2.0)
    assert np.allclose(by_index["score"], ordered["score"], atol=1e-6)
    fixed = score_table(df, make_loader(df, tf, batch_size=5), image_threshold=0.05)
    assert set(fixed.loc[fixed["is_outlier"], "artifact"]) == {"sticker", "dark_corners"}


def test_score_table_requires_every_image(tmp_path):
    images, kinds = plain_and_artifacts()
    df = _write(images[:3], kinds[:3], tmp_path / "img")
    tf = build_transforms(SIZE, train=False, mean=None)
    loader = make_loader(df, tf, batch_size=2, drop_last=True)
    with pytest.raises(IsicInputError, match="2 of 3"):
        score_table(df, loader)
