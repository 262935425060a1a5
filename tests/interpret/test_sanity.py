"""Path similarity, baselines, layer correlation, randomization and transferability."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.inputs import load_images, noise_images, sample_per_class
from isic_tracking.interpret.randomization import (
    TRAINED,
    cascade_levels,
    cascading_randomization,
    parametrized_layers,
    plot_randomization,
    plot_randomization_images,
    randomize_from,
    transferability,
)
from isic_tracking.interpret.sanity import (
    COMPARISONS,
    activation_vectors,
    layer_correlation,
    natural_baselines,
    paired_similarity,
    path_similarity,
    path_similarity_analysis,
)
from isic_tracking.interpret.versus_noise import verdict_table, versus_noise
from isic_tracking.stages.sanity.plots import plot_layer_correlation, plot_path_similarity
from isic_tracking.stages.sanity.sets import (
    channel_classes,
    class_selective_channels,
    select_top,
)
from tests.interpret.nets import Counter, no_hooks

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def tiny_net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),  # "0"
        nn.ReLU(inplace=True),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),  # "2"
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        Counter(),  # "6"
        nn.Linear(16, 2),  # "7"
    )


def images(n: int, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- activations


def test_activation_vectors_are_pooled_layer_outputs_and_stop_before_the_head():
    model = tiny_net()
    x = images(5)
    acts = activation_vectors(model, x, ["0", "2"], mean=MEAN, std=STD, batch_size=2)
    with torch.no_grad():
        z = (x - 0.5) / 0.25
        a0 = model[0](z)
        a2 = model[2](torch.relu(a0))
    torch.testing.assert_close(acts["0"], a0.mean(dim=(2, 3)))
    torch.testing.assert_close(acts["2"], a2.mean(dim=(2, 3)))  # not overwritten by inplace ReLU
    assert model[6].calls == 0  # the forward stopped at the deepest hooked layer
    assert no_hooks(model)
    mx = activation_vectors(model, x, ["2"], mean=MEAN, std=STD, pooling="max")["2"]
    torch.testing.assert_close(mx, a2.amax(dim=(2, 3)))
    flat = activation_vectors(model, x, ["2"], mean=MEAN, std=STD, pooling="flatten")["2"]
    torch.testing.assert_close(flat, a2.flatten(1))


def test_activation_vectors_resize_to_the_model_input_size():
    model = tiny_net()
    x = images(3, size=32)
    acts = activation_vectors(model, x, ["0"], mean=MEAN, std=STD, image_size=16)
    small = torch.nn.functional.interpolate(x, size=16, mode="bilinear", antialias=True)
    ref = activation_vectors(model, small, ["0"], mean=MEAN, std=STD)
    torch.testing.assert_close(acts["0"], ref["0"])


def test_activation_vectors_shared_module_and_hooks_removed_on_error():
    class Shared(nn.Module):  # one ReLU used twice, like torchvision's Bottleneck
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(self.conv(self.relu(x - 0.5)))

    model = Shared()
    acts = activation_vectors(model, images(2), ["relu", "conv"], mean=MEAN, std=STD)
    assert acts["relu"].shape == (2, 3)  # first call: on the input
    with pytest.raises(IsicInputError, match="'nope' does not exist"):
        activation_vectors(model, images(2), ["nope"], mean=MEAN, std=STD)
    with pytest.raises(IsicInputError, match="pooling"):
        activation_vectors(model, images(2), ["conv"], mean=MEAN, std=STD, pooling="median")
    bad = tiny_net()
    with pytest.raises(RuntimeError):  # wrong channel count: the forward raises
        activation_vectors(bad, torch.rand(2, 4, 8, 8), ["2"], mean=(0,) * 4, std=(1,) * 4)
    assert no_hooks(bad)


# --------------------------------------------------------------------------- path similarity


def test_path_similarity_identical_is_one_and_uses_only_the_target_class():
    g = torch.Generator().manual_seed(0)
    u = torch.randn(1, 50, generator=g)
    same = u.repeat(4, 1)  # class 0: four copies of u
    other = torch.randn(4, 50, generator=g)  # class 1: unrelated
    natural = {"a": torch.cat([same, other]), "b": torch.cat([same, other]) ** 3}
    labels = torch.tensor([0] * 4 + [1] * 4)
    query = {"a": u, "b": u**3}
    s = path_similarity(query, natural, torch.tensor([0]), labels)
    torch.testing.assert_close(s, torch.ones(2, 1))
    s1 = path_similarity(query, natural, torch.tensor([1]), labels)  # vs the unrelated class
    assert s1.abs().max() < 0.5


def test_natural_baselines_exclude_self_pairs():
    g = torch.Generator().manual_seed(0)
    u = torch.randn(1, 300, generator=g)
    acts = {"a": torch.cat([u, u, u, torch.randn(3, 300, generator=g), torch.randn(1, 300)])}
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2])
    base = natural_baselines(acts, labels)
    same, other = base["natural_same_class"][0], base["natural_other_classes"][0]
    torch.testing.assert_close(same[:3], torch.ones(3))  # identical class mates
    assert same[3:6].abs().max() < 0.3  # independent class mates
    assert torch.isnan(same[6])  # alone in its class: nothing to compare with
    assert other.abs().max() < 0.3


def test_paired_similarity_and_layer_correlation():
    g = torch.Generator().manual_seed(0)
    a = {"x": torch.randn(30, 40, generator=g), "y": torch.randn(30, 20, generator=g)}
    b = {"x": a["x"] * 2 + 1, "y": torch.randn(30, 20, generator=g)}
    p = paired_similarity(a, b)
    torch.testing.assert_close(p[0], torch.ones(30))
    assert p[1].abs().mean() < 0.3
    # layer z is a monotone transform of x: it relates the 30 items identically
    acts = {"x": a["x"], "z": torch.exp(a["x"]), "y": a["y"]}
    corr = layer_correlation(acts, metric="spearman")
    assert corr.shape == (3, 3)
    torch.testing.assert_close(corr.diagonal(), torch.ones(3))
    torch.testing.assert_close(corr[0, 1], torch.tensor(1.0))
    assert abs(corr[0, 2]) < 0.2  # independent layers
    torch.testing.assert_close(corr, corr.T)
    with pytest.raises(IsicInputError, match="at least 3"):
        layer_correlation({"x": a["x"][:2]})


def test_class_selective_channels_find_a_planted_channel():
    g = torch.Generator().manual_seed(0)
    acts = torch.randn(40, 10, generator=g)
    labels = torch.arange(40) % 2
    acts[labels == 1, 7] += 5.0  # channel 7 fires for class 1
    acts[labels == 0, 3] += 5.0  # channel 3 for class 0
    top = class_selective_channels(acts, labels, k=1, n_classes=2)
    assert top[:, 0].tolist() == [3, 7]
    assert channel_classes(acts, labels, torch.tensor([7, 3]), 2).tolist() == [1, 0]


def test_analysis_reports_every_comparison_and_plots():
    model = tiny_net()
    nat = images(8, seed=1)
    labels = torch.tensor([0, 1] * 4)
    vis = nat[:4].clone()  # "visualizations" that are natural images of their class
    res = path_similarity_analysis(
        model,
        ["0", "2"],
        nat,
        labels,
        vis,
        labels[:4],
        mean=MEAN,
        std=STD,
        unregularized=vis.flip(-1),
        noise=noise_images(3, 16),
        extra={"class_logit": (nat[:2], labels[:2])},
    )
    assert list(res.summary["comparison"].unique()) == [*COMPARISONS, "class_logit"]
    assert set(res.scores.columns) >= {"comparison", "layer", "depth", "item", "similarity"}
    assert res.layer_corr.shape == (2, 2)
    vis_rows = res.scores[res.scores["comparison"] == "visualization"]
    assert len(vis_rows) == 2 * 4 and vis_rows["similarity"].notna().all()
    # row i of vis is one of the natural images it is compared with
    assert (vis_rows["similarity"] > res.summary.query("comparison == 'noise'")["mean"].min()).all()
    fig = plot_path_similarity(res.summary)
    assert isinstance(fig, Figure) and len(fig.axes[0].lines) >= len(COMPARISONS)
    # the compared vectors are kept for the verdict against noise, which adds a panel
    assert set(res.vectors) == {"natural", "visualization", "noise", "class_logit"}
    assert res.vectors["noise"][0]["2"].shape == (3, 16)
    vt = verdict_table(versus_noise(res.vectors, res.layers, n_boot=50))
    fig = plot_path_similarity(res.summary, versus_noise=vt)
    low = fig.axes[1]
    assert len(fig.axes) == 2 and low.collections  # the interval band
    legend = [t.get_text() for t in low.get_legend().get_texts()]
    assert "95% bootstrap interval" in legend and "visualization − noise" in legend
    assert isinstance(plot_layer_correlation(res.layer_corr, res.layers), Figure)
    with pytest.raises(IsicInputError, match="twins"):
        path_similarity_analysis(
            model, ["0"], nat, labels, vis, labels[:4], mean=MEAN, std=STD, unregularized=vis[:2]
        )


def test_standardize_removes_the_common_channel_offset():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 32, 1), nn.Flatten())
    with torch.no_grad():
        model[0].bias.copy_(10 * torch.arange(32.0))  # every input ranks channels alike
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(12) % 2
    tint = torch.tensor([[0.6, 0.0, 0.0], [0.0, 0.0, 0.6]])[labels][:, :, None, None]
    nat = 0.4 * torch.rand(12, 3, 8, 8, generator=g) + tint  # class 0 red, class 1 blue
    common = dict(mean=MEAN, std=STD, noise=noise_images(4, 8, seed=5))
    raw = path_similarity_analysis(model, ["0"], nat, labels, nat[:4], labels[:4], **common)
    z = path_similarity_analysis(
        model, ["0"], nat, labels, nat[:4], labels[:4], standardize=True, **common
    )
    mean = lambda r, c: r.summary.set_index("comparison").loc[c, "mean"]  # noqa: E731
    assert mean(raw, "noise") > 0.95  # the offset alone makes everything look alike
    assert mean(z, "noise") < mean(z, "visualization") - 0.2


def test_sample_per_class_says_how_many_are_there_and_needed(tmp_path):
    df = pd.DataFrame({"label_name": ["benign"] * 5 + ["malignant"] * 2, "x": range(7)})
    got = sample_per_class(df, 2, ["benign", "malignant"], seed=3)
    assert got["label_name"].tolist() == ["benign"] * 2 + ["malignant"] * 2
    assert got.equals(sample_per_class(df, 2, ["benign", "malignant"], seed=3))
    with pytest.raises(IsicInputError) as err:
        sample_per_class(df, 3, ["benign", "malignant"], where="split 'test' of m.csv")
    msg = str(err.value)
    assert "class 'malignant' has 2" in msg and "3 needed" in msg and "split 'test'" in msg


def test_load_images_and_select_top(tmp_path):
    from PIL import Image

    Image.new("RGB", (20, 10), (255, 0, 0)).save(tmp_path / "a.png")
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    df = pd.DataFrame({"image_id": ["a", "bad"], "path": [str(tmp_path / "a.png"), ""], "label": 0})
    df.loc[1, "path"] = str(tmp_path / "bad.jpg")
    x = load_images(df.iloc[:1], 8)
    assert x.shape == (1, 3, 8, 8) and x[0, 0].min() == 1.0 and x[0, 1].max() == 0.0
    with pytest.raises(IsicInputError, match="bad.jpg"):
        load_images(df, 8)
    t = pd.DataFrame({"target": [0, 0, 0, 1, 1], "activation_reached": [1, 3, 2, 5, 4]})
    assert select_top(t, k=2)["activation_reached"].tolist() == [3, 2, 5, 4]


# --------------------------------------------------------------------------- randomization


def test_randomize_from_cascades_from_the_head_only():
    model = tiny_net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    rand = randomize_from(model, "2", seed=1)
    assert torch.equal(torch.get_rng_state(), rng)  # global RNG untouched
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # copy
    after = rand.state_dict()
    assert torch.equal(after["0.weight"], before["0.weight"])  # below the cut: kept
    assert not torch.equal(after["2.weight"], before["2.weight"])
    assert not torch.equal(after["7.weight"], before["7.weight"])
    assert parametrized_layers(model) == ["0", "2", "7"]
    assert cascade_levels(model, 3) == ["7", "2", "0"]
    with pytest.raises(IsicInputError, match="parametrized layers: 0, 2, 7"):
        randomize_from(model, "9")


def planted_net(size: int = 12) -> nn.Sequential:
    """Class 0's logit is a fixed spatial template: its visualization is one known picture."""
    net = nn.Sequential(
        nn.Conv2d(3, 3, 1),  # "0"
        nn.ReLU(),
        nn.Conv2d(3, 3, 1),  # "2"
        nn.Flatten(),
        nn.Linear(3 * size * size, 2),  # "4"
    )
    half = torch.ones(size, size)
    half[:, size // 2 :] = -1  # left +, right -
    template = torch.stack([half, -half, half.T])  # red left, green right, blue top
    with torch.no_grad():
        for conv in (net[0], net[2]):
            conv.weight.copy_(torch.eye(3)[:, :, None, None])
        net[0].bias.fill_(3.0)  # inputs lie in [-2, 2]: the ReLU never cuts the gradient
        net[2].bias.zero_()
        net[4].weight.zero_()
        net[4].bias.zero_()
        net[4].weight[0] = template.flatten()
    return net


def ascent(model: nn.Module, seed: int, size: int = 12, steps: int = 40) -> torch.Tensor:
    """A minimal class-logit visualization (pixel parameterization, Adam) for two objectives."""
    g = torch.Generator().manual_seed(seed)
    param = (0.5 * torch.randn(2, 3, size, size, generator=g)).requires_grad_()
    opt = torch.optim.Adam([param], lr=0.1)
    for _ in range(steps):
        img = torch.sigmoid(param)
        logits = model((img - 0.5) / 0.25)
        loss = -logits[torch.arange(2), torch.tensor([0, 0])].sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return torch.sigmoid(param).detach()


def test_randomized_model_visualizations_are_reported_as_different():
    model = planted_net()
    res = cascading_randomization(model, ascent, levels=["4", "0"], seed=0)
    per_level = res.table.groupby("level")[["spearman", "ssim"]].mean()
    same = per_level.loc[TRAINED]  # trained model, another seed: the same template picture
    assert same["spearman"] > 0.6
    for level in ("4", "0"):
        assert per_level.loc[level, "spearman"] < same["spearman"] - 0.3
        assert per_level.loc[level, "ssim"] < same["ssim"]
    assert res.table.groupby("level")["randomized_layers"].first().to_dict() == {
        TRAINED: 0,
        "4": 1,
        "0": 3,
    }
    assert list(res.images) == ["trained", TRAINED, "4", "0"]
    assert isinstance(plot_randomization(res.table), Figure)
    assert isinstance(plot_randomization_images(res.images, ["a", "b"]), Figure)


def test_transferability_counts_visualizations_assigned_to_their_class():
    class Always(nn.Module):
        def __init__(self, logit: float):
            super().__init__()
            self.bias = nn.Parameter(torch.tensor([[logit]]))

        def forward(self, x):
            return self.bias.expand(x.shape[0], 1)

    target = torch.tensor([1, 1, 0, 1])
    t = transferability(Always(3.0), images(4), target, mean=MEAN, std=STD, image_size=8)
    assert t["transferred"].tolist() == [True, True, False, True]
    np.testing.assert_allclose(t["prob_target"][0], 1 / (1 + np.exp(-3.0)), rtol=1e-6)
    with pytest.raises(IsicInputError, match="class 5 does not exist"):
        transferability(Always(1.0), images(1), torch.tensor([5]), mean=MEAN, std=STD)
