"""The sanity verdict per layer: are the visualizations closer to the natural images of their
class than random noise is?

A path-similarity value alone means little (raw activation vectors of any input correlate
strongly in deep layers); the question is whether a visualization beats the input that
carries no class evidence. Per layer this module reports ``similarity(set, natural of its
class) - similarity(noise, natural of its class)`` with a paired bootstrap interval over
images (:mod:`.bootstrap`) and a verdict: **closer** (interval above 0), **not closer**
(below 0) or **undecided** (it contains 0, or is undefined).

The same difference for the natural images themselves (each against the *other* natural
images of its class) is the control: where natural images are not closer than noise, the
metric cannot tell class evidence from noise at that layer, and no verdict on the
visualizations there means anything.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from torch import Tensor

from isic_tracking.interpret.bootstrap import QuerySet, difference_interval
from isic_tracking.interpret.similarity import similarity

CLOSER, NOT_CLOSER, UNDECIDED = "closer", "not closer", "undecided"

#: query sets compared with noise, and the metric prefix of each (``<prefix>/<layer>``)
DIFFERENCE_PREFIX = {
    "visualization": "fv_minus_noise",
    "class_logit": "class_logit_minus_noise",
    "natural_same_class": "natural_minus_noise",
}
NATURAL, NOISE = "natural", "noise"


def verdict(lo: float, hi: float) -> str:
    """``closer`` when the interval lies above 0, ``not closer`` below, else ``undecided``."""
    if np.isnan(lo) or np.isnan(hi):
        return UNDECIDED
    return CLOSER if lo > 0 else NOT_CLOSER if hi < 0 else UNDECIDED


def versus_noise(
    vectors: Mapping[str, tuple[Mapping[str, Tensor], Tensor]],
    layers: list[str],
    metric: str = "spearman",
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Per query set and layer: difference to noise, its interval and the verdict.

    Args:
        vectors: ``{set: ({layer: [Q, D]}, classes [Q])}`` with ``natural`` and ``noise``
            (e.g. :attr:`.sanity.PathSimilarityResult.vectors`); every other set of
            :data:`DIFFERENCE_PREFIX` present is compared, and the natural images always.
        layers: shallow to deep.
        metric: the similarity metric of the analysis.
        n_boot, level, seed: bootstrap replicates, interval level, resampling seed.

    Returns:
        Rows ``query_set, layer, depth, n, difference, lo, hi, level, verdict`` (``n``: the
        set's queries; with one query of a class, that class's queries are not resampled and
        the interval only holds the natural images' share of the uncertainty); the natural
        control's rows have ``query_set = natural_same_class``. Empty without noise.
    """
    if NOISE not in vectors:
        return pd.DataFrame(
            columns=[
                "query_set",
                "layer",
                "depth",
                "n",
                "difference",
                "lo",
                "hi",
                "level",
                "verdict",
            ]
        )
    nat, nat_c = vectors[NATURAL]
    noise, noise_c = vectors[NOISE]
    rows = []
    for name in DIFFERENCE_PREFIX:
        if name != "natural_same_class" and name not in vectors:
            continue
        acts, cls = vectors.get(name, (nat, nat_c))
        for depth, layer in enumerate(layers):
            ref = nat[layer]
            a = QuerySet(similarity(acts[layer], ref, metric), cls, name == "natural_same_class")
            b = QuerySet(similarity(noise[layer], ref, metric), noise_c)
            d = difference_interval(a, b, nat_c, n_boot=n_boot, level=level, seed=seed + depth)
            rows.append(
                dict(query_set=name, layer=layer, depth=depth, n=len(cls), difference=d.estimate)
                | dict(lo=d.lo, hi=d.hi, level=level, verdict=verdict(d.lo, d.hi))
            )
    return pd.DataFrame(rows)


def verdict_metrics(table: pd.DataFrame) -> dict[str, float]:
    """``<prefix>/<layer>``, ``<prefix>_lo/<layer>``, ``<prefix>_hi/<layer>`` per row, and the
    number of layers where the visualizations are closer (``fv_closer_layers``)."""
    out: dict[str, float] = {}
    for r in table.itertuples():
        p = DIFFERENCE_PREFIX[r.query_set]
        out |= {f"{p}/{r.layer}": r.difference, f"{p}_lo/{r.layer}": r.lo}
        out[f"{p}_hi/{r.layer}"] = r.hi
    fv = table[table["query_set"] == "visualization"]
    if len(fv):
        out["fv_closer_layers"] = float((fv["verdict"] == CLOSER).sum())
    return out


def verdict_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per layer: the visualizations' difference, interval and verdict, next to the
    natural control's verdict (``control``): the artifact ``tables/versus_noise.csv``."""
    fv = table[table["query_set"] == "visualization"].set_index("layer")
    ctrl = table[table["query_set"] == "natural_same_class"].set_index("layer")
    out = fv[["depth", "n", "difference", "lo", "hi", "level", "verdict"]].copy()
    out["natural_minus_noise"] = ctrl["difference"]
    out["control"] = ctrl["verdict"]
    return out.reset_index()


def summary(table: pd.DataFrame) -> tuple[str, str]:
    """(short verdict for a tag, one plain sentence) on the visualizations over all layers."""
    vt = verdict_table(table)
    if vt.empty:
        return "", ""
    closer = vt.loc[vt["verdict"] == CLOSER, "layer"].tolist()
    short = (
        "closer than noise at every layer"
        if len(closer) == len(vt)
        else "closer than noise at some layers"
        if closer
        else "not closer than noise at any layer"
    )
    parts = [f"{v}: {', '.join(p['layer'])}" for v, p in vt.groupby("verdict", sort=False)]
    blind = vt.loc[vt["control"] != CLOSER, "layer"].tolist()
    pct = f"{vt['level'].iloc[0]:.0%}"
    text = (
        f"visualizations are {short} ({pct} bootstrap interval of fv - noise; {'; '.join(parts)})"
    )
    if blind:
        text += (
            f"; at {', '.join(blind)} natural images are not closer than noise either: "
            "the metric cannot separate class evidence from noise there"
        )
    return short, text


def markdown(vt: pd.DataFrame) -> str:
    """:func:`verdict_table` as a markdown table (the run's description)."""
    lines = [
        "| layer | fv − noise | interval | verdict | natural − noise |",
        "|---|---:|---|---|---:|",
    ]
    for r in vt.itertuples():
        lines.append(
            f"| {r.layer} | {r.difference:+.3f} | [{r.lo:+.3f}, {r.hi:+.3f}] | {r.verdict} "
            f"| {r.natural_minus_noise:+.3f} ({r.control}) |"
        )
    return "\n".join(lines)


def one_level(metrics: Mapping[str, float]) -> dict[str, float]:
    """Metric keys with at most one ``/`` (``<name>/<layer>``): a deeper ``/`` (a layer or
    level name holding one) becomes ``.``, so every sanity metric sits one level deep."""
    out = {}
    for key, value in metrics.items():
        head, sep, rest = key.partition("/")
        out[head + sep + rest.replace("/", ".")] = value
    return out
