"""Dead and constant filters: the filters no ranking may pick.

The rankings of the ``filters`` stage read each filter's per-image max activation ``a[i]``
(``LayerStats.max`` of the filter's *response*, see :mod:`.response`). Two kinds of filter
carry no information there, yet used to win ties or quantile counts by accident:

- **dead**: ``max_i a[i] <= dead_tol * s`` -- never (meaningfully) positive on any analysed
  image, so the ReLU after it outputs zero everywhere; its visualization is a grey square;
- **constant**: not dead and ``std_i a[i] <= constant_tol * s`` -- the same value on every
  image, so no image excites it more than another and its "specificity" is tie-breaking noise.

``s = max |a|`` over the whole layer (every image and filter): the tolerances are relative to
the layer's scale, so they absorb float32 round-off (default ``1e-6``) whatever the units (a
random-init network's deep layers peak at 1e-8 and are still ranked). A dead filter is
reported as dead even when it is also constant (a zero channel). Every other is **live**.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from torch import Tensor

from isic_tracking.errors import IsicInputError

LIVE, DEAD, CONSTANT = "live", "dead", "constant"
#: Default tolerances (float32 round-off of a zero or constant response).
DEAD_TOL = 1e-6
CONSTANT_TOL = 1e-6
LIVENESS_COLUMNS = ["filter", "status", "max", "std"]


def max_matrix(max_acts: Tensor | np.ndarray) -> np.ndarray:
    a = max_acts.detach().cpu().numpy() if isinstance(max_acts, Tensor) else np.asarray(max_acts)
    if a.ndim != 2 or a.shape[0] == 0:
        raise IsicInputError(f"max activations must be [images, filters], got shape {a.shape}")
    return a.astype(np.float64, copy=False)


def filter_liveness(
    max_acts: Tensor | np.ndarray,
    *,
    dead_tol: float = DEAD_TOL,
    constant_tol: float = CONSTANT_TOL,
) -> pd.DataFrame:
    """Status of every filter of one layer over the analysed images.

    Args:
        max_acts: ``[N, C]`` per-image max activation of each filter's response.
        dead_tol: a filter whose max over the images is at most ``dead_tol * s`` is dead
            (``s``: the largest ``|a|`` of the layer).
        constant_tol: a live filter whose std over the images is at most
            ``constant_tol * s`` is constant.

    Returns:
        DataFrame ``filter, status, max, std`` (one row per filter, status ``live``,
        ``dead`` or ``constant``; ``max``/``std`` over the images).
    """
    a = max_matrix(max_acts)
    peak, sd, scale = a.max(axis=0), a.std(axis=0), float(np.abs(a).max())
    status = np.full(a.shape[1], LIVE, dtype=object)
    status[sd <= constant_tol * scale] = CONSTANT
    status[peak <= dead_tol * scale] = DEAD
    return pd.DataFrame(
        {"filter": np.arange(a.shape[1]), "status": status, "max": peak, "std": sd},
        columns=LIVENESS_COLUMNS,
    )


def live_mask(max_acts: Tensor | np.ndarray) -> np.ndarray:
    """``[C]`` boolean: which filters are live (default tolerances of :func:`filter_liveness`)."""
    return (filter_liveness(max_acts)["status"] == LIVE).to_numpy()


def most_activated_table(max_acts: Tensor | np.ndarray, top_n: int) -> pd.DataFrame:
    """The thesis's Table 10 for one layer: the ``top_n`` live filters with the highest mean
    (over images) of their max activation; ``rank, filter, mean_max, max``. What
    ``channels=top_n`` of ``visualize`` renders, so the table and the pictures agree."""
    a = max_matrix(max_acts)
    mean, live = a.mean(axis=0), live_mask(a)
    order = [int(c) for c in np.argsort(-mean, kind="stable") if live[c]][:top_n]
    return pd.DataFrame(
        {
            "rank": np.arange(1, len(order) + 1),
            "filter": order,
            "mean_max": mean[order],
            "max": a.max(axis=0)[order],
        }
    )


def inactive_filters(liveness: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The dead and constant filters of every layer: ``layer, filter, status, max, std``."""
    parts = [t[t["status"] != LIVE].assign(layer=layer) for layer, t in liveness.items()]
    cols = ["layer", *LIVENESS_COLUMNS]
    parts = [p[cols] for p in parts if not p.empty]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)


def liveness_counts(liveness: dict[str, pd.DataFrame]) -> dict[str, dict[str, int]]:
    """``{layer: {"live": n, "dead": n, "constant": n}}``."""
    return {
        layer: {s: int((t["status"] == s).sum()) for s in (LIVE, DEAD, CONSTANT)}
        for layer, t in liveness.items()
    }
