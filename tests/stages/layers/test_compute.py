"""The ``layers`` computation on planted truth: layers frozen during a real fine-tuning are
identical to the base in every measure, a model against itself too, a single re-initialized
layer alone stands out, and the fine-tuned model's classes are decodable where its random
init's are not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from isic_tracking.config import TrainConfig
from isic_tracking.data.dataset import make_loader
from isic_tracking.data.splits import fold_split
from isic_tracking.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms
from isic_tracking.models import conv_layers, create_model
from isic_tracking.models.init import initial_model
from isic_tracking.stages.layers.compute import LayersPlan, compare_layers, monitor_value
from isic_tracking.train.data import load_training_data
from isic_tracking.train.fold import build_model, checkpoint_config, train_fold

pytestmark = pytest.mark.usefixtures("one_torch_thread")
LAYERS = ("features.0", "features.4", "features.8", "features.12")


def _plan(**kw) -> LayersPlan:
    args = dict(layers=LAYERS, task="binary", monitor="roc_auc", mean=IMAGENET_MEAN,
                std=IMAGENET_STD, n_boot=50, fv_steps=0, fv_size=32)  # fmt: skip
    return LayersPlan(**{**args, **kw})


def _fine_tune(manifest: Path, tmp: Path, size: int = 32, **kw):
    cfg = TrainConfig(manifest=str(manifest), arch="smallcnn", image_size=size, batch_size=16,
                      lr=3e-3, augment="none", folds=2, device="cpu", **kw)  # fmt: skip
    train, _, _ = load_training_data(cfg)
    tr, va = fold_split(train, 0)
    result = train_fold(cfg, tr, va, 0, tmp / "state.pt")
    model = build_model(cfg, torch.device("cpu"))
    model.load_state_dict(result.best_state)
    base = initial_model(checkpoint_config(cfg, model, IMAGENET_MEAN, IMAGENET_STD))
    loader = make_loader(va, build_transforms(size, train=False, mean=None), 32)
    return model.eval(), base, lambda: ((x, y) for x, y, *_ in loader)


def test_layers_frozen_in_fine_tuning_equal_the_base_and_the_others_do_not(
    binary_manifest, tmp_path
):
    model, base, batches = _fine_tune(binary_manifest, tmp_path, epochs=2,
                                      freeze="upto:features.4")  # fmt: skip
    rows = {r.layer: r for r in compare_layers(model, base, batches, _plan()).rows}
    for layer in ("features.0", "features.4"):
        assert rows[layer].cka == pytest.approx(1.0, abs=1e-6)
        assert rows[layer].weight_change == 0.0 and rows[layer].reset_drop == 0.0
        assert rows[layer].reset_drop_low == rows[layer].reset_drop_high == 0.0
    for layer in ("features.8", "features.12"):
        assert rows[layer].weight_change > 1e-3 and rows[layer].cka < 1 - 1e-4


def test_a_model_against_itself_and_two_random_seeds():
    torch.manual_seed(0)
    a = create_model("smallcnn", 1)
    torch.manual_seed(1)
    b = create_model("smallcnn", 1)
    x = torch.rand(40, 3, 32, 32)
    y = torch.arange(40) % 2

    def batches():
        return iter([(x[:25], y[:25]), (x[25:], y[25:])])

    same = compare_layers(a, a, batches, _plan()).rows
    assert all(r.cka == pytest.approx(1.0, abs=1e-6) and r.weight_change == 0 for r in same)
    assert all(r.reset_drop == 0 and r.topk_jaccard == 1.0 for r in same)
    other = compare_layers(a, b, batches, _plan()).rows
    assert other[-1].cka < 0.99 and other[-2].cka < 0.99


def test_the_images_are_read_again_per_swap_not_kept_in_memory():
    """Memory that does not grow with the images: the inputs are not held for the reset and
    re-randomization forwards; each is one more pass over ``batches()`` (two per layer)."""
    torch.manual_seed(0)
    model = create_model("smallcnn", 1)
    x, y = torch.rand(12, 3, 32, 32), torch.arange(12) % 2
    calls = []

    def batches():
        calls.append(1)
        return iter([(x[:5], y[:5]), (x[5:], y[5:])])

    compare_layers(model, create_model("smallcnn", 1), batches, _plan(n_boot=5))
    assert len(calls) == 1 + 2 * len(LAYERS)


def test_one_re_initialized_layer_alone_stands_out(binary_manifest, tmp_path):
    model, _, batches = _fine_tune(binary_manifest, tmp_path, epochs=8)
    twin = create_model("smallcnn", 1)
    twin.load_state_dict(model.state_dict())
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        twin.features[8].reset_parameters()
    rows = {r.layer: r for r in compare_layers(model, twin.eval(), batches, _plan()).rows}
    assert rows["features.8"].weight_change > 0.5
    assert rows["features.8"].reset_drop > 0.1  # fine-tuned 8 -> random: the metric falls
    for layer in ("features.0", "features.4", "features.12"):
        assert rows[layer].weight_change == 0.0 and rows[layer].reset_drop == 0.0
    assert rows["features.0"].cka == pytest.approx(1.0, abs=1e-6)


@pytest.fixture(scope="module")
def demo_sized_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 synthetic images at 64 px: enough for a model that learns the planted cues."""
    from isic_tracking.data.prepare import prepare_dataset
    from isic_tracking.data.synthetic import make_synthetic

    root = tmp_path_factory.mktemp("layers-probe")
    make_synthetic(root / "raw", n_images=200, seed=0, image_size=64)
    return prepare_dataset(
        "synthetic", root / "raw", root / "prep", task="binary", image_size=64, workers=1
    ).manifest_path


