"""train_one_epoch / evaluate on a tiny CNN and a separable toy problem (CPU, seconds)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from isic_tracking.errors import IsicInputError, NonFiniteLossError
from isic_tracking.train.engine import (
    Predictions,
    evaluate,
    make_grad_scaler,
    train_one_epoch,
)
from isic_tracking.train.losses import make_criterion, make_optimizer

KEYS_TRAIN = {
    "loss",
    "accuracy",
    "balanced_accuracy",
    "roc_auc",
    "precision",
    "recall",
    "f1",
    "lr",
    "seconds",
    "images_per_s",
}


class TinyCNN(nn.Module):
    def __init__(self, num_outputs: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1)
        )
        self.head = nn.Linear(8, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def toy_data(n: int = 96, n_classes: int = 2, size: int = 16, seed: int = 0):
    """Class c has a bright patch in channel c % 3: separable by a conv + pooling."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % n_classes
    x = torch.randn(n, 3, size, size, generator=g) * 0.5
    for c in range(n_classes):
        x[y == c, c % 3, : size // 2, : size // 2] += 2.0 + c // 3
    return x, y


class IndexedDataset(Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return self.x[i], self.y[i], i


def binary_setup(lr: float = 1e-2, seed: int = 0):
    torch.manual_seed(seed)
    x, y = toy_data(seed=seed)
    model = TinyCNN(1)
    crit = make_criterion("binary", [int((y == 0).sum()), int((y == 1).sum())])
    opt = make_optimizer(model, lr=lr)
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
    return model, crit, opt, loader


def test_tiny_cnn_learns_binary_toy_problem():
    model, crit, opt, loader = binary_setup()
    x_val, y_val = toy_data(n=64, seed=1)
    val_loader = DataLoader(TensorDataset(x_val, y_val), batch_size=32)
    losses = []
    for epoch in range(4):
        m = train_one_epoch(model, loader, crit, opt, "cpu", "binary", epoch=epoch)
        assert set(m) == KEYS_TRAIN
        losses.append(m["loss"])
    assert losses[-1] < losses[0]
    val, pred = evaluate(model, val_loader, crit, "cpu", "binary")
    assert val["roc_auc"] > 0.9
    assert isinstance(pred, Predictions)
    assert pred.scores.shape == (64,) and pred.y_true.dtype == np.int64
    assert ((pred.scores >= 0) & (pred.scores <= 1)).all()
    assert pred.indices is None
    assert m["images_per_s"] > 0 and m["lr"] == pytest.approx(1e-2)


def test_tiny_cnn_learns_multiclass_toy_problem():
    torch.manual_seed(0)
    x, y = toy_data(n=120, n_classes=3)
    model = TinyCNN(3)
    crit = make_criterion("multiclass", [40, 40, 40])
    opt = make_optimizer(model, lr=1e-2)
    loader = DataLoader(TensorDataset(x, y), batch_size=20, shuffle=True)
    first = train_one_epoch(model, loader, crit, opt, "cpu", "multiclass")
    for _ in range(3):
        last = train_one_epoch(model, loader, crit, opt, "cpu", "multiclass")
    assert last["loss"] < first["loss"]
    val, pred = evaluate(
        model, DataLoader(TensorDataset(x, y), batch_size=50), crit, "cpu", "multiclass"
    )
    assert pred.scores.shape == (120, 3)
    np.testing.assert_allclose(pred.scores.sum(axis=1), 1.0, atol=1e-5)
    assert val["roc_auc"] > 0.9
    assert pred.task == "multiclass" and pred.n_classes == 3


def test_nan_input_raises_clear_error():
    model, crit, opt, _ = binary_setup()
    x, y = toy_data(n=48)
    x[20] = float("nan")  # second batch of 16
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    with pytest.raises(NonFiniteLossError, match=r"epoch 3, batch 1 .*lr=0\.01.*input batch"):
        train_one_epoch(model, loader, crit, opt, "cpu", "binary", epoch=3)


def test_huge_learning_rate_raises_non_finite_loss():
    model, crit, opt, loader = binary_setup(lr=1e30)
    with pytest.raises(NonFiniteLossError, match=r"lower the learning rate \(lr=1e\+30\)"):
        for epoch in range(3):
            train_one_epoch(model, loader, crit, opt, "cpu", "binary", epoch=epoch)


def test_non_finite_loss_in_last_batch_is_caught():
    model, crit, opt, _ = binary_setup()
    x, y = toy_data(n=32)
    x[-1] = float("inf")
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    with pytest.raises(NonFiniteLossError, match="batch 1"):
        train_one_epoch(model, loader, crit, opt, "cpu", "binary")


def test_bf16_autocast_runs_on_cpu():
    model, crit, opt, loader = binary_setup()
    m = train_one_epoch(model, loader, crit, opt, "cpu", "binary", amp="bf16", max_batches=3)
    assert np.isfinite(m["loss"])
    val, pred = evaluate(model, loader, crit, "cpu", "binary", amp="bf16")
    assert np.isfinite(val["loss"]) and pred.scores.dtype == np.float32


def test_fp16_needs_scaler_and_runs_with_one():
    model, crit, opt, loader = binary_setup()
    with pytest.raises(IsicInputError, match="GradScaler"):
        train_one_epoch(model, loader, crit, opt, "cpu", "binary", amp="fp16")
    scaler = make_grad_scaler("fp16", "cpu")
    assert scaler is not None and make_grad_scaler("bf16", "cpu") is None
    m = train_one_epoch(
        model, loader, crit, opt, "cpu", "binary", amp="fp16", scaler=scaler, max_batches=2
    )
    assert np.isfinite(m["loss"])


def test_unknown_amp_is_rejected():
    model, crit, opt, loader = binary_setup()
    with pytest.raises(IsicInputError, match="unknown amp"):
        train_one_epoch(model, loader, crit, opt, "cpu", "binary", amp="fp8")


def test_channels_last_matches_contiguous():
    model, crit, opt, loader = binary_setup()
    model = model.to(memory_format=torch.channels_last)
    train_one_epoch(model, loader, crit, opt, "cpu", "binary", channels_last=True, max_batches=2)
    eval_loader = DataLoader(loader.dataset, batch_size=32)
    a, pa = evaluate(model, eval_loader, crit, "cpu", "binary", channels_last=True)
    b, pb = evaluate(model, eval_loader, crit, "cpu", "binary", channels_last=False)
    np.testing.assert_allclose(pa.scores, pb.scores, atol=1e-5)


def test_indexed_batches_carry_indices_through():
    torch.manual_seed(0)
    x, y = toy_data(n=40)
    ds = IndexedDataset(x, y)
    model = TinyCNN(1)
    crit = make_criterion("binary", [20, 20])
    opt = make_optimizer(model)
    train_one_epoch(model, DataLoader(ds, batch_size=8, shuffle=True), crit, opt, "cpu", "binary")
    _, pred = evaluate(model, DataLoader(ds, batch_size=8, shuffle=True), crit, "cpu", "binary")
    assert sorted(pred.indices.tolist()) == list(range(40))
    np.testing.assert_array_equal(pred.y_true, y.numpy()[pred.indices])


def test_evaluate_uses_eval_mode_no_grad_and_restores_mode():
    model, crit, opt, loader = binary_setup()
    train_one_epoch(model, loader, crit, opt, "cpu", "binary", max_batches=2)
    x, y = toy_data(n=32, seed=3)
    model.train()
    _, pred = evaluate(model, DataLoader(TensorDataset(x, y), batch_size=8), crit, "cpu", "binary")
    assert model.training  # restored
    model.eval()
    with torch.no_grad():
        expected = torch.sigmoid(model(x).squeeze(1)).numpy()
    np.testing.assert_allclose(pred.scores, expected, atol=1e-6)  # BN used running stats


def test_evaluate_does_not_touch_gradients():
    model, crit, _, loader = binary_setup()
    evaluate(model, loader, crit, "cpu", "binary")
    assert all(p.grad is None for p in model.parameters())


def test_train_sets_train_mode_and_max_batches():
    model, crit, opt, loader = binary_setup()
    model.eval()
    m = train_one_epoch(model, loader, crit, opt, "cpu", "binary", max_batches=2)
    assert model.training
    assert m["images_per_s"] * m["seconds"] == pytest.approx(32)


def test_binary_task_rejects_two_logits():
    torch.manual_seed(0)
    x, y = toy_data(n=16)
    model = TinyCNN(2)
    crit = make_criterion("binary", [8, 8])
    with pytest.raises(IsicInputError, match="1 logit"):
        train_one_epoch(
            model,
            DataLoader(TensorDataset(x, y), batch_size=8),
            crit,
            make_optimizer(model),
            "cpu",
            "binary",
        )


def test_bad_batch_format_and_empty_loader():
    model, crit, opt, _ = binary_setup()
    x, _ = toy_data(n=8)
    with pytest.raises(IsicInputError, match=r"\(x, y\)"):
        train_one_epoch(model, DataLoader(x, batch_size=4), crit, opt, "cpu", "binary")
    with pytest.raises(IsicInputError, match="no batches"):
        evaluate(model, [], crit, "cpu", "binary")


def _ddp_worker(rank: int, world: int, tmp: str) -> None:
    """One rank: DDP training + distributed evaluation, then a NaN on rank 1's shard only."""
    import json

    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data.distributed import DistributedSampler

    dist.init_process_group("gloo", init_method=f"file://{tmp}/store", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        x, y = toy_data(n=37)
        model = DistributedDataParallel(TinyCNN(1))
        crit = make_criterion("binary", [19, 18])
        opt = make_optimizer(model, lr=1e-2)
        sampler = DistributedSampler(TensorDataset(x, y), shuffle=True, seed=0)
        loader = DataLoader(TensorDataset(x, y), batch_size=8, sampler=sampler)
        train = train_one_epoch(model, loader, crit, opt, "cpu", "binary")
        ds = IndexedDataset(x, y)
        idx_loader = DataLoader(ds, batch_size=8, sampler=DistributedSampler(ds, shuffle=False))
        val, pred = evaluate(model, idx_loader, crit, "cpu", "binary")
        plain = DataLoader(
            TensorDataset(x, y),
            batch_size=8,
            sampler=DistributedSampler(TensorDataset(x, y), shuffle=False),
        )
        _, pred_plain = evaluate(model, plain, crit, "cpu", "binary")
        x_bad = x.clone()
        x_bad[1::2] = float("nan")  # DistributedSampler(shuffle=False): rank 1 gets odd indices
        bad = DataLoader(
            TensorDataset(x_bad, y),
            batch_size=4,
            sampler=DistributedSampler(TensorDataset(x_bad, y), shuffle=False),
        )
        error = ""
        try:
            train_one_epoch(model, bad, crit, opt, "cpu", "binary", epoch=1)
        except NonFiniteLossError as err:
            error = str(err)
        out = {
            "train_loss": train["loss"],
            "indices": pred.indices.tolist(),
            "y_true": pred.y_true.tolist(),
            "plain_y": pred_plain.y_true.tolist(),
            "same_scores": bool(np.allclose(pred.scores, pred_plain.scores, atol=1e-6)),
            "val_loss": val["loss"],
            "error": error,
        }
        with open(f"{tmp}/rank{rank}.json", "w") as f:
            json.dump(out, f)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_two_ranks_gather_and_stop_together(tmp_path):
    import json

    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    y = (torch.arange(37) % 2).tolist()
    for r in (r0, r1):
        assert r["indices"] == list(range(37))  # padding dropped, sorted
        assert r["y_true"] == y and r["plain_y"] == y  # also without indices
        assert r["same_scores"]
        assert "batch 0 on some rank" in r["error"]  # both ranks stop, none hangs
    assert r0["train_loss"] == pytest.approx(r1["train_loss"])  # all-reduced epoch loss
    assert r0["val_loss"] == pytest.approx(r1["val_loss"])
