"""Does a class-logit visualization carry its class's colours?

The synthetic classes differ by planted colours (malignant: black, blue-grey, red, white
patches; benign: uniform brown; each multiclass family its own palette). So the picture that
maximizes a class's logit should be closer, in colour, to the lesions of that class than to
those of any other class.

- :func:`lesion_mask`: the lesion pixels of a natural image, without a stored mask: pixels
  whose colour is far from the skin, estimated as the median colour of the image's border.
- :func:`colour_histogram`: a soft (trilinear) joint histogram in CIELAB (perceptual axes:
  lightness, green-red, blue-yellow), so close colours share bins.
- :func:`colour_check`: how far each visualization is from every class's lesion colours,
  as ``1 - support``: the support of a class is the mean, over the picture's pixels, of the
  posterior of that class given the pixel's colour under the classes' lesion histograms
  (equal class priors), i.e. the share of the picture's colour evidence a colour-only
  classifier of lesion pixels gives the class. Chance is ``1 - 1/K``. Unlike the
  Kullback-Leibler divergence ``KL(picture || class)`` used before, it does not favour the
  class with the broadest palette: under KL a picture of several browns was nearest the
  multi-coloured melanoma, not the uniformly brown nevus (docs/benchmarks.md).

  A class passes when its own class is the nearest; the table keeps the distance to every
  class.
- :func:`chance_p`: how often relabelling the pictures at random would pass as many
  classes (all ``K!`` relabellings up to 8 classes): the check's own significance.

All pure functions over ``[3, H, W]`` / ``[N, 3, H, W]`` tensors in ``[0, 1]``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import pandas as pd
import torch
from torch import Tensor

#: Bins per CIELAB axis (L in 0..100, a and b in -80..80).
BINS: tuple[int, int, int] = (6, 8, 8)
_RANGES = ((0.0, 100.0), (-80.0, 80.0), (-80.0, 80.0))
#: A pixel this far (RGB Euclidean, 0..1 scale) from the skin colour is lesion.
LESION_THRESHOLD = 0.15
#: The border ring (fraction of the side) whose median colour is the skin.
BORDER = 0.08
_WHITE = torch.tensor([0.95047, 1.0, 1.08883])
_RGB_TO_XYZ = torch.tensor(
    [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]
)


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """sRGB ``[..., 3]`` in ``[0, 1]`` -> CIELAB ``[..., 3]`` (D65)."""
    c = rgb.clamp(0, 1).float()
    lin = torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = lin @ _RGB_TO_XYZ.T / _WHITE
    f = torch.where(xyz > 0.008856, xyz ** (1 / 3), 7.787 * xyz + 16 / 116)
    return torch.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1
    )


def lesion_mask(
    image: Tensor, threshold: float = LESION_THRESHOLD, border: float = BORDER
) -> Tensor:
    """``[H, W]`` bool: pixels farther than ``threshold`` from the skin colour (the median of
    the outer ``border`` ring). Artifacts far from the skin count as lesion: a small, known
    contamination (they are the same across classes)."""
    _, h, w = image.shape
    k = max(1, round(border * min(h, w)))
    ring = torch.ones(h, w, dtype=torch.bool)
    ring[k:-k, k:-k] = False
    skin = image[:, ring].median(dim=1).values
    return (image - skin[:, None, None]).norm(dim=0) > threshold


def colour_histogram(pixels: Tensor, bins: Sequence[int] = BINS) -> Tensor:
    """Normalized soft joint histogram ``[prod(bins)]`` of RGB pixels ``[P, 3]`` in CIELAB.

    Each pixel spreads over the 8 bin centres around it (trilinear weights), so a colour at a
    bin edge does not jump from one bin to the next."""
    if pixels.numel() == 0:
        raise ValueError("colour_histogram got no pixels")
    lab = rgb_to_lab(pixels.reshape(-1, 3))
    pos, lo_idx, frac = [], [], []
    for axis, (n, (lo, hi)) in enumerate(zip(bins, _RANGES)):
        p = ((lab[:, axis] - lo) / (hi - lo) * n - 0.5).clamp(0, n - 1)
        f = p.floor()
        pos.append(p)
        lo_idx.append(f.long().clamp(max=n - 2) if n > 1 else f.long())
        frac.append((p - lo_idx[-1]).clamp(0, 1) if n > 1 else torch.zeros_like(p))
    hist = torch.zeros(tuple(bins))
    for corner in range(8):
        step = [(corner >> a) & 1 for a in range(3)]
        if any(s and n == 1 for s, n in zip(step, bins)):
            continue
        idx = [i + s for i, s in zip(lo_idx, step)]
        wgt = torch.ones_like(pos[0])
        for s, f in zip(step, frac):
            wgt = wgt * (f if s else 1 - f)
        hist.index_put_(tuple(idx), wgt, accumulate=True)
    flat = hist.flatten()
    return flat / flat.sum()


#: Share of a uniform histogram mixed into a class's, so no colour has probability 0.
SMOOTHING = 0.01


def divergence(p: Tensor, q: Tensor, smoothing: float = SMOOTHING) -> Tensor:
    """``KL(p || q')`` in nats over the last axis, ``q'`` = ``q`` mixed with ``smoothing`` of
    a uniform histogram (broadcasts: ``p [bins]`` against ``q [K, bins]``)."""
    q = (1 - smoothing) * q + smoothing / q.shape[-1]
    terms = torch.where(p > 0, p * (p.clamp(min=1e-12).log() - q.log()), torch.zeros_like(p))
    return terms.sum(-1)


def class_histograms(
    batches: Iterable[tuple[Tensor, Tensor]], n_classes: int, bins: Sequence[int] = BINS
) -> Tensor:
    """``[K, bins]``: the colour histogram of the lesion pixels of each class's images
    (``(images [B, 3, H, W], labels [B])`` batches); a class without images gets NaN."""
    acc = ClassHistograms(n_classes, bins)
    for images, labels in batches:
        acc.add(images, labels)
    return acc.result()


class ClassHistograms:
    """:func:`class_histograms` batch by batch, for one pass over the images that feeds
    other consumers too (each image decoded once)."""

    def __init__(self, n_classes: int, bins: Sequence[int] = BINS) -> None:
        self.bins = bins
        self.sums = torch.zeros(n_classes, int(torch.tensor(bins).prod()))

    def add(self, images: Tensor, labels: Tensor) -> None:
        for img, y in zip(images, labels.tolist(), strict=True):
            mask = lesion_mask(img)
            if mask.any():
                self.sums[int(y)] += colour_histogram(img[:, mask].T, self.bins) * int(mask.sum())

    def result(self) -> Tensor:
        totals = self.sums.sum(1, keepdim=True)
        return torch.where(totals > 0, self.sums / totals.clamp(min=1e-12), torch.nan)


def posteriors(hists: Tensor, smoothing: float = SMOOTHING) -> Tensor:
    """``[K, bins]``: the posterior of each class given a colour bin (equal priors), from the
    classes' lesion histograms smoothed with ``smoothing`` of a uniform one; a class without
    lesion pixels (NaN histogram) gets 0."""
    q = (1 - smoothing) * hists + smoothing / hists.shape[-1]
    q = torch.nan_to_num(q, nan=0.0)
    return q / q.sum(0, keepdim=True).clamp(min=1e-12)


def distances(visualizations: Tensor, hists: Tensor) -> Tensor:
    """``[K pictures, K classes]``: ``1 - support`` of each class by each picture's colours
    (see the module docstring); ``inf`` for a class without lesion pixels (NaN histogram)."""
    post = posteriors(hists)
    pics = torch.stack([colour_histogram(v.reshape(3, -1).T) for v in visualizations])
    d = 1 - pics @ post.T
    return torch.where(torch.isnan(hists).any(-1)[None, :], torch.inf, d)


def colour_check(visualizations: Tensor, classes: Sequence[str], hists: Tensor) -> pd.DataFrame:
    """One row per class: the distance of its class-logit visualization (``visualizations[k]``
    is class ``k``'s, ``[K, 3, H, W]``) to its own class's lesion colours and to the nearest
    other's, the nearest class, ``passed`` (it is its own) and the distance to every class
    (``to_<class>``)."""
    if len(visualizations) != len(classes) or len(hists) != len(classes):
        raise ValueError(
            f"{len(visualizations)} visualizations, {len(hists)} histograms, {len(classes)} classes"
        )
    d = distances(visualizations, hists)
    rows = []
    for k, name in enumerate(classes):
        others = [j for j in range(len(classes)) if j != k]
        nearest = int(d[k].argmin())
        rows.append(
            {
                "class": name,
                "distance": float(d[k, k]),
                "nearest_other": float(d[k, others].min()) if others else float("nan"),
                "nearest_class": classes[nearest],
                "passed": nearest == k,
                **{f"to_{c}": float(d[k, j]) for j, c in enumerate(classes)},
            }
        )
    return pd.DataFrame(rows)


#: Up to this many classes :func:`chance_p` enumerates every relabelling (8! = 40,320).
EXACT_UP_TO = 8


def chance_p(table: pd.DataFrame, classes: Sequence[str], n_draws: int = 20_000) -> float:
    """The share of relabellings of the pictures (picture of class ``k`` read as class
    ``pi(k)``) that pass at least as many classes as ``table`` does: exact over all ``K!``
    up to :data:`EXACT_UP_TO` classes, else ``n_draws`` seeded draws. Each picture's nearest
    class stays what it is; only the labels move."""
    k = len(classes)
    nearest = torch.tensor([classes.index(c) for c in table["nearest_class"]])
    observed = int(table["passed"].sum())
    if k <= EXACT_UP_TO:
        perms = torch.tensor(list(itertools.permutations(range(k))))
    else:
        g = torch.Generator().manual_seed(0)
        perms = torch.stack([torch.randperm(k, generator=g) for _ in range(n_draws)])
    # under pi, class pi(i) owns picture i; it passes when that picture's nearest is pi(i)
    hits = (nearest[None, :] == perms).sum(1)
    return float((hits >= observed).float().mean())  # the identity is one of them: p > 0


def verdict(table: pd.DataFrame) -> bool:
    """The check passes when every class passes (two classes) or most do (more)."""
    passed = table["passed"].astype(bool)
    return bool(passed.all()) if len(table) <= 2 else bool(passed.mean() > 0.5)
