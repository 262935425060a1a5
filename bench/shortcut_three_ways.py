"""A planted ruler shortcut seen three ways: the ranking's top ruler unit, its Network
Dissection IoU with the painted ruler masks, and what removing it does to the malignant score.

Per seed, two synthetic sets (``make_synthetic(n_images, seed, 64 px)``): the shortcut set
(rulers on ``rate`` of the malignant images, none on benign ones) and its control (the same
seed without the shortcut). Each trains ``smallcnn`` as in ``tests/e2e/test_shortcut_e2e.py``
(2 folds, 64 px, no augmentation: random crops cut the ruler band off) and its champion runs
the ``filters`` stage on all of its own images (``split=all``), with ablation and dissection.
Per model and seed the script reads:

- ``ruler_unit``: rank 1 of the ruler group in the last layer (the ranking's ruler filter);
- ``iou_ruler``: that unit's dissection IoU with the ruler masks, and ``best_iou_ruler``, the
  best of any unit of the layer;
- ``drop_<variant>``: the drop of the malignant logit on the malignant images that carry a
  ruler when the ruler group's top ``k`` filters are removed, its random baseline's 95th
  percentile (``random_q95_<variant>``) and the share of random drops below it;
- ``iou_drop_<variant>`` / ``iou_percentile_<variant>``: the same for the ``k`` units with the
  best dissection IoU with the ruler masks (the units that *look at* the ruler; on the
  shortcut set the ranking's ruler filter can be a malignancy filter, since there a ruler
  means malignant).

- ``gradcam_ruler``: the mean share of the Grad-CAM mass (towards malignant, at the last
  layer's response) inside the ruler masks on the malignant images that carry a ruler, and
  ``ruler_area``, the share of those images' pixels the ruler covers (what an attribution
  spread evenly would put there).

Expected: on the shortcut model the ruler filters' drop stands out of the random ones (a
percentile near 1), on the control it does not; Grad-CAM puts more of its mass on the ruler.
Prints one row per model and seed, then per model the mean with a 95 % t-interval over seeds.
A real MLflow store in a temporary folder; minutes per seed on 2 CPU cores.

    python bench/shortcut_three_ways.py --seeds 0,1,2 [--n_images 240 --epochs 8 --k 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from isic_tracking.config import TrainConfig  # noqa: E402
from isic_tracking.data.dataset import make_loader  # noqa: E402
from isic_tracking.data.manifest import read_manifest  # noqa: E402
from isic_tracking.data.prepare import prepare_dataset  # noqa: E402
from isic_tracking.data.synthetic import make_synthetic  # noqa: E402
from isic_tracking.data.synthetic.masks import MASK_CONCEPTS, load_masks  # noqa: E402
from isic_tracking.data.transforms import build_transforms  # noqa: E402
from isic_tracking.interpret.ablation import (  # noqa: E402
    AblationTarget,
    ablation_pass,
    ablation_table,
    random_sets,
)
from isic_tracking.interpret.attribution import gradcam_maps, mass_in_mask  # noqa: E402
from isic_tracking.interpret.inputs import load_images  # noqa: E402
from isic_tracking.interpret.liveness import live_mask  # noqa: E402
from isic_tracking.interpret.response import (  # noqa: E402
    response_layers,
    response_module,
    response_stats,
)
from isic_tracking.stages.filters.config import FiltersConfig  # noqa: E402
from isic_tracking.stages.filters.runner import run_filters  # noqa: E402
from isic_tracking.stages.train.runner import run_training  # noqa: E402
from isic_tracking.tracking.registry import load_model  # noqa: E402

VARIANTS = ("zero", "mean")


def ablate_ruler_units(uri: str, manifest: Path, layer: str, units: list[int], args, seed: int):
    """The ablation table of the ``units`` (the best ruler IoUs) against random live units:
    the malignant logit on malignant images with a ruler (own) and without (other)."""
    loaded = load_model(uri, "cpu")
    rows = read_manifest(manifest)
    tf = build_transforms(64, train=False, mean=loaded.config["mean"], std=loaded.config["std"])
    loader = make_loader(rows, tf, 32, return_index=True)
    stats = response_stats(loaded.model, loader, [layer], "cpu")[layer]
    module = next(m for m, name in response_layers(loaded.model, [layer]).items())
    mal = rows["label"].to_numpy() == 1  # binary: benign 0, malignant 1
    ruler = (rows["artifact"] == "ruler").to_numpy()
    target = AblationTarget("artifact", "ruler (dissection)", layer, tuple(sorted(units)), 1,
                            mal & ruler, mal & ~ruler)  # fmt: skip
    sets = [target.filters, *random_sets(live_mask(stats.max), len(units), args.draws, seed)]
    result = ablation_pass(loaded.model, loader, module, sets, stats.mean.mean(dim=0))
    return ablation_table(result, [target])


def gradcam_on_ruler(uri: str, manifest: Path, layer: str) -> dict[str, float]:
    """Mean share of the Grad-CAM mass (towards malignant) inside the ruler masks, and the
    ruler's mean share of the pixels, on the malignant images that carry a ruler."""
    loaded = load_model(uri, "cpu")
    rows = read_manifest(manifest)
    rows = rows[(rows["label"] == 1) & (rows["artifact"] == "ruler")].reset_index(drop=True)
    if rows.empty:
        return {"gradcam_ruler": np.nan, "ruler_area": np.nan, "n_ruler_malignant": 0}
    images = load_images(rows, 64)
    mean = torch.tensor(loaded.config["mean"])[:, None, None]
    std = torch.tensor(loaded.config["std"])[:, None, None]
    read = response_module(loaded.model, layer) or layer
    maps = gradcam_maps(loaded.model, read, (images - mean) / std, torch.ones(len(rows)).long())
    ruler = load_masks(rows["mask"].tolist(), 64)[:, MASK_CONCEPTS.index("ruler")]
    share = mass_in_mask(maps, ruler)
    return {
        "gradcam_ruler": float(share.nanmean()),
        "ruler_area": float(ruler.float().mean()),
        "n_ruler_malignant": len(rows),
    }


