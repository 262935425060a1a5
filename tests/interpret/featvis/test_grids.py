from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from isic_tracking.interpret.featvis.grids import comparison_grid, result_grid, save_png
from isic_tracking.interpret.featvis.render import RenderResult


def _result(n: int, value: float) -> RenderResult:
    return RenderResult(
        images=torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(n)),
        activation=torch.full((n,), value),
        history=torch.empty(0, n),
        history_steps=torch.empty(0, dtype=torch.long),
        labels=[f"features.10:{i}" for i in range(n)],
        objective="channel(features.10, ...)",
        seconds=0.1,
    )


def test_result_grid_titles_show_layer_filter_and_activation():
    fig = result_grid(_result(5, 1.25), title="alexnet | features.10")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == [f"features.10:{i}\nact 1.25" for i in range(5)]
    assert fig._suptitle.get_text() == "alexnet | features.10"
    assert len(fig.axes) == 6  # 3 x 2 grid, one spare axis hidden


def test_comparison_grid_has_one_labelled_row_per_render():
    fig = comparison_grid({"model / isic / thesis": _result(3, 2.0), "imagenet": _result(2, 1.0)})
    rows = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert rows == ["model / isic / thesis", "imagenet"]
    assert len(fig.axes) == 6


def test_save_png_roundtrip(tmp_path):
    img = torch.rand(3, 6, 7)
    path = save_png(img, tmp_path / "a" / "b.png")
    back = np.asarray(Image.open(path)).astype(np.float32) / 255
    assert back.shape == (6, 7, 3)
    assert np.abs(back - img.permute(1, 2, 0).numpy()).max() <= 1 / 255
