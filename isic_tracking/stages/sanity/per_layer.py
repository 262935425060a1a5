"""The sanity verdict for the pictures of every pictured layer, not only the deepest.

The stage's main analysis compares the deepest pictured layer's top channels with the natural
images along the whole path. The thesis (Figs. 33-35) did so for the top filters of each layer
it pictured (first and last): are a shallow filter's pictures closer to the natural images of
their class than noise is, and where along the path? Per pictured layer ``P`` this module
computes, at every path layer, ``similarity(P's pictures, natural) - similarity(noise,
natural)`` with its bootstrap interval and verdict (:mod:`isic_tracking.interpret.versus_noise`,
the same code and seeds as the main verdict), and singles out the verdict at ``P`` itself, the
layer the pictures were optimized for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
from torch import Tensor, nn

from isic_tracking.interpret import sanity as S
from isic_tracking.interpret.versus_noise import CLOSER, NOT_CLOSER, versus_noise
from isic_tracking.stages.sanity.pictures import LayerPictures

Vectors = dict[str, tuple[dict[str, Tensor], Tensor]]

#: metric names of the own-layer verdict, logged as ``<name>/<layer>`` and ``<name>`` with the
#: layer's depth as step
METRICS = ("layer_fv_minus_noise", "layer_fv_minus_noise_lo", "layer_fv_minus_noise_hi")
VERDICT_CODE = {CLOSER: 1.0, NOT_CLOSER: -1.0}  # undecided: 0


def picture_vectors(
    model: nn.Module,
    path: Sequence[str],
    natural: Tensor,
    natural_class: Tensor,
    noise: Tensor,
    pictures: Sequence[LayerPictures],
    *,
    pooling: str = "mean",
    standardize: bool = False,
    **forward_kw,
) -> dict[str, Vectors]:
    """Per pictured layer, the activation vectors :func:`versus_noise` compares: ``{layer:
    {"natural": ..., "noise": ..., "visualization": (vectors, classes)}}`` over ``path``.

    Natural and noise images pass once; the noise images take the classes of each layer's
    pictures cycled over (as :func:`.sanity.path_similarity_analysis` does). ``standardize``:
    every unit z-scored over the natural images, as the main analysis does when asked.
    """
    kw = dict(layers=list(path), pooling=pooling, **forward_kw)
    nat = S.activation_vectors(model, natural, **kw)
    ref = {k: (v.mean(0), v.std(0).clamp_min(1e-8)) for k, v in nat.items()}

    def scaled(acts: dict[str, Tensor]) -> dict[str, Tensor]:
        return {k: (v - ref[k][0]) / ref[k][1] for k, v in acts.items()} if standardize else acts

    dev = next(iter(nat.values())).device
    nat_c = natural_class.to(dev).long()
    noise_acts = scaled(S.activation_vectors(model, noise, **kw))
    out = {}
    for p in pictures:
        target = p.target.to(dev)
        noise_c = target.repeat(len(noise) // len(target) + 1)[: len(noise)]
        out[p.layer] = {
            "natural": (scaled(nat), nat_c),
            "noise": (noise_acts, noise_c),
            "visualization": (scaled(S.activation_vectors(model, p.images, **kw)), target),
        }
    return out


def layer_verdicts(
    vectors: Mapping[str, Vectors],
    path: Sequence[str],
    metric: str = "spearman",
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Every pictured layer's pictures against noise at every path layer.

    Returns:
        rows ``picture_layer, picture_depth, layer, depth, n, difference, lo, hi, level,
        verdict, natural_minus_noise, control`` (``control``: the natural images' own verdict
        at that layer; where it is not ``closer`` the metric cannot tell class evidence from
        noise there); ``picture_depth`` is the pictured layer's position in ``path``.
    """
    path = list(path)
    frames = []
    for layer, vec in vectors.items():
        t = versus_noise(vec, path, metric, n_boot=n_boot, level=level, seed=seed)
        fv = t[t["query_set"] == "visualization"].drop(columns="query_set")
        ctrl = t[t["query_set"] == "natural_same_class"].set_index("layer")
        fv = fv.assign(
            natural_minus_noise=fv["layer"].map(ctrl["difference"]),
            control=fv["layer"].map(ctrl["verdict"]),
        )
        frames.append(fv.assign(picture_layer=layer, picture_depth=path.index(layer)))
    cols = ["picture_layer", "picture_depth", "layer", "depth", "n", "difference", "lo", "hi"]
    cols += ["level", "verdict", "natural_minus_noise", "control"]
    if not frames:
        return pd.DataFrame(columns=cols)
    return pd.concat(frames, ignore_index=True)[cols]


def own_layer(table: pd.DataFrame) -> pd.DataFrame:
    """One row per pictured layer: its verdict at its own layer, and at how many path layers its
    pictures are closer than noise (``closer_layers`` of ``path_layers``)."""
    own = table[table["layer"] == table["picture_layer"]].copy()
    counts = table.groupby("picture_layer")["verdict"].agg(
        closer_layers=lambda v: int((v == CLOSER).sum()), path_layers="size"
    )
    own = own.join(counts, on="picture_layer").drop(columns=["picture_layer", "picture_depth"])
    return own.sort_values("depth").reset_index(drop=True)


def layer_metrics(own: pd.DataFrame) -> list[tuple[dict[str, float], int]]:
    """Per pictured layer (metrics, step = its depth): ``layer_fv_minus_noise`` (and ``_lo``,
    ``_hi``), ``layer_fv_verdict`` (1 closer, 0 undecided, -1 not closer) and
    ``layer_fv_closer_layers``, each as ``<name>/<layer>`` and as ``<name>`` (one curve over
    depth in the UI, as the layers stage logs its measures)."""
    out = []
    for r in own.itertuples():
        values = dict(zip(METRICS, (r.difference, r.lo, r.hi)))
        values["layer_fv_verdict"] = VERDICT_CODE.get(r.verdict, 0.0)
        values["layer_fv_closer_layers"] = float(r.closer_layers)
        named = {f"{k}/{r.layer.replace('/', '.')}": v for k, v in values.items()}
        out.append((named | values, int(r.depth)))
    return out
