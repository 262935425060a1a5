"""The six artifacts, drawn as they look in dermoscopy.

Dark hair curves, a ruler with ticks along an edge, a round coloured sticker, purple ink marks,
bright immersion-fluid bubbles, dark vignetted corners. Each painter takes the image's generator,
the canvas and the float image and returns the painted image and the boolean mask of the pixels
it painted; ``synthetic_truth.csv`` records which one each image got and ``masks/`` where (see
:mod:`.masks`), so outlier, filter and dissection analyses can be checked against it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PIL import ImageDraw

from isic_tracking.data.synthetic.geometry import Canvas, blend


def _hair(rng, c: Canvas, img: np.ndarray) -> np.ndarray:
    """4-12 dark curved hairs crossing the image (quadratic Bezier strokes)."""
    t = np.linspace(0, 1, 24)[:, None]

    def draw(d: ImageDraw.ImageDraw) -> None:
        for _ in range(int(rng.integers(4, 13))):
            p0, p1, p2 = rng.uniform(-1.3, 1.3, (3, 2))
            pts = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2
            width = max(1, round(c.scale / 64 * rng.choice([1, 1.5, 2])))
            d.line([c.px(x, y) for x, y in pts], fill=255, width=width)

    m = c.mask(draw)
    return blend(img, (0.1, 0.07, 0.05), m, 0.92), m > 0


def _ruler(rng, c: Canvas, img: np.ndarray) -> np.ndarray:
    """A light ruler band along one edge with dark ticks (every 5th one longer)."""
    h, w = c.h, c.w
    edge = rng.integers(4)
    band = max(4, round(0.11 * min(h, w)))
    step = max(3, round(min(h, w) / 22))
    along = w if edge in (0, 1) else h  # top/bottom bands run along the width

    def rect(d, a0, a1, b0, b1):  # a: along the edge, b: depth from the edge
        if edge in (0, 1):  # top, bottom
            y0, y1 = (b0, b1) if edge == 0 else (h - 1 - b1, h - 1 - b0)
            d.rectangle((a0, y0, a1, y1), fill=255)
        else:  # left, right
            x0, x1 = (b0, b1) if edge == 2 else (w - 1 - b1, w - 1 - b0)
            d.rectangle((x0, a0, x1, a1), fill=255)

    def draw_band(d):
        rect(d, 0, along, 0, band)

    def draw_ticks(d):
        for i, a in enumerate(range(int(rng.integers(0, step)), along, step)):
            rect(d, a, a, 0, round(band * (0.8 if i % 5 == 0 else 0.45)))

    band_mask = c.mask(draw_band)
    img = blend(img, (0.93, 0.91, 0.82), band_mask, 0.9)
    ticks = c.mask(draw_ticks)
    return blend(img, (0.08, 0.08, 0.08), ticks), (band_mask > 0) | (ticks > 0)


def _sticker(rng, c: Canvas, img: np.ndarray) -> np.ndarray:
    """A round coloured sticker near a corner, with a thin white rim."""
    colours = np.array(
        [[0.2, 0.62, 0.27], [0.2, 0.36, 0.82], [0.96, 0.82, 0.15], [0.96, 0.5, 0.1]], np.float32
    )
    colour = colours[rng.integers(len(colours))]
    r = rng.uniform(0.09, 0.13) * min(c.h, c.w)
    inset = r + rng.uniform(0.03, 0.08) * min(c.h, c.w)
    x = inset if rng.random() < 0.5 else c.w - inset
    y = inset if rng.random() < 0.5 else c.h - inset
    rim = c.mask(
        lambda d: d.ellipse((x - r - 1.5, y - r - 1.5, x + r + 1.5, y + r + 1.5), fill=255)
    )
    disc = c.mask(lambda d: d.ellipse((x - r, y - r, x + r, y + r), fill=255))
    return blend(blend(img, (0.97, 0.97, 0.97), rim), colour, disc), rim > 0


def _ink(rng, c: Canvas, img: np.ndarray) -> np.ndarray:
    """Purple surgical-marker strokes: arcs around the lesion and a few dots."""
    width = max(2, round(c.scale / 22))

    def draw(d: ImageDraw.ImageDraw) -> None:
        for _ in range(int(rng.integers(2, 4))):
            rad = rng.uniform(0.7, 0.9) * c.scale
            x, y = c.px(0, 0)
            start = rng.uniform(0, 360)
            d.arc(
                (x - rad, y - rad, x + rad, y + rad),
                start,
                start + rng.uniform(40, 120),
                fill=255,
                width=width,
            )
        for _ in range(int(rng.integers(1, 4))):
            x, y = c.px(*rng.uniform(-0.9, 0.9, 2))
            d.ellipse((x - width, y - width, x + width, y + width), fill=255)

    m = c.mask(draw)
    return blend(img, (0.44, 0.18, 0.6), m, 0.8), m > 0


def _fluid(rng, c: Canvas, img: np.ndarray) -> np.ndarray:
    """Immersion-fluid bubbles: bright rims, a faint glow and a specular highlight each."""

    def draw(d: ImageDraw.ImageDraw) -> None:
        for _ in range(int(rng.integers(3, 9))):
            x, y = rng.uniform(0, c.w), rng.uniform(0, c.h)
            r = rng.uniform(0.04, 0.12) * min(c.h, c.w)
            d.ellipse((x - r, y - r, x + r, y + r), fill=70, outline=245, width=1)
            hr = max(1.0, 0.3 * r)
            hx, hy = x - 0.4 * r, y - 0.4 * r
            d.ellipse((hx - hr, hy - hr, hx + hr, hy + hr), fill=240)

    m = c.mask(draw)
    return img + (1 - img) * m[..., None], m > 0  # screen blend: only brightens


def _dark_corners(rng, c: Canvas, img: np.ndarray) -> np.ndarray:
    """The dark vignette of a round dermatoscope field of view."""
    fov = rng.uniform(0.95, 1.15) * math.hypot(c.w, c.h) / (2 * c.scale) / math.sqrt(2)
    dark = np.clip((np.hypot(c.x, c.y) - fov) / 0.12, 0, 1)
    # the mask: where the vignette darkens the skin by at least half its full strength
    return img * (1 - 0.93 * dark)[..., None], dark >= 0.5


#: ``painter(rng, canvas, img) -> (painted img, bool mask [h, w] of the painted pixels)``
ARTIFACT_FNS: dict[str, Callable] = {
    "hair": _hair,
    "ruler": _ruler,
    "sticker": _sticker,
    "ink": _ink,
    "fluid": _fluid,
    "dark_corners": _dark_corners,
}

ARTIFACTS: tuple[str, ...] = tuple(ARTIFACT_FNS)
