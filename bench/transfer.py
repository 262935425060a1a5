"""Is the offline base a real pretraining, and what does fine-tuning change layer by layer?

For each seed: the ``pretrain`` stage's computation (fractal categories, the demo's settings,
that seed) gives a base; ``smallcnn`` is then fine-tuned on every fold of the synthetic demo
data (the demo's settings: 64 px, flips, lr 2.4e-3, batch 16, 10 epochs, no early stop)
from that base and, side by side with the same seed, from random init. Printed:

1. validation loss per epoch (mean over seeds and folds) for both inits, and the best epoch;
2. the standard linear-evaluation check of a pretraining: a logistic regression and a k-NN
   probe on the frozen, pooled last-conv features of the base and of a random-init network
   (no fine-tuning), out of fold over the training images, balanced accuracy;
3. the ``layers`` measures of every fold-0 model fine-tuned from the base against that base
   (CKA, weight change, reset / re-randomize drop, k-NN probes), mean over seeds with the
   range, and per seed whether deep layers changed more than shallow ones.

    python bench/transfer.py --task binary --seeds 0 1 2
    python bench/transfer.py --task multiclass --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from isic_tracking.config import TrainConfig  # noqa: E402
from isic_tracking.data.dataset import make_loader  # noqa: E402
from isic_tracking.data.fractals import fractal_dataset  # noqa: E402
from isic_tracking.data.prepare import prepare_dataset  # noqa: E402
from isic_tracking.data.splits import fold_split  # noqa: E402
from isic_tracking.data.synthetic import make_synthetic  # noqa: E402
from isic_tracking.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms  # noqa: E402
from isic_tracking.interpret.layer_measures import (  # noqa: E402
    balanced_accuracy,
    pooled,
    probe_predictions,  # noqa: E402
)
from isic_tracking.models import create_model  # noqa: E402
from isic_tracking.models.init import initial_model  # noqa: E402
from isic_tracking.stages.layers.compute import LayersPlan, compare_layers  # noqa: E402
from isic_tracking.stages.pretrain.fit import pretrain, split_data  # noqa: E402
from isic_tracking.train.data import load_training_data  # noqa: E402
from isic_tracking.train.fold import build_model, model_config, train_fold  # noqa: E402

LAYERS = ("features.0", "features.4", "features.8", "features.12")


def make_base(seed: int, out: Path) -> Path:
    """The demo's pretrain (32 categories x 50 images, 64 px, 6 epochs) under ``seed``."""
    from safetensors.torch import save_file

    x, y = fractal_dataset(32, 50, 64, seed)
    data = split_data(x, y, 0.15, seed)
    torch.manual_seed(seed)
    model = create_model("smallcnn", 32)
    rows = pretrain(model, data, 6, 64, 3e-3, seed)
    path = out / f"base-{seed}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    print(f"base seed {seed}: fractal val accuracy {rows[-1]['val_accuracy']:.3f}", flush=True)
    return path


def fine_tune(cfg: TrainConfig, train: pd.DataFrame, fold: int, work: Path):
    tr, va = fold_split(train, fold)
    result = train_fold(cfg, tr, va, fold, work / f"state-{fold}.pt")
    model = build_model(cfg, torch.device("cpu"))
    model.load_state_dict(result.best_state)
    losses = [row["val_loss"] for row in result.history]
    return model.eval(), losses, va


