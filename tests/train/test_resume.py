"""A fold's resume state: written after an epoch, read back into fresh training objects."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from isic_tracking.train.losses import EarlyStopping, make_optimizer, make_scheduler
from isic_tracking.train.predictions import Predictions
from isic_tracking.train.resume import (
    FoldProgress,
    Trainables,
    load_fold_state,
    load_state,
    save_fold_state,
    save_state,
)


def _objects(seed: int) -> tuple[nn.Module, torch.optim.Optimizer, object, EarlyStopping]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 1))
    optimizer = make_optimizer(model, 1e-2)
    return (
        model,
        optimizer,
        make_scheduler(optimizer, "binary", monitor="val_roc_auc"),
        (EarlyStopping(3, mode="max")),
    )


def _one_step(model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    loss = model(torch.ones(2, 4)).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def _progress(model: nn.Module) -> FoldProgress:
    progress = FoldProgress(history=[{"val_roc_auc": 0.6, "epoch": 0}])
    pred = Predictions(y_true=np.array([0, 1, 1]), scores=np.array([0.2, 0.7, 0.4]))
    progress.keep_best(0, {"val_roc_auc": 0.6, "epoch": 0}, pred, model)
    return progress


def test_fold_state_round_trip_restores_every_object(tmp_path: Path) -> None:
    model, optimizer, scheduler, stopper = _objects(0)
    _one_step(model, optimizer)
    scheduler.step(0.6)
    stopper.step(0.6, 0)
    progress = _progress(model)
    path = tmp_path / "run" / "fold1.pt"
    save_fold_state(path, 1, 0, Trainables(model, optimizer, scheduler, stopper), progress)
    assert path.is_file() and not path.with_suffix(".pt.tmp").exists()

    model2, optimizer2, scheduler2, stopper2 = _objects(1)  # different init
    start, back = load_fold_state(path, 1, Trainables(model2, optimizer2, scheduler2, stopper2))
    assert start == 1
    for a, b in zip(model.state_dict().values(), model2.state_dict().values()):
        assert torch.equal(a, b)
    assert stopper2.state_dict() == stopper.state_dict()
    assert scheduler2.state_dict() == scheduler.state_dict()
    assert optimizer2.state_dict()["state"][0]["step"] == optimizer.state_dict()["state"][0]["step"]
    assert back.history == progress.history and back.best_epoch == 0
    assert back.best_metrics == {"val_roc_auc": 0.6, "epoch": 0}
    np.testing.assert_array_equal(back.best_pred.scores, progress.best_pred.scores)
    np.testing.assert_array_equal(back.best_pred.y_true, progress.best_pred.y_true)
    assert all(torch.equal(back.best_state[k], v) for k, v in progress.best_state.items())
    # the same step from the restored objects gives the same weights
    _one_step(model, optimizer)
    _one_step(model2, optimizer2)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), model2.parameters()))


def test_best_weights_are_a_copy_not_a_view(tmp_path: Path) -> None:
    model, optimizer, _, _ = _objects(0)
    progress = _progress(model)
    before = {k: v.clone() for k, v in progress.best_state.items()}
    _one_step(model, optimizer)
    assert all(torch.equal(progress.best_state[k], v) for k, v in before.items())


def test_state_of_another_fold_or_none_leaves_the_objects(tmp_path: Path) -> None:
    model, optimizer, scheduler, stopper = _objects(0)
    path = tmp_path / "fold0.pt"
    assert (
        load_fold_state(path, 0, Trainables(model, optimizer, scheduler, stopper)) is None
    )  # no file
    save_fold_state(path, 0, 4, Trainables(model, optimizer, scheduler, stopper), _progress(model))
    fresh, opt, sched, stop = _objects(1)
    weights = [p.clone() for p in fresh.parameters()]
    assert load_fold_state(path, 2, Trainables(fresh, opt, sched, stop)) is None
    assert all(torch.equal(a, b) for a, b in zip(weights, fresh.parameters()))
    assert stop.best is None


def test_saving_without_a_best_epoch_is_refused(tmp_path: Path) -> None:
    model, optimizer, scheduler, stopper = _objects(0)
    with pytest.raises(ValueError, match="no best epoch"):
        trainables = Trainables(model, optimizer, scheduler, stopper)
        save_fold_state(tmp_path / "s.pt", 0, 0, trainables, FoldProgress())


class _Code:
    """An object that only unpickling could rebuild."""


def test_load_never_unpickles_code(tmp_path: Path) -> None:
    save_state(tmp_path / "plain.pt", {"epoch": 3, "history": [{"a": 1.0}]})
    assert load_state(tmp_path / "plain.pt") == {"epoch": 3, "history": [{"a": 1.0}]}
    torch.save({"evil": _Code()}, tmp_path / "code.pt")
    with pytest.raises(pickle.UnpicklingError):
        load_state(tmp_path / "code.pt")
    assert load_state(tmp_path / "missing.pt") is None


def test_rewrite_replaces_the_previous_state(tmp_path: Path) -> None:
    path = tmp_path / "s.pt"
    save_state(path, {"epoch": 0})
    save_state(path, {"epoch": 1})
    assert load_state(path) == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.pt"]
