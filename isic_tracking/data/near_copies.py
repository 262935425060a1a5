"""Near copies among thumbnails: a cheap all-pairs candidate search, then a registration.

A near copy is an image re-encoded, rescaled and slightly cropped (up to ~10 % off any edge).
Both steps work on one small RGB thumbnail per image (``THUMB`` x ``THUMB``, made by box
averaging of the whole picture, aspect ratio ignored: a crop of the original resized to a
square is then the copy resized to a square, whatever its size):

1. :func:`descriptors` keeps the central 80 % of each thumbnail averaged into 4x4 cells (48
   numbers): coarse enough that an 8 % crop moves it little. :func:`candidate_pairs` takes all
   pairwise distances (RMS over the 48 numbers, 0-1) in row chunks through one matrix product,
   ``|a|^2 + |b|^2 - 2 a.b``, and keeps the pairs within a loose ``max_distance``.
2. :func:`registered_rms` aligns each candidate pair: crop boxes of one thumbnail (trims of
   0-10 % per edge; steps of 5, 2, 1, then 0.5 %, each trying -1/0/+1 step on all four edges
   around the best so far: 4 x 81 boxes), area-resampled to ``CELLS`` x ``CELLS``, against the
   other thumbnail pooled to the same size, in both directions.
   The score is the RMS difference at the best box over the 80 % best-matching cells: the 20 %
   worst cells are sharp details (ruler ticks, hair, bubbles) that JPEG and resampling smear
   differently, while an unrelated look-alike differs over its whole lesion. (Thresholds and
   the numbers measured for them: :mod:`isic_tracking.data.leakage`.)

Resampling is separable: a crop box is one (rows x columns) matrix per axis, so all boxes of
a pair are two matrix products (torch), with no per-box interpolation.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

#: Side of the stored thumbnail (3 KB of uint8 RGB per image).
THUMB = 32
#: Side of the grid the registration compares (each cell ~2x2 thumbnail pixels).
CELLS = 16
#: Fraction of the thumbnail trimmed off each side before the 4x4 descriptor.
MARGIN = 0.1
DESCRIPTOR_GRID = 4
#: Largest trim per edge searched by the registration, and its steps (coarse to fine).
MAX_TRIM = 0.10
STEPS = (0.05, 0.02, 0.01, 0.005)
FINE_STEP = STEPS[-1]
#: Fraction of cells kept (the best-matching ones) in the registered RMS.
KEEP_CELLS = 0.8
#: Pairs registered at once (memory: about 2 MB each).
BATCH = 64


def descriptors(thumbs: np.ndarray) -> np.ndarray:
    """(N, 48) float32: the central ``1 - 2 * MARGIN`` of each (N, T, T, 3) uint8 thumbnail,
    averaged into ``DESCRIPTOR_GRID`` x ``DESCRIPTOR_GRID`` cells per channel, on a 0-1 scale."""
    n, t = thumbs.shape[0], thumbs.shape[1]
    k = round(MARGIN * t)
    core = thumbs[:, k : t - k, k : t - k].astype(np.float32) / 255.0
    g = DESCRIPTOR_GRID
    side = core.shape[1] - core.shape[1] % g
    cells = core[:, :side, :side].reshape(n, g, side // g, g, side // g, 3).mean(axis=(2, 4))
    return cells.reshape(n, -1)


#: Candidates kept per image: its nearest later images within the distance (see
#: :func:`candidate_pairs`).
PER_IMAGE = 8


def candidate_pairs(
    desc: np.ndarray, max_distance: float, chunk: int = 512, per_image: int = PER_IMAGE
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Index pairs (i < j) whose descriptor RMS distance is at most ``max_distance``; of each
    image ``i``, only its ``per_image`` nearest such ``j``.

    All pairs, ``chunk`` rows at a time (chunk x N float32: 512 x 100,000 = 205 MB), each
    chunk one BLAS matrix product. Yields ``(i, j, distance)`` arrays per chunk. The cap keeps
    the candidates at ``N x per_image`` whatever the data: a set of look-alikes (the same
    skin, lesion and framing) can put thousands of images within the loose distance of each
    other, and every candidate is registered after. A group of more than ``per_image + 1``
    copies of one picture is still found whole: each copy is paired with its nearest
    others, and the pairs join the group (:func:`isic_tracking.data.leakage.drop_duplicates_from`).
    """
    x = np.ascontiguousarray(desc, dtype=np.float32)
    n, dim = x.shape
    sq = (x * x).sum(axis=1)
    limit = np.float32(max_distance) ** 2 * dim
    for start in range(0, n, chunk):
        block = x[start : start + chunk]
        d2 = sq[start : start + chunk, None] + sq[None, :] - 2.0 * (block @ x.T)
        rows = np.arange(len(block))[:, None]
        d2[np.arange(n)[None, :] <= rows + start] = np.inf  # only j > i
        d2[d2 > limit] = np.inf
        if per_image < n:  # the per_image nearest of each row, unordered
            cols = np.argpartition(d2, per_image - 1, axis=1)[:, :per_image]
            near = d2[rows, cols]
            i, k = np.nonzero(np.isfinite(near))
            j, d = cols[i, k], near[i, k]
        else:
            i, j = np.nonzero(np.isfinite(d2))
            d = d2[i, j]
        dist = np.sqrt(np.maximum(d, 0.0) / dim)
        yield i + start, j, dist


