"""Labelled picture grids of rendered images (layer, filter, activation reached), as the thesis's
Figs. 27-32 and 44-48, and PNG export of single images.

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot global state); the
entry point logs them. Readable by construction: constrained layout, tile
titles wrapped to the tile's width (:func:`wrap_title`), so no title is clipped and no label
runs over a neighbouring tile; :func:`twin_grid` puts a render and its twin (unregularized, or
the ImageNet base) side by side, one panel each.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image
from torch import Tensor

from isic_tracking.interpret.featvis.render import RenderResult


def to_uint8(image: Tensor) -> np.ndarray:
    """``[3, H, W]`` float in ``[0, 1]`` -> ``[H, W, 3]`` uint8."""
    arr = image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    return (arr * 255 + 0.5).astype(np.uint8)


def save_png(image: Tensor, path: str | Path) -> Path:
    """Write one ``[3, H, W]`` image in ``[0, 1]`` as a PNG (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(image)).save(path)
    return path


#: Tile title font size (points) and the width of one character in font sizes (DejaVu Sans).
TILE_FONT = 7.0
_CHAR_EM = 0.62


def wrap_title(text: str, inches: float, fontsize: float = TILE_FONT) -> str:
    """``text`` with every line wrapped to what fits in ``inches`` at ``fontsize``."""
    chars = max(8, int(inches * 72 / (fontsize * _CHAR_EM)))
    return "\n".join(
        "\n".join(textwrap.wrap(line, chars, break_on_hyphens=False) or [""])
        for line in text.split("\n")
    )


def tile_titles(result: RenderResult) -> list[str]:
    """``<label>\\nact <value>`` for each image of a render."""
    return [f"{lab}\nact {float(a):.3g}" for lab, a in zip(result.labels, result.activation)]


def tile_label(
    layer: str, channel: int, reached: float, ratio: float, selectivity: str = "", label: str = ""
) -> str:
    """A tile's title: ``layer, filter c`` (or the class of a logit), the class selectivity
    when known, and ``act <reached> | fv/nat max <ratio>`` (``n/a`` for a unit not live)."""
    head = f"{layer}, filter {channel}" if layer not in ("", "logits") else f"logit: {label}"
    r = "n/a" if ratio != ratio else f"{ratio:.2f}"  # NaN: not live on the natural images
    lines = (
        [head] + ([selectivity] if selectivity else []) + [f"act {reached:.3g} | fv/nat max {r}"]
    )
    return "\n".join(lines)


@dataclass
class Panel:
    """One render shown as a block of tiles: its name, images ``[N, 3, H, W]``, tile titles."""

    name: str
    images: Tensor
    titles: list[str]


def image_grid(
    images: Tensor,
    titles: Sequence[str],
    ncols: int | None = None,
    title: str | None = None,
    row_labels: Sequence[str] | None = None,
    tile_inches: float = 1.8,
) -> Figure:
    """Images in a grid, each with its title; optional label at the start of each row.

    Args:
        images: ``[N, 3, H, W]`` in ``[0, 1]``.
        titles: one per image (e.g. ``features.10:3\\nact 4.2``).
        ncols: images per row (default: ``ceil(sqrt(N))``, or N / rows with ``row_labels``).
        title: figure title (e.g. model, layer, settings).
        row_labels: a label per row (e.g. ``fine-tuned`` / ``ImageNet``).
    """
    n = images.shape[0]
    if len(titles) != n:
        raise ValueError(f"{n} images but {len(titles)} titles")
    if ncols is None:
        ncols = math.ceil(n / len(row_labels)) if row_labels else math.ceil(math.sqrt(n))
    ncols = max(1, min(ncols, n)) if n else 1
    nrows = max(1, math.ceil(n / ncols))
    lines = max((t.count("\n") + 1 for t in titles), default=1)
    width = tile_inches * ncols + (0.4 if row_labels else 0)
    fig = Figure(
        figsize=(width, _tile_height(tile_inches, lines) * nrows + 0.5), layout="constrained"
    )
    _fill(fig, images, titles, ncols, nrows, tile_inches)
    axes = np.array(fig.axes).reshape(nrows, ncols)
    if row_labels:
        for r, lab in enumerate(row_labels[:nrows]):
            axes[r, 0].set_ylabel(wrap_title(lab, tile_inches, 8), fontsize=8)
    if title:
        fig.suptitle(wrap_title(title, width, 9), fontsize=9)
    return fig


def _tile_height(tile_inches: float, lines: int) -> float:
    """A tile's height: the image plus its title's lines (and a little air)."""
    return tile_inches + lines * TILE_FONT * 1.25 / 72 + 0.05


def _fill(fig, images: Tensor, titles: Sequence[str], ncols: int, nrows: int, inches: float):
    """An ``nrows x ncols`` grid of image tiles (spares hidden) in ``fig`` (a figure or
    subfigure), each titled with its title wrapped to the tile's width."""
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i < images.shape[0]:
            ax.imshow(to_uint8(images[i]))
            ax.set_title(wrap_title(titles[i], inches), fontsize=TILE_FONT)
        else:
            ax.axis("off")


def twin_grid(
    panels: Sequence[Panel], title: str | None = None, ncols: int | None = None,
    tile_inches: float = 1.7,
) -> Figure:  # fmt: skip
    """Renders of the same targets side by side (e.g. a preset and its unregularized twin, or
    the fine-tuned model and its ImageNet base): one titled panel each, same tile layout."""
    if not panels:
        raise ValueError("twin_grid needs at least one panel")
    n = max(p.images.shape[0] for p in panels)
    ncols = max(1, min(ncols or math.ceil(math.sqrt(n)), n))
    nrows = max(1, math.ceil(n / ncols))
    lines = max((t.count("\n") + 1 for p in panels for t in p.titles), default=1)
    width = (tile_inches * ncols + 0.2) * len(panels)
    names = [wrap_title(p.name, tile_inches * ncols, 8.5) for p in panels]
    heads = max(n.count("\n") + 1 for n in names)
    top = wrap_title(title, width, 9.5) if title else ""
    height = _tile_height(tile_inches, lines) * nrows + 0.2 * heads + 0.2 * (top.count("\n") + 1)
    fig = Figure(figsize=(width, height), layout="constrained")
    subs = np.atleast_1d(fig.subfigures(1, len(panels), wspace=0.04))
    for sub, p, name in zip(subs, panels, names):
        _fill(sub, p.images, p.titles, ncols, nrows, tile_inches)
        sub.suptitle(name, fontsize=8.5)
    if top:
        fig.suptitle(top, fontsize=9.5)
    return fig


def result_grid(result: RenderResult, title: str | None = None, ncols: int | None = None) -> Figure:
    """One render as a labelled grid (label and activation reached under each image)."""
    return image_grid(result.images, tile_titles(result), ncols=ncols, title=title)


def comparison_grid(results: Mapping[str, RenderResult], title: str | None = None) -> Figure:
    """Several renders of the same targets, one row each (e.g. fine-tuned vs ImageNet model,
    with vs without regularization, as the thesis's Fig. 29)."""
    rows = list(results.items())
    ncols = max(r.images.shape[0] for _, r in rows)
    images, titles = [], []
    for _, r in rows:
        pad = ncols - r.images.shape[0]
        images.append(
            torch.cat([r.images, torch.ones(pad, *r.images.shape[1:])]) if pad else r.images
        )
        titles += tile_titles(r) + [""] * pad
    return image_grid(
        torch.cat(images), titles, ncols=ncols, title=title, row_labels=[k for k, _ in rows]
    )