def test_probes_decode_the_planted_cues_after_fine_tuning(demo_sized_manifest, tmp_path):
    model, base, batches = _fine_tune(demo_sized_manifest, tmp_path, size=64, epochs=10)
    rows = compare_layers(model, base, batches, _plan(fv_steps=8)).rows
    last = rows[-1]
    assert conv_layers(model)[-1] == last.layer
    assert last.probe_tuned >= 0.9
    assert last.probe_tuned - last.probe_base >= 0.1  # random init: clearly less
    assert last.probe_tuned_low <= last.probe_tuned <= last.probe_tuned_high
    assert all(np.isfinite([r.fv_same, r.fv_other]).all() for r in rows)


def test_monitor_values_match_their_definitions():
    labels = np.array([0, 0, 1, 1])
    probs = np.array([0.1, 0.6, 0.4, 0.9])
    assert monitor_value(labels, probs, "roc_auc") == pytest.approx(0.75)
    assert monitor_value(labels, probs, "balanced_accuracy") == pytest.approx(0.5)
    assert monitor_value(labels, probs, "loss") == pytest.approx(
        -np.mean(np.log([0.9, 0.4, 0.4, 0.9]))
    )
    multi = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]])
    assert monitor_value(np.array([0, 1, 2, 1]), multi, "balanced_accuracy") == pytest.approx(
        (1 + 0.5 + 1) / 3
    )


def test_roc_auc_counts_tied_scores_one_half_as_sklearn_does():
    """A model whose scores tie (saturated, or collapsed to one value) is at chance, not 0."""
    from sklearn.metrics import roc_auc_score

    labels = np.array([0, 1, 0, 1, 1, 0, 1, 0])
    assert monitor_value(labels, np.full(8, 0.7), "roc_auc") == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    for _ in range(5):
        y = rng.integers(0, 2, 60)
        p = rng.choice([0.1, 0.5, 0.5, 0.9, 1.0], 60)  # many ties
        assert monitor_value(y, p, "roc_auc") == pytest.approx(roc_auc_score(y, p))


class _SizedImages:
    """Re-iterable batches that say how many images they hold, as ``DecodedImages`` does."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch: int) -> None:
        self.x, self.y, self.batch, self.dataset = x, y, batch, x

    def __iter__(self):
        for i in range(0, len(self.x), self.batch):
            yield self.x[i : i + self.batch], self.y[i : i + self.batch]


def test_per_image_rows_land_in_one_block_and_equal_a_direct_forward():
    """The pooled activations, logits and labels of the pass are copied into one block per
    table when the images say their count (nothing small per batch stays between the feature
    maps the allocator reuses), and hold what a direct forward gives, in image order."""
    from isic_tracking.interpret.layer_measures import pooled
    from isic_tracking.stages.layers.compute import _one_pass

    torch.manual_seed(0)
    model, base = create_model("smallcnn", 1).eval(), create_model("smallcnn", 1).eval()
    x, y = torch.rand(13, 3, 32, 32), torch.arange(13) % 2
    acc = _one_pass(model, base, _SizedImages(x, y, 4), _plan())
    plan = _plan()
    xn = (x - torch.tensor(plan.mean).view(1, 3, 1, 1)) / torch.tensor(plan.std).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = pooled(model.features[:5](xn))
        logits = model(xn)
    for table in (acc.tuned["features.4"], acc.base["features.4"], acc.logits):
        assert len(table.blocks) == 1 and len(table.blocks[0]) == 13
    assert torch.allclose(acc.tuned["features.4"].joined(), expected, atol=1e-6)
    assert torch.allclose(acc.logits.joined(), logits, atol=1e-6)
    assert np.array_equal(acc.labels, y.numpy())


def test_the_rows_are_the_same_whether_the_images_say_their_count_or_not():
    """A plain generator (blocks of the default size) and sized images give the same table."""
    torch.manual_seed(0)
    model, base = create_model("smallcnn", 1), create_model("smallcnn", 1)
    x, y = torch.rand(13, 3, 32, 32), torch.arange(13) % 2
    sized = compare_layers(model, base, lambda: _SizedImages(x, y, 4), _plan(n_boot=5))
    plain = compare_layers(
        model, base, lambda: ((x[i : i + 4], y[i : i + 4]) for i in range(0, 13, 4)),
        _plan(n_boot=5),
    )  # fmt: skip
    pd.testing.assert_frame_equal(  # NaN (no pictures) equals NaN here
        pd.DataFrame([r.as_dict() for r in sized.rows]),
        pd.DataFrame([r.as_dict() for r in plain.rows]),
    )
    assert sized.metric == plain.metric and sized.n_images == plain.n_images == 13
