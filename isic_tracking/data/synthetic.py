"""A small ISIC-like data set in the official layouts: the demo data of every stage and the
fixture of the tests.

``make_synthetic(out, n_images=240, seed=0, image_size=128)`` writes::

    out/isic2020/  train.csv, jpeg/train/<image_name>.jpg, ISIC_2020_Training_Duplicates.csv
    out/isic2019/  ISIC_2019_Training_GroundTruth.csv, ISIC_2019_Training_Metadata.csv,
                   ISIC_2019_Training_Input/<image>.jpg
    out/isic2016/  ISBI2016_ISIC_Part3_Test_GroundTruth.csv, ISBI2016_ISIC_Part3_Test_Data/*.jpg
    out/<layout>/synthetic_truth.csv   image_id,artifact (the artifact drawn on each image)

Sizes for ``n = n_images``: ISIC 2020 gets ``n`` rows (2 of them listed duplicates, byte copies
of another image; 2-6 images per patient; ~27 % malignant so small k-folds work, the real set
has 1.8 %); ISIC 2019 gets ``max(n, 64)`` images over the 8 classes (at least 8 each, the rest
weighted by the square root of the real class counts; 1-3 images per lesion, some without a
lesion id; ~3 % with ``_downsampled`` ids at 4:3 size); ISIC 2016 gets ``max(n // 4, 8)`` test
images (~30 % malignant) at 4:3 size. 35 % of the images of each layout carry one artifact,
the six kinds in turn. Everything is derived from ``seed``: the same seed gives byte-identical
CSVs and identical images.

The signal is learnable on purpose: malignant (MEL) lesions are large, irregular, asymmetric and
multi-coloured; benign (NV) ones round and uniformly brown; each ISIC 2019 class has its own
colour, shape and texture family (see ``_LESIONS``). The artifacts are drawn as they look in
dermoscopy (dark hair curves, a ruler with ticks along an edge, a round coloured sticker, purple
ink marks, bright immersion-fluid bubbles, dark vignetted corners), so outlier and filter
analyses can be checked against ``synthetic_truth.csv``.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from isic_tracking.data.manifest import MULTICLASS_CLASSES
from isic_tracking.data.sources import (
    ISIC2016_TEST_CSV,
    ISIC2016_TEST_IMAGE_DIR,
    ISIC2019_GT_CSV,
    ISIC2019_GT_HEADER,
    ISIC2019_IMAGE_DIR,
    ISIC2019_META_CSV,
    ISIC2019_META_HEADER,
    ISIC2020_CSV,
    ISIC2020_DUPLICATES_CSV,
    ISIC2020_DUPLICATES_HEADER,
    ISIC2020_HEADER,
    ISIC2020_IMAGE_DIR,
)
from isic_tracking.errors import IsicInputError
from isic_tracking.utils import progress

ARTIFACTS: tuple[str, ...] = ("hair", "ruler", "sticker", "ink", "fluid", "dark_corners")
ARTIFACT_FRACTION = 0.35
TRUTH_FILE = "synthetic_truth.csv"
TRUTH_HEADER: tuple[str, ...] = ("image_id", "artifact")
LAYOUTS: tuple[str, ...] = ("isic2020", "isic2019", "isic2016")
MALIGNANT_FRACTION_2020 = 0.27
MALIGNANT_FRACTION_2016 = 0.30
MIN_N_IMAGES = 16
MIN_IMAGE_SIZE = 32
JPEG_QUALITY = 90

# Real ISIC 2019 class counts: the synthetic set is weighted by their square root.
_REAL_2019_COUNTS = {
    "MEL": 4522,
    "NV": 12875,
    "BCC": 3323,
    "AK": 867,
    "BKL": 2624,
    "DF": 239,
    "VASC": 253,
    "SCC": 628,
}
_SITES_2020 = ("torso", "lower extremity", "upper extremity", "head/neck", "palms/soles")
_SITES_2019 = (
    "anterior torso",
    "posterior torso",
    "lower extremity",
    "upper extremity",
    "head/neck",
    "lateral torso",
    "palms/soles",
)
_SKIN_TONES = np.array(
    [
        [0.89, 0.71, 0.63],
        [0.85, 0.63, 0.55],
        [0.80, 0.58, 0.48],
        [0.93, 0.78, 0.71],
        [0.74, 0.53, 0.43],
    ],
    dtype=np.float32,
)


# --- geometry helpers -------------------------------------------------------------------------
@dataclass(frozen=True)
class _Canvas:
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
def _canvas(h: int, w: int) -> _Canvas:
    scale = min(h, w) / 2
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return _Canvas(h, w, (x + 0.5 - w / 2) / scale, (y + 0.5 - h / 2) / scale, scale)


@lru_cache(maxsize=16)
def _interp(n_out: int, n_in: int) -> np.ndarray:
    """Linear interpolation matrix (n_out, n_in): smooth noise = M_h @ low_res @ M_w.T."""
    pos = np.linspace(0, n_in - 1, n_out)
    lo = np.clip(np.floor(pos).astype(int), 0, n_in - 2)
    frac = (pos - lo).astype(np.float32)
    m = np.zeros((n_out, n_in), dtype=np.float32)
    m[np.arange(n_out), lo] = 1 - frac
    m[np.arange(n_out), lo + 1] = frac
    return m


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


def _blend(img: np.ndarray, colour, mask: np.ndarray, opacity: float = 1.0) -> np.ndarray:
    """Paint ``colour`` over ``img`` where ``mask`` (in [0, 1]) is set."""
    a = (mask * np.float32(opacity))[..., None]
    return img + a * (np.asarray(colour, dtype=np.float32) - img)


def _polar(c: _Canvas, cx: float, cy: float, stretch: float = 1.0, angle: float = 0.0):
    """Radius, cos and sin of the angle around (cx, cy), on an ellipse stretched along ``angle``."""
    dx, dy = c.x - cx, c.y - cy
    ca, sa = math.cos(angle), math.sin(angle)
    u, v = (dx * ca + dy * sa) / stretch, -dx * sa + dy * ca
    r = np.hypot(u, v)
    inv = 1.0 / np.maximum(r, 1e-6)
    return r, (u * inv, v * inv)


def _border(rng: np.random.Generator, angle, r0: float, irregularity: float) -> np.ndarray:
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


def _blob_field(
    rng: np.random.Generator,
    c: _Canvas,
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


def _jitter(rng: np.random.Generator, colour, amount: float = 0.06) -> np.ndarray:
    colour = np.asarray(colour, dtype=np.float32)
    return np.clip(colour * rng.uniform(1 - amount, 1 + amount) + rng.normal(0, 0.015, 3), 0, 1)


def _dots(c: _Canvas, points, radii) -> np.ndarray:
    """Mask of filled discs (unit coordinates and radii)."""

    def draw(d: ImageDraw.ImageDraw) -> None:
        for (x, y), r in zip(points, radii):
            px, py = c.px(x, y)
            rp = max(r * c.scale, 0.7)
            d.ellipse((px - rp, py - rp, px + rp, py + rp), fill=255)

    return c.mask(draw)


def _points_in(rng, n: int, cx: float, cy: float, r_min: float, r_max: float):
    ang = rng.uniform(0, 2 * np.pi, n)
    rad = rng.uniform(r_min, r_max, n)
    return list(zip(cx + rad * np.cos(ang), cy + rad * np.sin(ang)))


# --- lesions: one function per class family ---------------------------------------------------
# Each returns (colour field (h, w, 3), alpha (h, w)) for a lesion centred near (cx, cy).
_BROWN = np.array([0.45, 0.29, 0.19], dtype=np.float32)
_MEL_PALETTE = np.array(
    [
        [0.08, 0.05, 0.05],  # black
        [0.26, 0.14, 0.09],  # dark brown
        [0.36, 0.42, 0.56],  # blue-grey veil
        [0.72, 0.22, 0.22],  # red
        [0.60, 0.40, 0.26],  # light brown
        [0.90, 0.88, 0.86],  # regression (white)
    ],
    dtype=np.float32,
)
_VESSEL_RED = np.array([0.66, 0.08, 0.13], dtype=np.float32)


def _nevus(rng, c, cx, cy):
    """NV / benign: round, symmetric, uniformly brown, slightly darker centre."""
    r, th = _polar(c, cx, cy, rng.uniform(1.0, 1.15), rng.uniform(0, np.pi))
    rb = _border(rng, th, rng.uniform(0.3, 0.5), 0.035)
    alpha = _sigmoid((rb - r) / 0.03)
    shade = 1 - 0.15 * np.clip(1 - r / rb, 0, 1)
    return _jitter(rng, _BROWN, 0.12) * shade[..., None], alpha


def _melanoma(rng, c, cx, cy):
    """MEL / malignant: large, irregular, asymmetric border; several colours in patches."""
    r0 = rng.uniform(0.42, 0.62)
    r, th = _polar(c, cx, cy, rng.uniform(1.0, 1.4), rng.uniform(0, np.pi))
    rb = _border(rng, th, r0, rng.uniform(0.18, 0.3))
    alpha = _sigmoid((rb - r) / rng.uniform(0.01, 0.05))
    shift = rng.uniform(-0.15, 0.15, 2)  # colour patches off-centre: asymmetric
    field = _blob_field(
        rng,
        c,
        (cx + shift[0], cy + shift[1]),
        0.6 * r0,
        _MEL_PALETTE,
        int(rng.integers(4, 7)),
        (0.08, 0.2),
        _MEL_PALETTE[1],
    )
    return field, alpha


def _bcc(rng, c, cx, cy):
    """BCC: pearly pink, translucent, branching red vessels and blue-grey ovoid nests."""
    r0 = rng.uniform(0.3, 0.45)
    r, th = _polar(c, cx, cy, rng.uniform(1.0, 1.2), rng.uniform(0, np.pi))
    alpha = 0.85 * _sigmoid((_border(rng, th, r0, 0.1) - r) / 0.05)
    colour = np.broadcast_to(_jitter(rng, (0.87, 0.65, 0.65)), (c.h, c.w, 3))

    def vessels(d: ImageDraw.ImageDraw) -> None:
        width = max(1, round(c.scale / 64))
        for _ in range(int(rng.integers(3, 6))):
            x, y = _points_in(rng, 1, cx, cy, 0, 0.6 * r0)[0]
            ang = rng.uniform(0, 2 * np.pi)
            pts = [c.px(x, y)]
            for _ in range(8):
                ang += rng.normal(0, 0.6)
                x, y = x + 0.07 * r0 * 2 * math.cos(ang), y + 0.07 * r0 * 2 * math.sin(ang)
                pts.append(c.px(x, y))
            d.line(pts, fill=255, width=width)

    colour = _blend(colour, _VESSEL_RED, c.mask(vessels), 0.9)
    n = int(rng.integers(2, 5))
    nests = _dots(c, _points_in(rng, n, cx, cy, 0, 0.6 * r0), rng.uniform(0.04, 0.07, n))
    return _blend(colour, (0.32, 0.36, 0.5), nests, 0.9), alpha


def _ak(rng, c, cx, cy):
    """AK: red-pink, fuzzy border, white scale speckles."""
    r0 = rng.uniform(0.4, 0.55)
    r, th = _polar(c, cx, cy, rng.uniform(1.0, 1.3), rng.uniform(0, np.pi))
    alpha = _sigmoid((_border(rng, th, r0, 0.12) - r) / 0.1)
    colour = np.broadcast_to(_jitter(rng, (0.8, 0.42, 0.4)), (c.h, c.w, 3))
    scale = (rng.random((c.h, c.w), dtype=np.float32) < 0.08).astype(np.float32)
    return _blend(colour, (0.97, 0.95, 0.9), scale, 0.85), alpha


def _bkl(rng, c, cx, cy):
    """BKL: sharply demarcated oval, tan, cerebriform ridges, dark comedo-like and white dots."""
    r0 = rng.uniform(0.35, 0.5)
    angle = rng.uniform(0, np.pi)
    r, th = _polar(c, cx, cy, rng.uniform(1.2, 1.5), angle)
    alpha = _sigmoid((_border(rng, th, r0, 0.06) - r) / 0.012)
    freq = rng.uniform(25, 35)
    u = (c.x - cx) * math.cos(angle) + (c.y - cy) * math.sin(angle)
    v = -(c.x - cx) * math.sin(angle) + (c.y - cy) * math.cos(angle)
    ridge = 0.5 + 0.5 * np.sin(freq * u + 2.5 * np.sin(0.5 * freq * v))
    colour = _jitter(rng, (0.6, 0.43, 0.27)) * (0.75 + 0.25 * ridge)[..., None]
    n = int(rng.integers(5, 11))
    comedo = _dots(c, _points_in(rng, n, cx, cy, 0, 0.8 * r0), rng.uniform(0.02, 0.035, n))
    colour = _blend(colour, (0.22, 0.14, 0.09), comedo)
    n = int(rng.integers(3, 7))
    milia = _dots(c, _points_in(rng, n, cx, cy, 0, 0.8 * r0), rng.uniform(0.015, 0.025, n))
    return _blend(colour, (0.96, 0.94, 0.86), milia), alpha


def _df(rng, c, cx, cy):
    """DF: small, round, light-brown ring around a central white scar-like patch."""
    r0 = rng.uniform(0.22, 0.32)
    r, th = _polar(c, cx, cy, rng.uniform(1.0, 1.15), rng.uniform(0, np.pi))
    alpha = _sigmoid((_border(rng, th, r0, 0.05) - r) / 0.05)
    ring = np.broadcast_to(_jitter(rng, (0.6, 0.44, 0.34)), (c.h, c.w, 3))
    centre = _sigmoid((rng.uniform(0.4, 0.5) * r0 - r) / 0.04)
    return _blend(ring, (0.95, 0.91, 0.87), centre), alpha


def _vasc(rng, c, cx, cy):
    """VASC: lobulated red-to-purple lacunae (several overlapping round lobes)."""
    n = int(rng.integers(3, 6))
    lobes = _points_in(rng, n, cx, cy, 0.05, 0.22)
    radii = rng.uniform(0.14, 0.24, n)
    alpha = np.zeros((c.h, c.w), dtype=np.float32)
    for (x, y), rad in zip(lobes, radii):
        alpha = np.maximum(alpha, _sigmoid((rad - np.hypot(c.x - x, c.y - y)) / 0.025))
    palette = np.array([[0.74, 0.1, 0.18], [0.5, 0.1, 0.36], [0.62, 0.06, 0.22]], np.float32)
    colour = _blob_field(rng, c, (cx, cy), 0.25, palette, n, (0.1, 0.18), palette[0])
    lacunae = _dots(c, lobes, 0.35 * radii)
    return _blend(colour, (0.36, 0.03, 0.1), lacunae, 0.8), alpha


def _scc(rng, c, cx, cy):
    """SCC: pink-red rim, yellow-white keratin centre, dotted red vessels in the rim."""
    r0 = rng.uniform(0.42, 0.58)
    r, th = _polar(c, cx, cy, rng.uniform(1.0, 1.25), rng.uniform(0, np.pi))
    alpha = _sigmoid((_border(rng, th, r0, 0.1) - r) / 0.04)
    rim = np.broadcast_to(_jitter(rng, (0.84, 0.46, 0.46)), (c.h, c.w, 3))
    keratin = _sigmoid((0.5 * r0 - r) / 0.08)
    colour = _blend(rim, (0.95, 0.9, 0.68), keratin)
    n = int(rng.integers(12, 21))
    vessels = _dots(c, _points_in(rng, n, cx, cy, 0.6 * r0, 0.9 * r0), rng.uniform(0.012, 0.02, n))
    return _blend(colour, _VESSEL_RED, vessels, 0.9), alpha


_LESIONS: dict[str, Callable] = {
    "MEL": _melanoma,
    "NV": _nevus,
    "BCC": _bcc,
    "AK": _ak,
    "BKL": _bkl,
    "DF": _df,
    "VASC": _vasc,
    "SCC": _scc,
}


# --- artifacts ----------------------------------------------------------------------------------
def _hair(rng, c: _Canvas, img: np.ndarray) -> np.ndarray:
    """4-12 dark curved hairs crossing the image (quadratic Bezier strokes)."""
    t = np.linspace(0, 1, 24)[:, None]

    def draw(d: ImageDraw.ImageDraw) -> None:
        for _ in range(int(rng.integers(4, 13))):
            p0, p1, p2 = rng.uniform(-1.3, 1.3, (3, 2))
            pts = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2
            width = max(1, round(c.scale / 64 * rng.choice([1, 1.5, 2])))
            d.line([c.px(x, y) for x, y in pts], fill=255, width=width)

    return _blend(img, (0.1, 0.07, 0.05), c.mask(draw), 0.92)


def _ruler(rng, c: _Canvas, img: np.ndarray) -> np.ndarray:
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

    img = _blend(img, (0.93, 0.91, 0.82), c.mask(draw_band), 0.9)
    return _blend(img, (0.08, 0.08, 0.08), c.mask(draw_ticks))


def _sticker(rng, c: _Canvas, img: np.ndarray) -> np.ndarray:
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
    return _blend(_blend(img, (0.97, 0.97, 0.97), rim), colour, disc)


def _ink(rng, c: _Canvas, img: np.ndarray) -> np.ndarray:
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

    return _blend(img, (0.44, 0.18, 0.6), c.mask(draw), 0.8)


def _fluid(rng, c: _Canvas, img: np.ndarray) -> np.ndarray:
    """Immersion-fluid bubbles: bright rims, a faint glow and a specular highlight each."""

    def draw(d: ImageDraw.ImageDraw) -> None:
        for _ in range(int(rng.integers(3, 9))):
            x, y = rng.uniform(0, c.w), rng.uniform(0, c.h)
            r = rng.uniform(0.04, 0.12) * min(c.h, c.w)
            d.ellipse((x - r, y - r, x + r, y + r), fill=70, outline=245, width=1)
            hr = max(1.0, 0.3 * r)
            hx, hy = x - 0.4 * r, y - 0.4 * r
            d.ellipse((hx - hr, hy - hr, hx + hr, hy + hr), fill=240)

    m = c.mask(draw)[..., None]
    return img + (1 - img) * m  # screen blend: only brightens


def _dark_corners(rng, c: _Canvas, img: np.ndarray) -> np.ndarray:
    """The dark vignette of a round dermatoscope field of view."""
    fov = rng.uniform(0.95, 1.15) * math.hypot(c.w, c.h) / (2 * c.scale) / math.sqrt(2)
    dark = np.clip((np.hypot(c.x, c.y) - fov) / 0.12, 0, 1)
    return img * (1 - 0.93 * dark)[..., None]


_ARTIFACT_FNS: dict[str, Callable] = {
    "hair": _hair,
    "ruler": _ruler,
    "sticker": _sticker,
    "ink": _ink,
    "fluid": _fluid,
    "dark_corners": _dark_corners,
}


def render_image(
    rng: np.random.Generator,
    kind: str,
    height: int,
    width: int,
    tone: np.ndarray | None = None,
    artifact: str = "none",
) -> np.ndarray:
    """One synthetic dermoscopy image as uint8 (height, width, 3).

    Args:
        rng: the image's own generator (all randomness comes from it).
        kind: an ISIC 2019 class (``MULTICLASS_CLASSES``); binary sets use NV (benign) and MEL
            (malignant).
        height, width: size in pixels.
        tone: skin colour (RGB in [0, 1]); drawn from a palette when None.
        artifact: "none" or one of ``ARTIFACTS``.
    """
    c = _canvas(height, width)
    if tone is None:
        tone = _SKIN_TONES[rng.integers(len(_SKIN_TONES))]
    low = rng.normal(0, 0.035, (6, 6, 3)).astype(np.float32)
    smooth = np.tensordot(_interp(height, 6), low, axes=(1, 0))  # (h, 6, 3)
    smooth = np.tensordot(_interp(width, 6), smooth, axes=(1, 1)).transpose(1, 0, 2)  # (h, w, 3)
    skin = np.asarray(tone, np.float32) + smooth
    cx, cy = rng.normal(0, 0.08, 2)
    colour, alpha = _LESIONS[kind](rng, c, cx, cy)
    a = alpha[..., None]
    img = skin + a * (colour - skin)
    img += 0.018 * rng.standard_normal((height, width, 1), dtype=np.float32)  # sensor noise
    if artifact != "none":
        img = _ARTIFACT_FNS[artifact](rng, c, img)
    img = np.clip(img * 255 + 0.5, 0, 255, out=img)
    return img.astype(np.uint8)


# --- layouts ----------------------------------------------------------------------------------
@dataclass
class _Layout:
    """What to write for one layout: the images to draw and the CSV tables (string cells)."""

    name: str
    image_dir: str
    images: pd.DataFrame  # stem, image_id, kind, artifact, height, width, key, tone, copy_of
    tables: dict[str, tuple[pd.DataFrame, bool]]  # file name -> (table, write header?)


def _assign_artifacts(rng: np.random.Generator, n: int) -> np.ndarray:
    """'none' everywhere but on a random ARTIFACT_FRACTION subset, the six kinds in turn."""
    k = int(round(ARTIFACT_FRACTION * n))
    out = np.full(n, "none", dtype=object)
    out[rng.permutation(n)[:k]] = [ARTIFACTS[j % len(ARTIFACTS)] for j in range(k)]
    return out


def _ids(rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
    """n distinct ISIC-style ids ``ISIC_%07d`` drawn from [low, high)."""
    nums = rng.choice(high - low, size=n, replace=False) + low
    return np.array([f"ISIC_{v:07d}" for v in nums], dtype=object)


def _fmt_age(age: np.ndarray, missing: np.ndarray) -> list[str]:
    return ["" if m else f"{a:.1f}" for a, m in zip(age, missing)]


def _maybe_empty(rng, values: np.ndarray, p: float) -> np.ndarray:
    values = values.astype(object)
    values[rng.random(len(values)) < p] = ""
    return values


def _plan_isic2020(rng: np.random.Generator, n: int, size: int) -> _Layout:
    n_dup = min(2, n // 10)
    n_u = n - n_dup
    sizes: list[int] = []
    while sum(sizes) < n_u:
        sizes.append(int(rng.integers(2, 7)))
    sizes[-1] -= sum(sizes) - n_u
    patient = np.repeat(np.arange(len(sizes)), sizes)
    n_pat = len(sizes)
    pids = np.array([f"IP_{v:07d}" for v in rng.choice(9_000_000, n_pat, replace=False) + 10**6])
    pat_sex = _maybe_empty(rng, rng.choice(np.array(["male", "female"]), n_pat), 0.03)
    pat_age = rng.integers(5, 16, n_pat) * 5
    pat_tone = rng.integers(len(_SKIN_TONES), size=n_pat)

    malignant = np.zeros(n_u, dtype=bool)
    malignant[rng.choice(n_u, max(2, round(MALIGNANT_FRACTION_2020 * n_u)), replace=False)] = True
    age = np.clip(pat_age[patient] + 10 * malignant + rng.choice([-5, 0, 0, 5], n_u), 10, 90)
    sites = _maybe_empty(
        rng, rng.choice(np.array(_SITES_2020), n_u, p=[0.5, 0.25, 0.15, 0.07, 0.03]), 0.02
    )
    diagnosis = np.where(
        malignant, "melanoma", rng.choice(np.array(["unknown", "nevus"]), n_u, p=[0.75, 0.25])
    )
    ids = _ids(rng, n, 2_000_000, 10_000_000)
    artifact = _assign_artifacts(rng, n_u)
    rows = pd.DataFrame(
        {
            "image_name": ids[:n_u],
            "patient_id": pids[patient],
            "sex": pat_sex[patient],
            "age_approx": _fmt_age(age, rng.random(n_u) < 0.02),
            "anatom_site_general_challenge": sites,
            "diagnosis": diagnosis,
            "benign_malignant": np.where(malignant, "malignant", "benign"),
            "target": malignant.astype(int).astype(str),
        }
    )
    images = pd.DataFrame(
        {
            "stem": ids[:n_u],
            "image_id": ids[:n_u],
            "kind": np.where(malignant, "MEL", "NV"),
            "artifact": artifact,
            "height": size,
            "width": size,
            "key": np.arange(n_u),
            "tone": pat_tone[patient],
            "copy_of": None,
        }
    )
    originals = rng.choice(n_u, n_dup, replace=False)
    copies = rows.iloc[originals].assign(image_name=ids[n_u:])
    copy_images = images.iloc[originals].assign(
        stem=ids[n_u:], image_id=ids[n_u:], copy_of=ids[originals], key=-1
    )
    rows = pd.concat([rows, copies]).sort_values("image_name")
    images = pd.concat([images, copy_images], ignore_index=True)
    duplicates = pd.DataFrame({"image_name_1": ids[originals], "image_name_2": ids[n_u:]})
    return _Layout(
        "isic2020",
        ISIC2020_IMAGE_DIR,
        images,
        {
            ISIC2020_CSV: (rows[list(ISIC2020_HEADER)], True),
            ISIC2020_DUPLICATES_CSV: (duplicates[list(ISIC2020_DUPLICATES_HEADER)], True),
        },
    )


def _class_counts(n: int) -> dict[str, int]:
    """At least 8 per class, the rest by sqrt of the real ISIC 2019 counts (largest remainder)."""
    base = 8
    weights = np.sqrt([_REAL_2019_COUNTS[c] for c in MULTICLASS_CLASSES])
    share = (n - base * len(weights)) * weights / weights.sum()
    counts = np.floor(share).astype(int)
    counts[np.argsort(-(share - counts))[: (n - base * len(weights)) - counts.sum()]] += 1
    return dict(zip(MULTICLASS_CLASSES, (counts + base).tolist()))


def _plan_isic2019(rng: np.random.Generator, n: int, size: int) -> _Layout:
    counts = _class_counts(n)
    kinds = np.repeat(np.array(MULTICLASS_CLASSES, dtype=object), list(counts.values()))
    kinds = kinds[rng.permutation(n)]
    # Lesions: 1-3 images of one class; ~20 % of images have no lesion id (as in the BCN part).
    lesion = np.full(n, -1)
    n_lesions = 0
    for cls in MULTICLASS_CLASSES:
        idx = list(np.flatnonzero(kinds == cls))
        while idx:
            if rng.random() < 0.2:
                idx.pop()
                continue
            k = min(len(idx), int(rng.integers(1, 4)))
            lesion[idx[:k]] = n_lesions
            n_lesions += 1
            idx = idx[k:]
    prefix = rng.choice(np.array(["HAM", "BCN"]), n_lesions)
    lesion_names = np.array(
        [f"{p}_{v:07d}" for p, v in zip(prefix, rng.choice(10**6, n_lesions, replace=False))]
    )
    group = np.where(lesion >= 0, lesion, n_lesions + np.arange(n))  # per-lesion metadata
    n_groups = n_lesions + n
    g_age = rng.integers(3, 18, n_groups) * 5
    g_sex = _maybe_empty(rng, rng.choice(np.array(["male", "female"]), n_groups), 0.02)
    g_site = _maybe_empty(rng, rng.choice(np.array(_SITES_2019), n_groups), 0.05)

    ids = _ids(rng, n, 0, 1_000_000)
    downsampled = np.zeros(n, dtype=bool)
    downsampled[rng.choice(n, max(2, round(0.03 * n)), replace=False)] = True
    stems = np.where(downsampled, ids + "_downsampled", ids)
    one_hot = {c: np.where(kinds == c, "1.0", "0.0") for c in MULTICLASS_CLASSES}
    gt = pd.DataFrame({"image": stems, **one_hot, "UNK": "0.0"})
    meta = pd.DataFrame(
        {
            "image": stems,
            "age_approx": _fmt_age(g_age[group], rng.random(n) < 0.02),
            "anatom_site_general": g_site[group],
            "lesion_id": np.where(lesion >= 0, lesion_names[np.maximum(lesion, 0)], ""),
            "sex": g_sex[group],
        }
    )
    order = np.argsort(stems, kind="stable")
    images = pd.DataFrame(
        {
            "stem": stems,
            "image_id": ids,
            "kind": kinds,
            "artifact": _assign_artifacts(rng, n),
            "height": np.where(downsampled, round(0.75 * size), size),
            "width": size,
            "key": np.arange(n),
            "tone": rng.integers(len(_SKIN_TONES), size=n),
            "copy_of": None,
        }
    )
    return _Layout(
        "isic2019",
        ISIC2019_IMAGE_DIR,
        images,
        {
            ISIC2019_GT_CSV: (gt.iloc[order][list(ISIC2019_GT_HEADER)], True),
            ISIC2019_META_CSV: (meta.iloc[order][list(ISIC2019_META_HEADER)], True),
        },
    )


def _plan_isic2016(rng: np.random.Generator, n: int, size: int) -> _Layout:
    malignant = np.zeros(n, dtype=bool)
    malignant[rng.choice(n, max(2, round(MALIGNANT_FRACTION_2016 * n)), replace=False)] = True
    ids = _ids(rng, n, 1_000_000, 2_000_000)
    order = np.argsort(ids, kind="stable")
    gt = pd.DataFrame({"image": ids, "label": np.where(malignant, "1.0", "0.0")})
    images = pd.DataFrame(
        {
            "stem": ids,
            "image_id": ids,
            "kind": np.where(malignant, "MEL", "NV"),
            "artifact": _assign_artifacts(rng, n),
            "height": size,
            "width": round(size * 4 / 3),
            "key": np.arange(n),
            "tone": rng.integers(len(_SKIN_TONES), size=n),
            "copy_of": None,
        }
    )
    return _Layout(
        "isic2016", ISIC2016_TEST_IMAGE_DIR, images, {ISIC2016_TEST_CSV: (gt.iloc[order], False)}
    )


def _check_folder(folder: Path, overwrite: bool) -> bool:
    """True when ``folder`` holds an earlier synthetic set to replace; an error when it holds
    anything else (nothing outside our own output is ever deleted)."""
    if not folder.exists() or not any(folder.iterdir()):
        return False
    if not (folder / TRUTH_FILE).is_file():
        raise IsicInputError(
            f"{folder} exists and was not written by make_synthetic (no {TRUTH_FILE}); "
            "choose an empty or new output folder"
        )
    if not overwrite:
        raise IsicInputError(f"{folder} already holds a synthetic set; pass overwrite=True")
    return True


def _write_csv(table: pd.DataFrame, path: Path, header: bool) -> None:
    table.to_csv(path, index=False, header=header, lineterminator="\n")


_LAYOUT_CODES = {"isic2020": 0, "isic2019": 1, "isic2016": 2}


def make_synthetic(
    out: str | Path,
    n_images: int = 240,
    seed: int = 0,
    image_size: int = 128,
    overwrite: bool = True,
) -> dict[str, Path]:
    """Write the synthetic ISIC 2020, 2019 and 2016 layouts under ``out`` (see module docstring).

    Args:
        out: output folder (created). A layout folder already there is replaced only when it
            holds a ``synthetic_truth.csv`` (an earlier synthetic set).
        n_images: ISIC 2020 rows; 2019 gets max(n, 64), 2016 max(n // 4, 8). At least 16.
        seed: every random choice derives from it; same seed, same bytes.
        image_size: side of the square images in pixels (2016 and ``_downsampled`` 2019 images
            are 4:3). At least 32.
        overwrite: replace an earlier synthetic set in ``out``.

    Returns:
        ``{"isic2020": path, "isic2019": path, "isic2016": path}``, the layout folders, ready
        for :func:`isic_tracking.data.sources.read_source` (or ``read_source("synthetic", out)``).
    """
    if int(n_images) < MIN_N_IMAGES:
        raise IsicInputError(f"n_images={n_images}: use at least {MIN_N_IMAGES}")
    if int(image_size) < MIN_IMAGE_SIZE:
        raise IsicInputError(f"image_size={image_size}: use at least {MIN_IMAGE_SIZE} pixels")
    if int(seed) < 0:
        raise IsicInputError(f"seed={seed}: use a non-negative integer")
    n, size, seed = int(n_images), int(image_size), int(seed)
    out = Path(out)
    plans = [
        _plan_isic2020(np.random.default_rng([seed, 0]), n, size),
        _plan_isic2019(np.random.default_rng([seed, 1]), max(n, 64), size),
        _plan_isic2016(np.random.default_rng([seed, 2]), max(n // 4, 8), size),
    ]
    replace = {plan.name: _check_folder(out / plan.name, overwrite) for plan in plans}
    folders: dict[str, Path] = {}
    for plan in plans:
        folder = out / plan.name
        if replace[plan.name]:
            shutil.rmtree(folder)
        image_dir = folder / plan.image_dir
        image_dir.mkdir(parents=True, exist_ok=True)
        code = _LAYOUT_CODES[plan.name]
        originals = plan.images[plan.images["copy_of"].isna()]
        for row in progress(
            originals.itertuples(index=False), total=len(originals), desc=f"synth {plan.name}"
        ):
            rng = np.random.default_rng([seed, code, 1 + int(row.key)])
            arr = render_image(
                rng, row.kind, int(row.height), int(row.width), _SKIN_TONES[row.tone], row.artifact
            )
            Image.fromarray(arr).save(image_dir / f"{row.stem}.jpg", quality=JPEG_QUALITY)
        for row in plan.images[plan.images["copy_of"].notna()].itertuples(index=False):
            shutil.copyfile(image_dir / f"{row.copy_of}.jpg", image_dir / f"{row.stem}.jpg")
        for name, (table, header) in plan.tables.items():
            _write_csv(table, folder / name, header)
        truth = plan.images.sort_values("image_id")[list(TRUTH_HEADER)]
        _write_csv(truth, folder / TRUTH_FILE, True)
        folders[plan.name] = folder
    return folders


def read_truth(root: str | Path) -> pd.DataFrame:
    """The artifact truth of a synthetic set: ``image_id, artifact, layout``.

    Args:
        root: the ``make_synthetic`` output folder, or one of its layout folders.
    """
    root = Path(root)
    if (root / TRUTH_FILE).is_file():
        found = [(root.name, root / TRUTH_FILE)]
    else:
        found = [(name, root / name / TRUTH_FILE) for name in LAYOUTS]
        found = [(name, p) for name, p in found if p.is_file()]
    if not found:
        raise IsicInputError(
            f"{root}: no {TRUTH_FILE} found; create a synthetic set with make_synthetic "
            "(`mlflow run . -e synth`)"
        )
    tables = [
        pd.read_csv(p, dtype=str, keep_default_na=False).assign(layout=name) for name, p in found
    ]
    return pd.concat(tables, ignore_index=True)