def one_model(tmp: Path, name: str, seed: int, args, shortcut: str | None) -> dict:
    """Synth, prepare, train and analyse one model; its row of the table."""
    raw, prep = tmp / name / "raw", tmp / name / "prep"
    make_synthetic(raw, n_images=args.n_images, seed=seed, image_size=64,
                   shortcut_artifact=shortcut, shortcut_rate=args.rate)  # fmt: skip
    manifest = prepare_dataset("synthetic", raw, prep, task="binary", image_size=64).manifest_path
    train = run_training(TrainConfig(
        manifest=str(manifest), arch="smallcnn", folds=2, epochs=args.epochs, image_size=64,
        lr=0.002, batch_size=32, augment="none", device="cpu", seed=seed,
        work_dir=str(tmp / name / "work"), register_as=f"three-ways-{name}",
    ))  # fmt: skip
    out = run_filters(FiltersConfig(
        model_uri=f"models:/{train.model_name}@champion", split="all", exemplars=0,
        ablate_k=args.k, ablate_draws=args.draws, device="cpu", seed=seed,
        attribution="none", gradcam=False,  # not what this bench measures: time saved
    ))  # fmt: skip
    layer = out.layers[-1]
    top = out.report.group_top
    ruler = top[(top["group"] == "ruler") & (top["layer"] == layer) & (top["rank"] == 1)]
    unit = int(ruler["filter"].iloc[0]) if len(ruler) else -1
    row = {"model": "shortcut" if shortcut else "control", "seed": seed, "ruler_unit": unit}
    units = out.dissection[out.dissection["layer"] == layer].set_index("unit")
    row["iou_ruler"] = float(units.loc[unit, "iou_ruler"]) if unit in units.index else np.nan
    row["best_iou_ruler"] = float(units["iou_ruler"].max()) if len(units) else np.nan
    abl = out.ablation
    hit = abl[(abl["kind"] == "artifact") & (abl["name"] == "ruler")] if len(abl) else abl
    for v in VARIANTS:
        for col in ("drop", "random_q95", "percentile"):
            key = f"{col}_{v}"
            row[key] = float(hit[key].iloc[0]) if len(hit) and key in hit else np.nan
    row["passed"] = bool(hit["passed"].iloc[0]) if len(hit) else False
    row |= gradcam_on_ruler(row_uri(train), manifest, layer)
    best = units.sort_values("iou_ruler", ascending=False).index[: args.k].tolist()
    table = ablate_ruler_units(row_uri(train), manifest, layer, best, args, seed)
    own = table[(table["images"] == "own") & (table["score"] == "logit")].set_index("variant")
    for v in VARIANTS:
        row[f"iou_drop_{v}"] = float(own.loc[v, "drop"])
        row[f"iou_random_q95_{v}"] = float(own.loc[v, "random_q95"])
        row[f"iou_percentile_{v}"] = float(own.loc[v, "percentile"])
    return row


def row_uri(train) -> str:
    return f"models:/{train.model_name}@champion"


def interval(values: pd.Series) -> str:
    """Mean and 95 % t-interval over seeds (the mean alone for one seed)."""
    v = values.dropna().to_numpy(dtype=float)
    if len(v) < 2:
        return f"{v.mean():.3f}" if len(v) else "nan"
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return f"{v.mean():.3f} [{v.mean() - half:.3f}, {v.mean() + half:.3f}]"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--n_images", type=int, default=240)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--rate", type=float, default=0.9)
    p.add_argument("--k", type=int, default=2)
    p.add_argument("--draws", type=int, default=50)
    p.add_argument("--out", default="", help="CSV of the per-seed rows (default: print only)")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
        for seed in (int(s) for s in args.seeds.split(",")):
            for name, shortcut in (("shortcut", "ruler"), ("control", None)):
                rows.append(one_model(Path(tmp), f"{name}-{seed}", seed, args, shortcut))
                if args.out:  # each model's row as soon as it is there
                    pd.DataFrame(rows).to_csv(args.out, index=False)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    measures = ("drop", "random_q95", "percentile", "iou_drop", "iou_random_q95",
                "iou_percentile")  # fmt: skip
    cols = ["iou_ruler", "best_iou_ruler", "gradcam_ruler", "ruler_area",
            *(f"{c}_{v}" for v in VARIANTS for c in measures)]  # fmt: skip
    summary = table.groupby("model")[cols].agg(interval)
    print(summary.T.to_string())


if __name__ == "__main__":
    main()
