"""The per-layer verdict on planted pictures: one pictured layer's "pictures" are held-out natural
images (must come out closer than noise), another's are noise (must stay undecided)."""

from __future__ import annotations

import pandas as pd
import torch

from isic_tracking.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from isic_tracking.interpret.inputs import noise_images
from isic_tracking.interpret.sanity import path_similarity_analysis
from isic_tracking.interpret.versus_noise import CLOSER, UNDECIDED, versus_noise
from isic_tracking.models import conv_layers
from isic_tracking.stages.sanity.per_layer import (
    layer_metrics,
    layer_verdicts,
    own_layer,
    picture_vectors,
)
from isic_tracking.stages.sanity.pictures import LayerPictures
from isic_tracking.stages.sanity.plots_per_layer import plot_layer_verdicts

SIZE = 64
KW = dict(mean=IMAGENET_MEAN, std=IMAGENET_STD, image_size=SIZE)


def _targets(classes: torch.Tensor) -> pd.DataFrame:
    """The pictures' table: one row per picture, its target class."""
    return pd.DataFrame({"target": classes.numpy()})


def test_each_pictured_layer_gets_its_planted_verdict(planted_sanity):
    model, natural, nat_c, held, held_c = planted_sanity
    table = _targets(held_c)
    path = conv_layers(model)
    first, last = path[0], path[-1]
    noise = noise_images(len(table), SIZE, seed=0)
    pictures = [
        LayerPictures(first, table, held),  # natural images: closer than noise
        LayerPictures(last, table, noise_images(len(table), SIZE, seed=1)),  # noise: undecided
    ]
    vectors = picture_vectors(model, path, natural, nat_c, noise, pictures, **KW)
    t = layer_verdicts(vectors, path, n_boot=500)
    assert len(t) == 2 * len(path) and set(t["picture_layer"]) == {first, last}
    own = own_layer(t)
    assert own["layer"].tolist() == [first, last] and own["depth"].tolist() == [0, len(path) - 1]
    assert own["verdict"].tolist() == [CLOSER, UNDECIDED]
    assert own["closer_layers"].tolist()[0] == len(path) and own["path_layers"].eq(len(path)).all()
    assert (own["control"] == CLOSER).all()  # natural images are closer than noise here

    # the same numbers as the main analysis on the same pictures, noise and seeds
    res = path_similarity_analysis(model, path, natural, nat_c, held, pictures[0].target,
                                   noise=noise, **KW)  # fmt: skip
    main = versus_noise(res.vectors, res.layers, res.metric, n_boot=500)
    main = main[main["query_set"] == "visualization"].set_index("layer")
    mine = t[t["picture_layer"] == first].set_index("layer")
    pd.testing.assert_series_equal(mine["difference"], main["difference"], check_dtype=False)
    pd.testing.assert_series_equal(mine["lo"], main["lo"], check_dtype=False)

    logged = layer_metrics(own)
    assert [step for _, step in logged] == [0, len(path) - 1]
    m0, m1 = logged[0][0], logged[1][0]
    assert m0[f"layer_fv_verdict/{first}"] == 1.0 and m1[f"layer_fv_verdict/{last}"] == 0.0
    assert m0["layer_fv_minus_noise"] == m0[f"layer_fv_minus_noise/{first}"] == own["difference"][0]
    assert m1[f"layer_fv_closer_layers/{last}"] == own["closer_layers"][1]

    fig = plot_layer_verdicts(t)
    labels = [ln.get_label() for ln in fig.axes[0].get_lines()]
    assert f"pictures of {first} − noise" in labels and f"pictures of {last} − noise" in labels


def test_standardized_vectors_and_no_pictures(planted_sanity):
    model, natural, nat_c, held, held_c = planted_sanity
    table = _targets(held_c)
    path = conv_layers(model)[:2]
    noise = noise_images(len(table), SIZE, seed=0)
    pics = [LayerPictures(path[1], table, held)]
    raw = picture_vectors(model, path, natural, nat_c, noise, pics, **KW)[path[1]]
    std = picture_vectors(model, path, natural, nat_c, noise, pics, standardize=True, **KW)
    nat_std = std[path[1]]["natural"][0][path[0]]
    torch.testing.assert_close(nat_std.mean(0), torch.zeros(nat_std.shape[1]), atol=1e-4, rtol=0)
    assert not torch.equal(
        raw["visualization"][0][path[0]], std[path[1]]["visualization"][0][path[0]]
    )
    empty = layer_verdicts({}, path)
    assert empty.empty and "picture_layer" in empty.columns
