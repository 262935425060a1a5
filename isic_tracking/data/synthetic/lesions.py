"""The lesions: one painter per ISIC 2019 class family, each with its planted visual cues.

Malignant (MEL) lesions are large, irregular, asymmetric and multi-coloured (black, blue-grey,
red, regression white); benign (NV) ones small, round and uniformly brown; every other class has
its own colour, shape and texture family. Each painter returns (colour field (h, w, 3),
alpha (h, w)) for a lesion centred near (cx, cy).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PIL import ImageDraw

from isic_tracking.data.synthetic.geometry import (
    blend,
    blob_field,
    border,
    dots,
    jitter,
    points_in,
    polar,
    sigmoid,
)

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
    r, th = polar(c, cx, cy, rng.uniform(1.0, 1.15), rng.uniform(0, np.pi))
    rb = border(rng, th, rng.uniform(0.3, 0.5), 0.035)
    alpha = sigmoid((rb - r) / 0.03)
    shade = 1 - 0.15 * np.clip(1 - r / rb, 0, 1)
    return jitter(rng, _BROWN, 0.12) * shade[..., None], alpha


def _melanoma(rng, c, cx, cy):
    """MEL / malignant: large, irregular, asymmetric border; several colours in patches."""
    r0 = rng.uniform(0.42, 0.62)
    r, th = polar(c, cx, cy, rng.uniform(1.0, 1.4), rng.uniform(0, np.pi))
    rb = border(rng, th, r0, rng.uniform(0.18, 0.3))
    alpha = sigmoid((rb - r) / rng.uniform(0.01, 0.05))
    shift = rng.uniform(-0.15, 0.15, 2)  # colour patches off-centre: asymmetric
    field = blob_field(
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
    r, th = polar(c, cx, cy, rng.uniform(1.0, 1.2), rng.uniform(0, np.pi))
    alpha = 0.85 * sigmoid((border(rng, th, r0, 0.1) - r) / 0.05)
    colour = np.broadcast_to(jitter(rng, (0.87, 0.65, 0.65)), (c.h, c.w, 3))

    def vessels(d: ImageDraw.ImageDraw) -> None:
        width = max(1, round(c.scale / 64))
        for _ in range(int(rng.integers(3, 6))):
            x, y = points_in(rng, 1, cx, cy, 0, 0.6 * r0)[0]
            ang = rng.uniform(0, 2 * np.pi)
            pts = [c.px(x, y)]
            for _ in range(8):
                ang += rng.normal(0, 0.6)
                x, y = x + 0.07 * r0 * 2 * math.cos(ang), y + 0.07 * r0 * 2 * math.sin(ang)
                pts.append(c.px(x, y))
            d.line(pts, fill=255, width=width)

    colour = blend(colour, _VESSEL_RED, c.mask(vessels), 0.9)
    n = int(rng.integers(2, 5))
    nests = dots(c, points_in(rng, n, cx, cy, 0, 0.6 * r0), rng.uniform(0.04, 0.07, n))
    return blend(colour, (0.32, 0.36, 0.5), nests, 0.9), alpha


def _ak(rng, c, cx, cy):
    """AK: red-pink, fuzzy border, white scale speckles."""
    r0 = rng.uniform(0.4, 0.55)
    r, th = polar(c, cx, cy, rng.uniform(1.0, 1.3), rng.uniform(0, np.pi))
    alpha = sigmoid((border(rng, th, r0, 0.12) - r) / 0.1)
    colour = np.broadcast_to(jitter(rng, (0.8, 0.42, 0.4)), (c.h, c.w, 3))
    scale = (rng.random((c.h, c.w), dtype=np.float32) < 0.08).astype(np.float32)
    return blend(colour, (0.97, 0.95, 0.9), scale, 0.85), alpha


def _bkl(rng, c, cx, cy):
    """BKL: sharply demarcated oval, tan, cerebriform ridges, dark comedo-like and white dots."""
    r0 = rng.uniform(0.35, 0.5)
    angle = rng.uniform(0, np.pi)
    r, th = polar(c, cx, cy, rng.uniform(1.2, 1.5), angle)
    alpha = sigmoid((border(rng, th, r0, 0.06) - r) / 0.012)
    freq = rng.uniform(25, 35)
    u = (c.x - cx) * math.cos(angle) + (c.y - cy) * math.sin(angle)
    v = -(c.x - cx) * math.sin(angle) + (c.y - cy) * math.cos(angle)
    ridge = 0.5 + 0.5 * np.sin(freq * u + 2.5 * np.sin(0.5 * freq * v))
    colour = jitter(rng, (0.6, 0.43, 0.27)) * (0.75 + 0.25 * ridge)[..., None]
    n = int(rng.integers(5, 11))
    comedo = dots(c, points_in(rng, n, cx, cy, 0, 0.8 * r0), rng.uniform(0.02, 0.035, n))
    colour = blend(colour, (0.22, 0.14, 0.09), comedo)
    n = int(rng.integers(3, 7))
    milia = dots(c, points_in(rng, n, cx, cy, 0, 0.8 * r0), rng.uniform(0.015, 0.025, n))
    return blend(colour, (0.96, 0.94, 0.86), milia), alpha


def _df(rng, c, cx, cy):
    """DF: small, round, light-brown ring around a central white scar-like patch."""
    r0 = rng.uniform(0.22, 0.32)
    r, th = polar(c, cx, cy, rng.uniform(1.0, 1.15), rng.uniform(0, np.pi))
    alpha = sigmoid((border(rng, th, r0, 0.05) - r) / 0.05)
    ring = np.broadcast_to(jitter(rng, (0.6, 0.44, 0.34)), (c.h, c.w, 3))
    centre = sigmoid((rng.uniform(0.4, 0.5) * r0 - r) / 0.04)
    return blend(ring, (0.95, 0.91, 0.87), centre), alpha


def _vasc(rng, c, cx, cy):
    """VASC: lobulated red-to-purple lacunae (several overlapping round lobes)."""
    n = int(rng.integers(3, 6))
    lobes = points_in(rng, n, cx, cy, 0.05, 0.22)
    radii = rng.uniform(0.14, 0.24, n)
    alpha = np.zeros((c.h, c.w), dtype=np.float32)
    for (x, y), rad in zip(lobes, radii):
        alpha = np.maximum(alpha, sigmoid((rad - np.hypot(c.x - x, c.y - y)) / 0.025))
    palette = np.array([[0.74, 0.1, 0.18], [0.5, 0.1, 0.36], [0.62, 0.06, 0.22]], np.float32)
    colour = blob_field(rng, c, (cx, cy), 0.25, palette, n, (0.1, 0.18), palette[0])
    lacunae = dots(c, lobes, 0.35 * radii)
    return blend(colour, (0.36, 0.03, 0.1), lacunae, 0.8), alpha


def _scc(rng, c, cx, cy):
    """SCC: pink-red rim, yellow-white keratin centre, dotted red vessels in the rim."""
    r0 = rng.uniform(0.42, 0.58)
    r, th = polar(c, cx, cy, rng.uniform(1.0, 1.25), rng.uniform(0, np.pi))
    alpha = sigmoid((border(rng, th, r0, 0.1) - r) / 0.04)
    rim = np.broadcast_to(jitter(rng, (0.84, 0.46, 0.46)), (c.h, c.w, 3))
    keratin = sigmoid((0.5 * r0 - r) / 0.08)
    colour = blend(rim, (0.95, 0.9, 0.68), keratin)
    n = int(rng.integers(12, 21))
    vessels = dots(c, points_in(rng, n, cx, cy, 0.6 * r0, 0.9 * r0), rng.uniform(0.012, 0.02, n))
    return blend(colour, _VESSEL_RED, vessels, 0.9), alpha


LESIONS: dict[str, Callable] = {
    "MEL": _melanoma,
    "NV": _nevus,
    "BCC": _bcc,
    "AK": _ak,
    "BKL": _bkl,
    "DF": _df,
    "VASC": _vasc,
    "SCC": _scc,
}