@torch.no_grad()
def pooled_features(model: torch.nn.Module, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Pooled last-conv features of every image (eval transform, ImageNet normalization)."""
    loader = make_loader(rows, build_transforms(64, train=False), 64)
    feats, labels = [], []
    model.eval()
    for x, y, *_ in loader:
        feats.append(pooled(model.features(x)))
        labels.append(y)
    return torch.cat(feats).numpy(), torch.cat(labels).numpy()


def probe_scores(model: torch.nn.Module, rows: pd.DataFrame, seed: int) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    f, y = pooled_features(model, rows)
    linear = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    cv = StratifiedKFold(5, shuffle=True, random_state=seed)
    lin = cross_val_predict(linear, f, y, cv=cv)
    return {
        "linear": balanced_accuracy(y, lin),
        "knn": balanced_accuracy(y, probe_predictions(f, y, seed)),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="binary")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    tmp = Path(tempfile.mkdtemp(prefix="bench-transfer-"))
    make_synthetic(tmp / "raw", n_images=240, seed=0, image_size=128)
    manifest = prepare_dataset("synthetic", tmp / "raw", tmp / "prep", task=args.task,
                               image_size=128).manifest_path  # fmt: skip
    curves, probes, profiles = [], [], []
    for seed in args.seeds:
        base_file = make_base(seed, tmp)
        for init in ("random", "pretrain"):
            cfg = TrainConfig(manifest=str(manifest), arch="smallcnn", task=args.task,
                              image_size=64, augment="flips", lr=2.4e-3, batch_size=16,
                              epochs=args.epochs, patience=args.epochs, folds=3, seed=seed,
                              device="cpu", init=str(base_file) if init == "pretrain" else None)  # fmt: skip
            train, _, _ = load_training_data(cfg)
            for fold in range(3):
                model, losses, va = fine_tune(cfg, train, fold, tmp / f"{init}-{seed}")
                curves += [dict(seed=seed, init=init, fold=fold, epoch=e + 1, val_loss=v)
                           for e, v in enumerate(losses)]  # fmt: skip
                if init == "pretrain" and fold == 0:
                    base = initial_model(model_config(cfg, model, IMAGENET_MEAN, IMAGENET_STD))
                    plan = LayersPlan(LAYERS, args.task, "roc_auc" if args.task == "binary"
                                      else "balanced_accuracy", IMAGENET_MEAN, IMAGENET_STD,
                                      n_boot=500, fv_steps=0, seed=seed)  # fmt: skip
                    loader = make_loader(va, build_transforms(64, train=False, mean=None), 64)
                    res = compare_layers(model, base, lambda: ((x, y) for x, y, *_ in loader), plan)  # noqa: B023
                    profiles += [dict(seed=seed, **r.as_dict()) for r in res.rows]
            start = create_model("smallcnn", 1, weights=str(base_file)) if init == "pretrain" \
                else (torch.manual_seed(seed), create_model("smallcnn", 1))[1]  # fmt: skip
            probes.append(dict(seed=seed, init=init, **probe_scores(start, train, seed)))
        print(f"seed {seed} done ({time.time() - t0:.0f} s)", flush=True)
    report(pd.DataFrame(curves), pd.DataFrame(probes), pd.DataFrame(profiles), args)
    print(f"total {time.time() - t0:.0f} s")
    return 0


def report(curves: pd.DataFrame, probes: pd.DataFrame, prof: pd.DataFrame, args) -> None:
    print(
        f"\n## {args.task}: validation loss per epoch, mean ± sd over seeds {args.seeds} x 3 folds\n"
    )
    table = curves.groupby(["init", "epoch"])["val_loss"].agg(["mean", "std"]).unstack(0)
    print("| epoch | random init | offline base |\n|---:|---:|---:|")
    for epoch, row in table.iterrows():
        print(f"| {epoch} | {row[('mean', 'random')]:.3f} ± {row[('std', 'random')]:.3f} | "
              f"{row[('mean', 'pretrain')]:.3f} ± {row[('std', 'pretrain')]:.3f} |")  # fmt: skip
    best = curves.groupby(["init", "seed", "fold"])["val_loss"].min().unstack(0)
    wins = int((best["pretrain"] < best["random"]).sum())
    print(
        f"\nbest val_loss per (seed, fold): base lower in {wins}/{len(best)}; mean "
        f"{best['random'].mean():.3f} (random) vs {best['pretrain'].mean():.3f} (base)"
    )
    print("\n## frozen features, balanced accuracy out of fold (mean over seeds, min-max)\n")
    print("| start | logistic regression | k-NN |\n|---|---:|---:|")
    for init, g in probes.groupby("init"):
        print(f"| {init} | {g['linear'].mean():.3f} ({g['linear'].min():.3f}-{g['linear'].max():.3f}) | "
              f"{g['knn'].mean():.3f} ({g['knn'].min():.3f}-{g['knn'].max():.3f}) |")  # fmt: skip
    print(
        "\n## layer profile, fold 0 fine-tuned from the base vs the base (mean over seeds [min, max])\n"
    )
    cols = ["cka", "weight_change", "reset_drop", "rerandomize_drop", "probe_base", "probe_tuned"]
    print("| layer | " + " | ".join(cols) + " |\n|---|" + "---:|" * len(cols))
    for layer, g in prof.groupby("layer", sort=False):
        cells = [f"{g[c].mean():.3f} [{g[c].min():.3f}, {g[c].max():.3f}]" for c in cols]
        print(f"| {layer} | " + " | ".join(cells) + " |")
    for seed, g in prof.groupby("seed"):
        g = g.sort_values("depth")
        crit = g.loc[g["reset_drop_low"] > 0, "layer"].tolist()
        print(f"seed {seed}: weight change rises with depth: "
              f"{bool(np.all(np.diff(g['weight_change']) > 0))}; CKA falls with depth: "
              f"{bool(np.all(np.diff(g['cka']) < 0))}; critical on reset (interval > 0): {crit}")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
