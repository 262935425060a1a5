"""Pixel-grid geometry for painting: a canvas in unit coordinates, masks, borders, colour fields.

Pure numpy (and PIL ImageDraw for strokes); every random choice comes from the caller's
generator, so the same generator gives the same pixels.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw


@dataclass(frozen=True)
class Canvas:
    """Pixel grid of one image size; coordinates in units of half the short side, 0 at centre."""

    h: int
    w: int
    x: np.ndarray
    y: np.ndarray
    scale: float  # pixels per unit

    def px(self, x: float, y: float) -> tuple[float, float]:
        """Unit coordinates -> pixel coordinates."""
        return x * self.scale + self.w / 2, y * self.scale + self.h / 2

    def mask(self, draw: Callable[[ImageDraw.ImageDraw], None]) -> np.ndarray:
        """A float mask in [0, 1] drawn with PIL ImageDraw (strokes, circles, ticks)."""
        im = Image.new("L", (self.w, self.h), 0)
        draw(ImageDraw.Draw(im))
        return np.asarray(im, dtype=np.float32) * (1.0 / 255.0)


@lru_cache(maxsize=16)
def canvas(h: int, w: int) -> Canvas:
    """The (cached) canvas of an h x w image."""
    scale = min(h, w) / 2
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return Canvas(h, w, (x + 0.5 - w / 2) / scale, (y + 0.5 - h / 2) / scale, scale)


@lru_cache(maxsize=16)
def interp(n_out: int, n_in: int) -> np.ndarray:
    """Linear interpolation matrix (n_out, n_in): smooth noise = M_h @ low_res @ M_w.T."""
    pos = np.linspace(0, n_in - 1, n_out)
    lo = np.clip(np.floor(pos).astype(int), 0, n_in - 2)
    frac = (pos - lo).astype(np.float32)
    m = np.zeros((n_out, n_in), dtype=np.float32)
    m[np.arange(n_out), lo] = 1 - frac
    m[np.arange(n_out), lo + 1] = frac
    return m


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function, clipped so that exp never overflows: soft edges of masks."""
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


def blend(img: np.ndarray, colour, mask: np.ndarray, opacity: float = 1.0) -> np.ndarray:
    """Paint ``colour`` over ``img`` where ``mask`` (in [0, 1]) is set."""
    a = (mask * np.float32(opacity))[..., None]
    return img + a * (np.asarray(colour, dtype=np.float32) - img)


def polar(c: Canvas, cx: float, cy: float, stretch: float = 1.0, angle: float = 0.0):
    """Radius, cos and sin of the angle around (cx, cy), on an ellipse stretched along ``angle``."""
    dx, dy = c.x - cx, c.y - cy
    ca, sa = math.cos(angle), math.sin(angle)
    u, v = (dx * ca + dy * sa) / stretch, -dx * sa + dy * ca
    r = np.hypot(u, v)
    inv = 1.0 / np.maximum(r, 1e-6)
    return r, (u * inv, v * inv)


def border(rng: np.random.Generator, angle, r0: float, irregularity: float) -> np.ndarray:
    """Border radius r0 * (1 + sum_k a_k cos(k theta + phi_k)): a few harmonics = irregular.

    ``angle`` is (cos theta, sin theta); cos/sin of k theta follow by the angle-addition
    recurrence (cheaper than trigonometric calls on every pixel).
    """
    c1, s1 = angle
    amp = irregularity * rng.uniform(0.4, 1.0, 6) / np.sqrt(np.arange(1, 7))
    phase = rng.uniform(0, 2 * np.pi, 6)
    total = np.ones_like(c1)
    ck, sk = c1, s1
    for k in range(6):
        # a cos(k t + p) = a cos p cos(k t) - a sin p sin(k t)
        total += (amp[k] * math.cos(phase[k])) * ck - (amp[k] * math.sin(phase[k])) * sk
        ck, sk = ck * c1 - sk * s1, sk * c1 + ck * s1
    return r0 * total


def blob_field(
    rng: np.random.Generator,
    c: Canvas,
    centre: tuple[float, float],
    spread: float,
    palette: np.ndarray,
    n: int,
    sigma: tuple[float, float],
    base: np.ndarray,
    base_weight: float = 0.3,
) -> np.ndarray:
    """Colour field mixing ``n`` Gaussian patches of palette colours over a base colour."""
    ang = rng.uniform(0, 2 * np.pi, n)
    rad = spread * np.sqrt(rng.uniform(0, 1, n))
    px = (centre[0] + rad * np.cos(ang)).astype(np.float32)[:, None, None]
    py = (centre[1] + rad * np.sin(ang)).astype(np.float32)[:, None, None]
    s = rng.uniform(*sigma, n).astype(np.float32)[:, None, None]
    wts = np.exp(-((c.x - px) ** 2 + (c.y - py) ** 2) / (2 * s**2))
    cols = palette[rng.integers(len(palette), size=n)]
    field = np.tensordot(wts, cols, axes=(0, 0)) + base_weight * base
    return field / (wts.sum(0)[..., None] + base_weight)


def jitter(rng: np.random.Generator, colour, amount: float = 0.06) -> np.ndarray:
    """``colour`` scaled by 1 +- ``amount`` plus a little noise, clipped to [0, 1]."""
    colour = np.asarray(colour, dtype=np.float32)
    return np.clip(colour * rng.uniform(1 - amount, 1 + amount) + rng.normal(0, 0.015, 3), 0, 1)


def dots(c: Canvas, points, radii) -> np.ndarray:
    """Mask of filled discs (unit coordinates and radii)."""

    def draw(d: ImageDraw.ImageDraw) -> None:
        for (x, y), r in zip(points, radii):
            px, py = c.px(x, y)
            rp = max(r * c.scale, 0.7)
            d.ellipse((px - rp, py - rp, px + rp, py + rp), fill=255)

    return c.mask(draw)


def points_in(rng, n: int, cx: float, cy: float, r_min: float, r_max: float):
    """``n`` random points at radius r_min..r_max around (cx, cy) (unit coordinates)."""
    ang = rng.uniform(0, 2 * np.pi, n)
    rad = rng.uniform(r_min, r_max, n)
    return list(zip(cx + rad * np.cos(ang), cy + rad * np.sin(ang)))
