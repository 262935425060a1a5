"""The sanity verdict against noise, tested on planted inputs with a real model and real
(bundled synthetic) images: natural images put in place of visualizations must score as
natural, noise put in their place must score as noise."""

from __future__ import annotations

import pandas as pd
import torch

from isic_tracking.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from isic_tracking.interpret.inputs import noise_images
from isic_tracking.interpret.sanity import path_similarity_analysis
from isic_tracking.interpret.versus_noise import (
    CLOSER,
    NOT_CLOSER,
    UNDECIDED,
    markdown,
    one_level,
    summary,
    verdict,
    verdict_metrics,
    verdict_table,
    versus_noise,
)
from isic_tracking.models import conv_layers

SIZE = 64


def _verdicts(model, natural, nat_c, queries, query_c) -> pd.DataFrame:
    res = path_similarity_analysis(
        model, conv_layers(model), natural, nat_c, queries, query_c,
        mean=IMAGENET_MEAN, std=IMAGENET_STD, image_size=SIZE,
        noise=noise_images(len(query_c), SIZE, seed=0),
    )  # fmt: skip
    table = versus_noise(res.vectors, res.layers, res.metric, n_boot=1000)
    means = res.summary.set_index(["comparison", "layer"])["mean"]
    return table.assign(
        natural=[means["natural_same_class", ly] for ly in table["layer"]],
        visualization=[means["visualization", ly] for ly in table["layer"]],
        noise=[means["noise", ly] for ly in table["layer"]],
    )


def test_natural_images_in_place_of_visualizations_score_as_natural(planted_sanity):
    model, natural, nat_c, held, held_c = planted_sanity
    t = _verdicts(model, natural, nat_c, held, held_c)
    fv = t[t["query_set"] == "visualization"].set_index("layer")
    ctrl = t[t["query_set"] == "natural_same_class"].set_index("layer")
    assert list(fv.index) == conv_layers(model)
    assert (fv["n"] == len(held_c)).all() and (ctrl["n"] == len(nat_c)).all()
    assert (fv["verdict"] == CLOSER).all() and (fv["lo"] > 0).all()
    # as close to their class as the natural images are to each other: the planted set's
    # difference lies in the natural control's interval, at every layer
    assert ((ctrl["lo"] <= fv["difference"]) & (fv["difference"] <= ctrl["hi"])).all()
    gap = (fv["natural"] - fv["noise"]).abs()
    assert ((fv["visualization"] - fv["natural"]).abs() < 0.1 * gap).all()
    # the point estimate is the difference of the curves on the plot
    torch.testing.assert_close(
        torch.tensor(fv["difference"].to_numpy()),
        torch.tensor((fv["visualization"] - fv["noise"]).to_numpy()),
    )
    short, text = summary(t)
    assert short == "closer than noise at every layer" and "closer: features.0" in text


def test_noise_in_place_of_visualizations_scores_as_noise(planted_sanity):
    model, natural, nat_c, _, held_c = planted_sanity
    other_noise = noise_images(len(held_c), SIZE, seed=1)  # not the baseline's own images
    t = _verdicts(model, natural, nat_c, other_noise, held_c)
    fv = t[t["query_set"] == "visualization"]
    assert ((fv["lo"] <= 0) & (0 <= fv["hi"])).all(), fv
    assert (fv["verdict"] == UNDECIDED).all()
    # the control still works on this model: natural images are closer than noise
    assert (t.loc[t["query_set"] == "natural_same_class", "verdict"] == CLOSER).all()
    short, text = summary(t)
    assert short == "not closer than noise at any layer"
    assert text.startswith("visualizations are not closer than noise at any layer (95% ")


def test_verdict_thresholds_metrics_and_the_blind_layer_warning():
    assert verdict(0.01, 0.2) == CLOSER
    assert verdict(-0.3, -0.01) == NOT_CLOSER
    assert verdict(-0.1, 0.1) == UNDECIDED
    assert verdict(float("nan"), float("nan")) == UNDECIDED
    rows = [
        ("visualization", "a", -0.2, -0.3, -0.1, NOT_CLOSER),
        ("visualization", "b.1", 0.2, 0.1, 0.3, CLOSER),
        ("natural_same_class", "a", 0.0, -0.1, 0.1, UNDECIDED),
        ("natural_same_class", "b.1", 0.4, 0.3, 0.5, CLOSER),
    ]
    t = pd.DataFrame(rows, columns=["query_set", "layer", "difference", "lo", "hi", "verdict"])
    t["depth"], t["n"], t["level"] = [0, 1, 0, 1], 5, 0.95
    m = verdict_metrics(t)
    assert m["fv_minus_noise/a"] == -0.2 and m["fv_minus_noise_hi/b.1"] == 0.3
    assert m["natural_minus_noise_lo/a"] == -0.1 and m["fv_closer_layers"] == 1
    assert all(k.count("/") <= 1 for k in m)
    vt = verdict_table(t)
    assert vt[["layer", "verdict", "control"]].values.tolist() == [
        ["a", NOT_CLOSER, UNDECIDED],
        ["b.1", CLOSER, CLOSER],
    ]
    short, text = summary(t)
    assert short == "closer than noise at some layers"
    assert "not closer: a" in text and "at a natural images are not closer than noise" in text


def test_one_level_keys_and_the_markdown_table():
    keys = one_level({"similarity/features.0": 1.0, "randomization_ssim/a/b": 2.0, "flat": 3.0})
    assert keys == {"similarity/features.0": 1.0, "randomization_ssim/a.b": 2.0, "flat": 3.0}
    vt = pd.DataFrame([dict(layer="f.0", difference=0.1, lo=0.05, hi=0.2, verdict=CLOSER)]).assign(
        natural_minus_noise=0.3, control=CLOSER
    )
    md = markdown(vt).splitlines()
    assert md[0].startswith("| layer | fv − noise | interval | verdict |")
    assert md[2] == "| f.0 | +0.100 | [+0.050, +0.200] | closer | +0.300 (closer) |"
