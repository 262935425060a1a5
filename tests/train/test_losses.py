"""Class-weighted losses, optimizer, plateau schedule and early stopping."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from isic_tracking.errors import IsicInputError
from isic_tracking.train.losses import (
    EarlyStopping,
    class_weights_for,
    make_criterion,
    make_optimizer,
    make_scheduler,
)
from isic_tracking.train.tasks import metric_mode


def test_binary_pos_weight_is_neg_over_pos():
    crit = make_criterion("binary", [900, 100])
    assert isinstance(crit, nn.BCEWithLogitsLoss)
    assert crit.pos_weight.tolist() == [pytest.approx(9.0)]
    logits, target = torch.tensor([0.3, -1.2]), torch.tensor([1.0, 0.0])
    expected = (9.0 * nn.functional.softplus(-logits[0]) + nn.functional.softplus(logits[1])) / 2
    assert crit(logits, target).item() == pytest.approx(expected.item(), rel=1e-6)


def test_binary_unweighted_and_manual():
    assert make_criterion("binary", [900, 100], None).pos_weight is None
    assert make_criterion("binary", [900, 100], "none").pos_weight is None
    assert make_criterion("binary", [900, 100], [0.2, 0.8]).pos_weight.item() == pytest.approx(4.0)


def test_multiclass_inverse_weights_are_balanced():
    counts = [50, 30, 20]
    crit = make_criterion("multiclass", counts)
    assert isinstance(crit, nn.CrossEntropyLoss)
    expected = [100 / (3 * c) for c in counts]
    assert crit.weight.tolist() == pytest.approx(expected)
    # normalized: the weights average to 1 over the training images
    assert sum(w * c for w, c in zip(crit.weight.tolist(), counts)) / 100 == pytest.approx(1.0)


def test_multiclass_manual_weights_like_the_thesis():
    manual = [0.9, 0.2, 0.5, 0.6, 0.4, 0.8, 0.7, 0.3]
    crit = make_criterion("multiclass", [10] * 8, manual)
    assert crit.weight.tolist() == pytest.approx(manual)
    assert make_criterion("multiclass", [10] * 8, None).weight is None


def test_wrong_weight_length_and_bad_values():
    with pytest.raises(IsicInputError, match="has 3 values but the task has 8 classes"):
        make_criterion("multiclass", [10] * 8, [0.1, 0.2, 0.3])
    with pytest.raises(IsicInputError, match="finite and >= 0"):
        class_weights_for([1, 2], [1.0, -1.0])
    with pytest.raises(IsicInputError, match="'inverse', 'none'"):
        class_weights_for([1, 2], "balanced-ish")
    with pytest.raises(IsicInputError, match="binary task needs 2 class counts"):
        make_criterion("binary", [1, 2, 3])
    with pytest.raises(IsicInputError, match="unknown task"):
        make_criterion("regression", [1, 2])


def test_empty_class_in_fold_is_a_clear_error():
    with pytest.raises(IsicInputError, match=r"class\(es\) \[1\] have no training images"):
        make_criterion("binary", [100, 0])
    # explicit weights still work (the user took responsibility)
    assert make_criterion("multiclass", [10, 0, 5], [1.0, 1.0, 1.0]).weight is not None


def test_criterion_on_device():
    crit = make_criterion("multiclass", [3, 4], device="cpu")
    assert crit.weight.device.type == "cpu"


def test_optimizer_skips_frozen_parameters():
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 1))
    model[0].requires_grad_(False)
    opt = make_optimizer(model, lr=3e-4, weight_decay=1e-5)
    assert isinstance(opt, torch.optim.Adam)
    params = opt.param_groups[0]["params"]
    assert len(params) == 2 and all(p.requires_grad for p in params)
    assert opt.param_groups[0]["lr"] == 3e-4 and opt.param_groups[0]["weight_decay"] == 1e-5
    model.requires_grad_(False)
    with pytest.raises(IsicInputError, match="no trainable parameters"):
        make_optimizer(model)


@pytest.mark.parametrize(
    ("task", "factor", "patience"), [("binary", 0.4, 1), ("multiclass", 0.2, 2)]
)
def test_scheduler_settings_per_task(task, factor, patience):
    opt = make_optimizer(nn.Linear(2, 1), lr=1.0)
    sched = make_scheduler(opt, task, monitor="val_roc_auc")
    assert sched.factor == factor and sched.patience == patience and sched.mode == "max"
    sched.step(0.5)
    for _ in range(patience + 1):  # no improvement for patience + 1 epochs -> reduce
        sched.step(0.5)
    assert opt.param_groups[0]["lr"] == pytest.approx(factor)


def test_scheduler_mode_follows_metric():
    opt = make_optimizer(nn.Linear(2, 1))
    assert make_scheduler(opt, "binary", monitor="val_loss").mode == "min"
    assert metric_mode("val_loss") == "min" and metric_mode("val_f1") == "max"
    assert make_scheduler(opt, "binary", factor=0.5, patience=3).patience == 3


def test_early_stopping_stops_after_patience():
    es = EarlyStopping(patience=2, mode="max")
    assert [es.step(v) for v in (0.5, 0.7, 0.6, 0.7, 0.65)] == [False, False, False, True, True]
    assert es.best == 0.7 and es.best_epoch == 1


def test_early_stopping_min_mode_nan_and_improved_flag():
    es = EarlyStopping(patience=1, mode="min")
    es.step(1.0)
    assert es.improved
    assert es.step(float("nan")) and not es.improved  # NaN never improves
    es = EarlyStopping(patience=3, mode="min", min_delta=0.1)
    es.step(1.0)
    es.step(0.95)  # not better by min_delta
    assert not es.improved and es.best == 1.0


def test_early_stopping_resumes_from_state_dict():
    values = [0.5, 0.6, 0.55, 0.58, 0.57, 0.59]
    full = EarlyStopping(patience=3)
    full_stops = [full.step(v) for v in values]
    first = EarlyStopping(patience=3)
    stops = [first.step(v) for v in values[:3]]
    buf = io.BytesIO()
    torch.save(first.state_dict(), buf)  # the runner checkpoints it with the model
    buf.seek(0)
    resumed = EarlyStopping(patience=99)
    resumed.load_state_dict(torch.load(buf, weights_only=True))
    stops += [resumed.step(v) for v in values[3:]]
    assert stops == full_stops == [False, False, False, False, True, True]
    assert resumed.state_dict() == full.state_dict()
    assert resumed.best_epoch == 1 and resumed.epoch == 5


def test_early_stopping_bad_arguments():
    with pytest.raises(IsicInputError, match="mode"):
        EarlyStopping(mode="up")
    with pytest.raises(IsicInputError, match="patience"):
        EarlyStopping(patience=-1)


def test_early_stopping_patience_zero_stops_on_first_non_improvement():
    es = EarlyStopping(patience=0)
    assert not es.should_stop  # nothing seen yet
    assert not es.step(0.5)
    assert es.step(0.4)