def _area_matrix(lo: np.ndarray, hi: np.ndarray, n_src: int, n_out: int) -> np.ndarray:
    """(K, n_out, n_src): output cell k of window ``[lo, hi]`` (fractions of the side) is the
    mean of the source pixels it covers (pixels piecewise constant)."""
    steps = np.arange(n_out + 1) / n_out
    edges = (lo[:, None] + (hi - lo)[:, None] * steps[None, :]) * n_src  # (K, n_out + 1)
    a, b = edges[:, :-1, None], edges[:, 1:, None]
    src = np.arange(n_src + 1)
    overlap = np.clip(np.minimum(src[1:], b) - np.maximum(src[:-1], a), 0, None)
    return (overlap / (b - a)).astype(np.float32)


def _axis_windows(trims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (trim at the start, trim at the end) of one axis from ``trims``: (K, 2)."""
    start, end = np.meshgrid(trims, trims, indexing="ij")
    return np.stack([start.ravel(), end.ravel()], axis=1)


def _errors(x, y, rows, cols):
    """Mean squared error (P, Kr, Kc) of each crop of x (P, 3, T, T) by row windows ``rows``
    (P, Kr, C, T) and column windows ``cols`` (P, Kc, C, T) against y (P, 3, C, C)."""
    import torch

    xc = torch.einsum("pcyx,pknx->pkcyn", x, cols)
    crops = torch.einsum("pjmy,pkcyn->pjkcmn", rows, xc)
    return ((crops - y[:, None, None]) ** 2).mean(dim=(3, 4, 5)), crops


def _register_one_way(x, y, steps: tuple[float, ...], start: np.ndarray | None = None):
    """Best box of x against y, refined in ``steps``: each step tries the trims -1, 0, +1 step
    around the best so far on all four edges (81 boxes), from ``start`` ((P, 4): row start,
    row end, column start, column end trims; default all ``MAX_TRIM / 2``).
    Returns the per-cell squared errors (P, C*C) at the final box, and that box (P, 4)."""
    import torch

    p, t = x.shape[0], x.shape[-1]
    box = np.full((p, 4), MAX_TRIM / 2) if start is None else start.copy()
    offsets = _axis_windows(np.array([-1.0, 0.0, 1.0]))  # (9, 2)

    def windows(best: np.ndarray, step: float) -> tuple[np.ndarray, object]:
        w = np.clip(best[:, None, :] + step * offsets[None], 0.0, MAX_TRIM + FINE_STEP)
        flat = w.reshape(-1, 2)
        m = _area_matrix(flat[:, 0], 1 - flat[:, 1], t, CELLS)
        return w, torch.from_numpy(m.reshape(p, -1, CELLS, t))

    pick = np.arange(p)
    for step in steps:
        row_w, row_m = windows(box[:, :2], step)
        col_w, col_m = windows(box[:, 2:], step)
        err, crops = _errors(x, y, row_m, col_m)
        best = err.reshape(p, -1).argmin(dim=1).numpy()
        box = np.concatenate([row_w[pick, best // 9], col_w[pick, best % 9]], axis=1)
    chosen = crops[torch.arange(p), torch.from_numpy(best // 9), torch.from_numpy(best % 9)]
    return ((chosen - y) ** 2).mean(dim=1).reshape(p, -1), box


def _score(cells) -> object:
    """(P, 2): RMS over the ``KEEP_CELLS`` best cells, and over all cells, of (P, C*C) squared
    errors."""
    import torch

    keep = max(1, int(KEEP_CELLS * cells.shape[1]))
    best = cells.sort(dim=1).values[:, :keep].mean(dim=1).sqrt()
    return torch.stack([best, cells.mean(dim=1).sqrt()], dim=1)


def _better(one, other) -> object:
    """Per pair, the (best cells, all cells) scores of the direction with the lower first."""
    return one.where((one[:, :1] <= other[:, :1]), other)


def registered_rms(
    thumbs: np.ndarray, i: np.ndarray, j: np.ndarray, give_up: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """For each pair (i[k], j[k]) of (N, T, T, 3) uint8 thumbnails, once one is cropped to fit
    the other at best (the direction that fits better): the RMS difference (0-1) over the
    ``KEEP_CELLS`` best cells, and over all cells.

    The best cells forgive sharp details; all cells do not let a small lesion on plain skin
    hide in the 20 % left out (unrelated images of that kind score near 0 on the best cells).

    ``give_up``: pairs whose best-cells score is above it after the first (coarsest) step are
    not refined; their coarse scores are returned (for a decision "RMS <= threshold",
    give_up = 2 x threshold: on the planted copies the coarse score was at most 0.014 where the
    threshold is 0.015, and it drops ~70 % of the look-alike candidates, halving the time).
    """
    import torch

    out = np.empty((len(i), 2), dtype=np.float64)
    pool = torch.nn.functional.adaptive_avg_pool2d
    for s in range(0, len(i), BATCH):
        a = torch.from_numpy(thumbs[i[s : s + BATCH]]).permute(0, 3, 1, 2).float() / 255.0
        b = torch.from_numpy(thumbs[j[s : s + BATCH]]).permute(0, 3, 1, 2).float() / 255.0
        ways = [(a, pool(b, CELLS)), (b, pool(a, CELLS))]
        first = [_register_one_way(x, y, STEPS[:1]) for x, y in ways]
        score = _better(_score(first[0][0]), _score(first[1][0]))
        go = np.ones(len(score), dtype=bool)
        if give_up is not None:
            go = score[:, 0].numpy() <= give_up
        if go.any() and len(STEPS) > 1:
            keep = torch.from_numpy(np.nonzero(go)[0])
            finer = [
                _score(_register_one_way(x[keep], y[keep], STEPS[1:], box[go])[0])
                for (x, y), (_, box) in zip(ways, first)
            ]
            score[keep] = _better(*finer)
        out[s : s + len(score)] = score.numpy()
    return out[:, 0], out[:, 1]
