"""Fractal images for pre-training: a download-free, formula-driven classification data set.

Formula-driven supervised learning in the style of FractalDB (Kataoka et al., "Pre-training
without Natural Images", ACCV 2020; IJCV 2022). Each category is an iterated function system
(IFS): 2-4 contractive affine maps ``x -> A_k x + b_k`` whose 6 parameters are drawn uniformly in
[-1, 1] (a map is re-drawn until its largest singular value is below ``SIGMA_MAX``). A system is
kept only if its attractor fills at least ``FILL_THRESHOLD`` of a square grid fitted to it (the
"filling rate" of FractalDB), so degenerate systems -- points, lines, thin dust -- are rejected
and re-drawn. An image is drawn by the chaos game: each point moves by a map chosen with
probability proportional to ``|det A_k|``.

Instances of one category vary ("instance augmentation"): one parameter of one map is
multiplied by a factor in [0.8, 1.2], the shape is flipped / rotated by a multiple of 90 degrees,
scaled and moved. Images are RGB: the points are coloured by the map that produced them (a
palette per category, with per-instance hue and brightness jitter) on a dark to mid grey,
slightly tinted background whose brightness varies per instance.

Why this set: the target images are dermoscopy pictures, where the colour of a lesion and the
shape and sharpness of its border carry the diagnosis. Pre-training a CNN on fractals teaches
generic edge, texture, colour and shape filters before it is fine-tuned, with no image to
download and no licence to check. Shape is the main cue of a category and colour a secondary
one (palettes of different categories overlap and are jittered), so the network cannot solve
the task from colour alone and has to learn shape filters too.

Everything random comes from a ``numpy.random.Generator``; ``fractal_dataset`` derives one
generator per category and per image from its seed, so a seed gives identical tensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

FILL_THRESHOLD = 0.2  # least filling rate of a kept system (share of the fill grid covered)
SIGMA_MAX = 0.95  # largest singular value a map may have: every map is a contraction
MIN_MAPS, MAX_MAPS = 2, 4
FILL_GRID = 32  # the filling rate is measured on a FILL_GRID x FILL_GRID grid
FILL_POINTS = 6000
BURN_IN = 10  # chaos-game steps dropped at the start of each chain
CHAIN_STEPS = 40  # steps per chain, burn-in included
_CATEGORY_STREAM, _INSTANCE_STREAM, _ORDER_STREAM = 0, 1, 2


@dataclass(frozen=True, eq=False)
class IFS:
    """One category: maps [K,2,2], shifts [K,2], probabilities [K].

    Also carries the category's palette ``colours`` [K,3] (RGB in [0, 1], one colour per map)
    and the ``fill`` (filling rate) measured when it was accepted. The arrays are read-only
    copies; ``eq=False`` because numpy arrays have no single truth value for ``==``.
    """

    maps: np.ndarray
    shifts: np.ndarray
    probs: np.ndarray
    colours: np.ndarray
    fill: float = math.nan

    def __post_init__(self) -> None:
        k = len(self.maps)
        shapes = {"maps": (k, 2, 2), "shifts": (k, 2), "probs": (k,), "colours": (k, 3)}
        for name, shape in shapes.items():
            arr = np.array(getattr(self, name), dtype=np.float64)
            if arr.shape != shape:
                raise ValueError(f"IFS.{name} has shape {arr.shape}, expected {shape}")
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        if k < 1 or not np.isclose(self.probs.sum(), 1.0) or (self.probs < 0).any():
            raise ValueError("IFS.probs must be non-negative and sum to 1")


def singular_values(maps: np.ndarray) -> np.ndarray:
    """Singular values [K,2] of each map, largest first: a map contracts iff its first is < 1."""
    return np.linalg.svd(np.asarray(maps, dtype=np.float64), compute_uv=False)


def det_probs(maps: np.ndarray) -> np.ndarray:
    """Chaos-game probabilities ``|det A_k|`` normalised (FractalDB), with a floor of 1 % each.

    The floor keeps a nearly flat map in play, so its part of the attractor is still drawn.
    """
    det = np.abs(maps[:, 0, 0] * maps[:, 1, 1] - maps[:, 0, 1] * maps[:, 1, 0])
    p = det / det.sum() if det.sum() > 0 else np.full(len(maps), 1.0 / len(maps))
    p = np.maximum(p, 0.01)
    return p / p.sum()


def chaos_game(
    maps: np.ndarray, shifts: np.ndarray, probs: np.ndarray, rng: np.random.Generator, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Points on the attractor by the chaos game, vectorised over many short chains.

    Each chain starts at the fixed point of a random map (a point of the attractor), takes
    ``CHAIN_STEPS`` steps and keeps all but the first ``BURN_IN``, so every step is one numpy
    operation over all chains instead of a Python loop over points.

    Args:
        maps, shifts, probs: the system (see :class:`IFS`); the maps must be contractions.
        rng: source of the start points and of the map chosen at each step.
        n: number of points returned.

    Returns:
        ``(points [n,2], which [n])``: the coordinates and the index of the map that produced
        each point (the colour of a point is its map's colour).
    """
    k, keep = len(maps), CHAIN_STEPS - BURN_IN
    n_chains = max(1, -(-n // keep))
    fixed = np.linalg.solve(np.eye(2)[None] - maps, shifts[..., None])[..., 0]
    start = fixed[rng.integers(k, size=n_chains)]
    x, y = start[:, 0].copy(), start[:, 1].copy()
    choice = np.searchsorted(np.cumsum(probs), rng.random((CHAIN_STEPS, n_chains)), side="right")
    choice = np.minimum(choice, k - 1)
    a, b = maps.reshape(k, 4).T[:, choice], shifts.T[:, choice]  # [4|2, steps, chains]
    pts = np.empty((2, keep, n_chains))  # coordinate-major: columns of the result contiguous
    for t in range(CHAIN_STEPS):
        x, y = a[0, t] * x + a[1, t] * y + b[0, t], a[2, t] * x + a[3, t] * y + b[1, t]
        if t >= BURN_IN:
            pts[0, t - BURN_IN], pts[1, t - BURN_IN] = x, y
    return pts.reshape(2, -1)[:, :n].T, choice[BURN_IN:].reshape(-1)[:n]


def _normalise(points: np.ndarray) -> np.ndarray:
    """Centre the bounding box at 0 and scale its longer side to 1 (aspect ratio kept)."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    return (points - (lo + hi) / 2) / max(float((hi - lo).max()), 1e-12)


def filling_rate(ifs: IFS, rng: np.random.Generator, n_points: int = FILL_POINTS) -> float:
    """Share of a ``FILL_GRID`` square grid, fitted to the attractor, that its points cover.

    FractalDB keeps a system only above a filling-rate threshold: a line covers ~1/FILL_GRID,
    a point almost nothing, a filled square 1.

    Args:
        ifs: the system to measure.
        rng: source of the chaos game.
        n_points: points drawn; enough to cover every cell a solid shape touches.

    Returns:
        The covered share of the grid cells, in [0, 1].
    """
    pts, _ = chaos_game(ifs.maps, ifs.shifts, ifs.probs, rng, n_points)
    cells = np.clip(((_normalise(pts) + 0.5) * FILL_GRID).astype(int), 0, FILL_GRID - 1)
    return len(np.unique(cells[:, 0] * FILL_GRID + cells[:, 1])) / FILL_GRID**2


def _hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """HSV [...,3] in [0, 1] -> RGB [...,3] in [0, 1]."""
    h, s, v = hsv[..., 0] % 1.0, hsv[..., 1], hsv[..., 2]
    k = (np.array([5.0, 3.0, 1.0]) + h[..., None] * 6) % 6
    return v[..., None] - (v * s)[..., None] * np.clip(np.minimum(k, 4 - k), 0, 1)


def _palette(rng: np.random.Generator, k: int) -> np.ndarray:
    """A category's colours [k,3]: hues near a random base hue, saturated and bright."""
    hue = rng.random() + rng.uniform(-0.12, 0.12, size=k)
    hsv = np.stack([hue, rng.uniform(0.45, 0.9, size=k), rng.uniform(0.7, 1.0, size=k)], axis=1)
    return _hsv_to_rgb(hsv)


def _sample_maps(rng: np.random.Generator, k: int) -> np.ndarray:
    """k maps with parameters uniform in [-1, 1], each re-drawn until it contracts."""
    maps = rng.uniform(-1, 1, size=(k, 2, 2))
    while (bad := singular_values(maps)[:, 0] >= SIGMA_MAX).any():
        maps[bad] = rng.uniform(-1, 1, size=(int(bad.sum()), 2, 2))
    return maps


def sample_category(rng: np.random.Generator, max_tries: int = 200) -> IFS:
    """Draw one category: a random contractive IFS that passes the filling-rate test.

    Args:
        rng: source of every random choice (number of maps, parameters, palette).
        max_tries: systems drawn before giving up; about 1 in 5 passes, so 200 never runs out
            in practice.

    Returns:
        The accepted :class:`IFS`, its ``fill`` set to the measured filling rate.

    Raises:
        RuntimeError: when no system of ``max_tries`` passes.
    """
    for _ in range(max_tries):
        k = int(rng.integers(MIN_MAPS, MAX_MAPS + 1))
        maps = _sample_maps(rng, k)
        shifts = rng.uniform(-1, 1, size=(k, 2))
        ifs = IFS(maps, shifts, det_probs(maps), np.zeros((k, 3)))
        fill = filling_rate(ifs, rng)
        if fill >= FILL_THRESHOLD:
            return IFS(maps, shifts, ifs.probs, _palette(rng, k), fill)
    raise RuntimeError(f"no IFS reached filling rate {FILL_THRESHOLD} in {max_tries} tries")


def _perturb(maps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """FractalDB's instance augmentation: one parameter of one map times a factor in [0.8, 1.2].

    A map pushed out of contraction is scaled back to ``SIGMA_MAX``.
    """
    out = maps.copy()
    k, i, j = int(rng.integers(len(maps))), int(rng.integers(2)), int(rng.integers(2))
    out[k, i, j] *= rng.uniform(0.8, 1.2)
    sigma = singular_values(out[k])[0]
    if sigma >= SIGMA_MAX:
        out[k] *= SIGMA_MAX / sigma
    return out


def _place(points: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Random flip / 90-degree rotation, scale and position of the points, in pixels."""
    p = _normalise(points)
    x, y = p[:, 0], p[:, 1]
    if rng.random() < 0.5:
        x = -x
    for _ in range(int(rng.integers(4))):
        x, y = -y, x
    scale = size * rng.uniform(0.7, 0.95)
    extent = np.array([x.max() - x.min(), y.max() - y.min()])
    room = np.maximum(size - scale * extent, 0) / 2
    shift = size / 2 + rng.uniform(-0.8, 0.8, size=2) * room
    return np.stack([scale * x + shift[0], scale * y + shift[1]], axis=1)


def _jitter_colours(colours: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-instance colour jitter: a hue rotation of up to 20 degrees and a brightness factor."""
    theta = math.radians(rng.uniform(-20, 20))
    u = np.full(3, 1 / math.sqrt(3))
    cross = np.array([[0, -u[2], u[1]], [u[2], 0, -u[0]], [-u[1], u[0], 0]])
    rot = math.cos(theta) * np.eye(3) + math.sin(theta) * cross
    rot += (1 - math.cos(theta)) * np.outer(u, u)
    return np.clip(colours @ rot.T * rng.uniform(0.8, 1.1), 0, 1)


def render(
    ifs: IFS, size: int, rng: np.random.Generator, n_points: int | None = None
) -> np.ndarray:
    """Draw one instance of a category (instance augmentation included).

    Args:
        ifs: the category.
        size: side of the square image in pixels.
        rng: source of every random choice of this instance (perturbation, placement,
            colours, background, chaos game).
        n_points: chaos-game points; default ``2 * size**2``, enough for a solid-looking
            shape at any size.

    Returns:
        uint8 RGB image [size, size, 3]: points coloured by their map (alpha grows with the
        point density) over a dark to mid grey, slightly tinted background.
    """
    if size < 4:
        raise ValueError(f"size must be at least 4, got {size}")
    n_points = 2 * size * size if n_points is None else n_points
    maps = _perturb(ifs.maps, rng)
    pts, which = chaos_game(maps, ifs.shifts, det_probs(maps), rng, n_points)
    px = _place(pts, size, rng).astype(np.int64)
    colours = _jitter_colours(ifs.colours, rng)
    background = rng.uniform(0.05, 0.45) + rng.uniform(-0.04, 0.04, size=3)
    inside = ((px >= 0) & (px < size)).all(axis=1)
    flat = px[inside, 1] * size + px[inside, 0]
    count = np.bincount(flat, minlength=size * size).astype(np.float64)
    rgb = np.stack(
        [np.bincount(flat, colours[which[inside], c], size * size) for c in range(3)], axis=1
    )
    mean = rgb / np.maximum(count, 1)[:, None]
    level = count[count > 0].mean() if (count > 0).any() else 1.0
    alpha = (1 - np.exp(-3 * count / level))[:, None]
    img = background * (1 - alpha) + mean * alpha
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8).reshape(size, size, 3)


def make_categories(n_classes: int, seed: int) -> list[IFS]:
    """The ``n_classes`` categories of a seed; category i depends only on ``(seed, i)``.

    Args:
        n_classes: number of categories.
        seed: non-negative seed; the first m categories of a larger set equal those of
            ``make_categories(m, seed)``.

    Returns:
        One :class:`IFS` per class, in label order.
    """
    _check_counts(n_classes=n_classes, seed=seed)
    return [
        sample_category(np.random.default_rng([seed, _CATEGORY_STREAM, i]))
        for i in range(n_classes)
    ]


def fractal_dataset(
    n_classes: int, per_class: int, size: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images [N,3,size,size] (channels first, ready for torch) and int64 labels [N];
    deterministic for a seed; classes balanced; order shuffled by the seed.

    Args:
        n_classes: number of categories (labels ``0 .. n_classes-1``, see :func:`class_names`).
        per_class: images per category, so ``N = n_classes * per_class``.
        size: image side in pixels.
        seed: non-negative seed of the categories, of every instance and of the order; image
            j of class c depends only on ``(seed, c, j)``.

    Returns:
        ``(images, labels)``: uint8 tensor [N,3,size,size] and int64 tensor [N].
    """
    _check_counts(n_classes=n_classes, per_class=per_class, seed=seed)
    categories = make_categories(n_classes, seed)
    images = np.empty((n_classes * per_class, size, size, 3), dtype=np.uint8)
    for c, ifs in enumerate(categories):
        for j in range(per_class):
            rng = np.random.default_rng([seed, _INSTANCE_STREAM, c, j])
            images[c * per_class + j] = render(ifs, size, rng)
    labels = np.repeat(np.arange(n_classes, dtype=np.int64), per_class)
    order = np.random.default_rng([seed, _ORDER_STREAM]).permutation(len(labels))
    chw = np.ascontiguousarray(images[order].transpose(0, 3, 1, 2))
    return torch.from_numpy(chw), torch.from_numpy(labels[order])


def class_names(n_classes: int) -> list[str]:
    """Label names ``fractal_000``, ``fractal_001``, ...: index i names label i."""
    _check_counts(n_classes=n_classes)
    return [f"fractal_{i:03d}" for i in range(n_classes)]


def _check_counts(**values: int) -> None:
    """Reject non-positive counts and negative seeds (numpy seeds must be non-negative)."""
    for name, value in values.items():
        least = 0 if name == "seed" else 1
        if int(value) != value or value < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
