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


def _boxes(fig):
    """(text boxes, image-axes boxes) in display pixels, after a real Agg draw."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    r = canvas.get_renderer()
    texts = [
        t.get_window_extent(r)
        for t in fig.findobj(Text)
        if t.get_visible() and t.get_text().strip()
    ]
    axes = [ax.get_window_extent(r) for ax in fig.axes if ax.axison and ax.images]
    return texts, axes, fig.bbox


def _overlaps(a, b, tol: float = 0.5) -> bool:
    return min(a.x1, b.x1) - max(a.x0, b.x0) > tol and min(a.y1, b.y1) - max(a.y0, b.y0) > tol


def _assert_readable(fig) -> None:
    """No text clipped by the figure, no two texts overlapping, no text over an image tile."""
    texts, axes, page = _boxes(fig)
    assert texts and axes
    for t in texts:
        assert t.x0 >= page.x0 - 0.5 and t.x1 <= page.x1 + 0.5, t
        assert t.y0 >= page.y0 - 0.5 and t.y1 <= page.y1 + 0.5, t
        assert not any(_overlaps(t, a) for a in axes), t
    for i, a in enumerate(texts):
        for b in texts[i + 1 :]:
            assert not _overlaps(a, b), (a, b)


LONG = "features.12:203 (malignant, benign, BCC, SCC, VASC)"


def test_twin_grid_long_labels_are_wrapped_not_overlapping_or_clipped():
    from isic_tracking.interpret.featvis.grids import Panel, tile_label, twin_grid

    titles = [
        tile_label("features.12", 200 + i, 0.123 * i, 1.5, "malignant 62%, benign 40%")
        for i in range(5)
    ]
    titles[1] = LONG + "\n" + titles[1]
    img = torch.rand(5, 3, 16, 16)
    fig = twin_grid(
        [
            Panel("thesis (bilateral + L1 + TV)", img, titles),
            Panel("none (unregularized)", img, titles),
        ],
        title="smallcnn v3 | features.12 | 64 steps | 96 px | a long title " * 3,
    )
    _assert_readable(fig)
    assert len([ax for ax in fig.axes if ax.images]) == 10


def test_old_layout_overlaps_so_the_check_can_fail():
    """The check itself: long unwrapped titles on a tight grid do overlap."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 1.5))
    for ax in fig.subplots(1, 3):
        ax.imshow(np.zeros((4, 4, 3)))
        ax.set_title(LONG, fontsize=7)
    texts, _, _ = _boxes(fig)
    assert any(_overlaps(a, b) for i, a in enumerate(texts) for b in texts[i + 1 :])


def test_tile_label_has_layer_filter_selectivity_and_ratio():
    from isic_tracking.interpret.featvis.grids import tile_label

    assert tile_label("features.0", 7, 1.234, 1.5, "benign 80%") == (
        "features.0, filter 7\nbenign 80%\nact 1.23 | fv/nat max 1.50"
    )
    assert tile_label("logits", 0, -2.0, float("nan"), label="benign").splitlines() == [
        "logit: benign", "act -2 | fv/nat max n/a",
    ]  # fmt: skip


def test_result_and_comparison_grids_are_readable():
    long = _result(6, 1.25)
    long.labels = [LONG] * 6  # the old tight layout put these over the neighbouring tiles
    _assert_readable(result_grid(long, title="alexnet | features.10 " * 4))
    _assert_readable(
        comparison_grid({"model / isic / thesis": _result(3, 2.0), "x": _result(2, 1.0)})
    )
