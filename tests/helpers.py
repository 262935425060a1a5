"""Helpers shared by test modules (not fixtures)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import mlflow
import pandas as pd
import torch
from torch import nn

from isic_tracking.interpret.layer_measures import StreamedCKA
from isic_tracking.models import create_model
from isic_tracking.train.checkpoint import save_model_checkpoint


def checkpoint_run(
    seed: int = 0,
    tags: dict[str, str] | None = None,
    edit: Callable[[nn.Module], None] | None = None,
    without: tuple[str, ...] = (),
) -> str:
    """A run holding a random-init resnet18 checkpoint for the binary task (64 px);
    ``edit`` changes the model's weights in place before it is saved; the config keys in
    ``without`` are left out (what older versions did not record)."""
    torch.manual_seed(seed)
    model = create_model("resnet18", 1)
    if edit is not None:
        with torch.no_grad():
            edit(model)
    cfg = dict(
        model.isic_config,
        init={"kind": "random", "source": f"seed {seed}", "seed": seed, "sha256": None},
        task="binary",
        classes=["benign", "malignant"],
        image_size=64,
        mean=[0.485, 0.456, 0.406],
        std=[0.229, 0.224, 0.225],
    )
    cfg = {k: v for k, v in cfg.items() if k not in without}
    with mlflow.start_run() as run, tempfile.TemporaryDirectory() as tmp:
        save_model_checkpoint(Path(tmp) / "ckpt", model, cfg)
        mlflow.log_artifacts(str(Path(tmp) / "ckpt"), "checkpoint")
        mlflow.set_tags(tags or {"isic.stage": "train-fold"})
    return run.info.run_id


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    """Whether two models hold exactly the same parameters and buffers."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA of two activation matrices ``[n, p1]``, ``[n, p2]`` in one go (the
    streamed accumulator fed once)."""
    cka = StreamedCKA()
    cka.update(x, y)
    return cka.value()


def folds_from_csv(df: pd.DataFrame, path: str | Path) -> pd.DataFrame:
    """``df`` with its ``fold`` column read back from a folds CSV (``image_id, fold``, what
    training logs with ``write_folds_csv``); rows the file lacks get -1."""
    folds = pd.read_csv(path, dtype={"image_id": str})
    mapping = dict(zip(folds["image_id"], folds["fold"].astype(int)))
    return df.assign(fold=df["image_id"].astype(str).map(mapping).fillna(-1).astype("int64"))


def count_reads(monkeypatch) -> dict[str, int]:
    """From now on, how often ``ManifestDataset`` reads (decodes) each image file."""
    from isic_tracking.data.dataset import ManifestDataset

    reads: dict[str, int] = {}
    real = ManifestDataset.__getitem__

    def counted(self, index):
        reads[str(self.paths[index])] = reads.get(str(self.paths[index]), 0) + 1
        return real(self, index)

    monkeypatch.setattr(ManifestDataset, "__getitem__", counted)
    return reads
