"""Search cost: training epochs spent and best value found, with and without median pruning.

For every seed both searches run in this process, one after the other, with the same sampler
seed and trial budget on the same synthetic data (TPE samples its first 10 trials at random
from the seed, so both searches propose the same points there; pruning only decides how
long each trial trains). The objective is the trial's best validation ROC AUC (binary) or
balanced accuracy (multiclass), as in the ``search`` stage; Optuna storage in memory, no MLflow (the tracking cost is not
measured here).

    python bench/search_cost.py                      # defaults: 3 seeds x 12 trials
    python bench/search_cost.py --task multiclass    # 8 classes: the metric does not saturate
    python bench/search_cost.py --seeds 0 1 2 3 4 --n-trials 16 --arch mobilenet_v3_small
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import optuna
import torch

from isic_tracking.data.prepare import prepare_dataset
from isic_tracking.data.synthetic import make_synthetic
from isic_tracking.scaleout.worker_loop import run_worker
from isic_tracking.train.search import (
    SearchConfig,
    SearchObjective,
    best_trial,
    epochs_spent,
    load_search_data,
    open_study,
    state_counts,
)


def run_one(cfg: SearchConfig, data) -> dict:
    """One search in memory; returns epochs spent, best value and counts."""
    study = open_study(optuna.storages.InMemoryStorage(), f"{cfg.pruner}-{cfg.seed}", cfg)
    t0 = time.perf_counter()
    run_worker(study, SearchObjective(cfg, data), n_trials=cfg.n_trials)
    best = best_trial(study)
    counts = state_counts(study)
    return {
        "seed": cfg.seed,
        "pruner": cfg.pruner,
        "epochs": epochs_spent(study),
        "best": float(best.value) if best else float("nan"),
        "best_trial": best.number if best else -1,
        "complete": counts["complete"],
        "pruned": counts["pruned"],
        "failed": counts["fail"],
        "seconds": time.perf_counter() - t0,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--n-trials", type=int, default=12)
    p.add_argument("--task", default="binary", choices=["binary", "multiclass"])
    p.add_argument("--arch", default="timm:test_efficientnet")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--n-images", type=int, default=240, help="synthetic ISIC 2020 rows")
    p.add_argument("--subset", type=float, default=1.0)
    p.add_argument("--epochs", type=int, nargs=2, default=[2, 10], metavar=("MIN", "MAX"))
    p.add_argument("--lr", type=float, nargs=2, default=[1e-4, 1e-1], metavar=("MIN", "MAX"))
    p.add_argument("--batch-sizes", default="16,32")
    p.add_argument("--startup-trials", type=int, default=3)
    p.add_argument("--warmup-epochs", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: per-core cost)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp:
        make_synthetic(Path(tmp) / "raw", n_images=args.n_images, seed=0, image_size=64)
        prepared = prepare_dataset(
            "synthetic", Path(tmp) / "raw", Path(tmp) / "prep", task=args.task, image_size=64
        )
        rows = []
        for seed in args.seeds:
            for pruner in ("none", "median"):
                cfg = SearchConfig(
                    manifest=str(prepared.manifest_path),
                    task=args.task,
                    arch=args.arch,
                    image_size=args.image_size,
                    subset=args.subset,
                    n_trials=args.n_trials,
                    seed=seed,
                    pruner=pruner,
                    lr_min=args.lr[0],
                    lr_max=args.lr[1],
                    batch_sizes=args.batch_sizes,
                    epochs_min=args.epochs[0],
                    epochs_max=args.epochs[1],
                    pruner_startup_trials=args.startup_trials,
                    pruner_warmup_epochs=args.warmup_epochs,
                    device="cpu",
                    augment="none",
                ).validate()
                rows.append(run_one(cfg, load_search_data(cfg)))
                print(rows[-1], flush=True)

    print(
        f"\n{args.task}: {args.n_trials} trials per search, {args.arch} at {args.image_size} px, "
        f"epochs {args.epochs[0]}-{args.epochs[1]}, lr {args.lr[0]:g}-{args.lr[1]:g}, "
        f"median pruner (startup {args.startup_trials}, warmup {args.warmup_epochs})\n"
    )
    metric = "val AUC" if args.task == "binary" else "val balanced acc."
    print(f"| seed | pruner | epochs spent | best {metric} | complete / pruned / failed | s |")
    print("|---:|---|---:|---:|---|---:|")
    for r in rows:
        print(
            f"| {r['seed']} | {r['pruner']} | {r['epochs']} | {r['best']:.4f} "
            f"(trial {r['best_trial']}) | {r['complete']} / {r['pruned']} / {r['failed']} "
            f"| {r['seconds']:.0f} |"
        )
    savings, deltas = [], []
    for seed in args.seeds:
        off = next(r for r in rows if r["seed"] == seed and r["pruner"] == "none")
        on = next(r for r in rows if r["seed"] == seed and r["pruner"] == "median")
        savings.append(1 - on["epochs"] / off["epochs"])
        deltas.append(on["best"] - off["best"])
    print(
        f"\nepochs saved by pruning: median {100 * statistics.median(savings):.0f} % "
        f"(per seed {', '.join(f'{100 * s:.0f} %' for s in savings)}); "
        f"best value with - without pruning: median {statistics.median(deltas):+.4f} "
        f"(per seed {', '.join(f'{d:+.4f}' for d in deltas)})"
    )


if __name__ == "__main__":
    main()
