"""The ``layers`` measures on planted truth, as a table (the same cases the tests assert).

On the synthetic data (200 images, 64 px, binary), ``smallcnn`` fine-tuned on fold 0 of 2:

- frozen: fine-tuned with ``freeze=upto:features.4`` (2 epochs) against its random init: the
  frozen layers must show CKA 1, weight change 0 and reset drop 0, the others not;
- self: the fine-tuned model against itself: CKA 1 everywhere;
- seeds: two random inits (seeds 0 and 1): CKA below 1 at the deep layers;
- re-init: the fine-tuned model (10 epochs) against a copy with ``features.8`` re-initialized:
  that layer alone has a weight change and a reset drop;
- probes: the fine-tuned model vs its random init, k-NN probe at every layer.

    python bench/layers_planted.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from isic_tracking.config import TrainConfig  # noqa: E402
from isic_tracking.data.dataset import make_loader  # noqa: E402
from isic_tracking.data.prepare import prepare_dataset  # noqa: E402
from isic_tracking.data.splits import fold_split  # noqa: E402
from isic_tracking.data.synthetic import make_synthetic  # noqa: E402
from isic_tracking.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms  # noqa: E402
from isic_tracking.models import create_model  # noqa: E402
from isic_tracking.models.init import initial_model  # noqa: E402
from isic_tracking.stages.layers.compute import LayersPlan, compare_layers  # noqa: E402
from isic_tracking.train.data import load_training_data  # noqa: E402
from isic_tracking.train.fold import build_model, model_config, train_fold  # noqa: E402

LAYERS = ("features.0", "features.4", "features.8", "features.12")
PLAN = LayersPlan(LAYERS, "binary", "roc_auc", IMAGENET_MEAN, IMAGENET_STD, n_boot=500,
                  fv_steps=0)  # fmt: skip


def fine_tune(manifest: Path, work: Path, name: str, **kw):
    cfg = TrainConfig(manifest=str(manifest), arch="smallcnn", image_size=64, batch_size=16,
                      lr=3e-3, augment="none", folds=2, device="cpu", **kw)  # fmt: skip
    train, _, _ = load_training_data(cfg)
    tr, va = fold_split(train, 0)
    result = train_fold(cfg, tr, va, 0, work / f"{name}.pt")  # one resume state per model
    model = build_model(cfg, torch.device("cpu"))
    model.load_state_dict(result.best_state)
    base = initial_model(model_config(cfg, model, IMAGENET_MEAN, IMAGENET_STD))
    loader = make_loader(va, build_transforms(64, train=False, mean=None), 32)
    return model.eval(), base, lambda: ((x, y) for x, y, *_ in loader)


def show(case: str, rows, cols) -> None:
    for r in rows:
        cells = " | ".join(f"{getattr(r, c):.6f}" if "cka" in c else f"{getattr(r, c):.3f}"
                           for c in cols)  # fmt: skip
        print(f"| {case} | {r.layer} | {cells} |")


def main() -> int:
    torch.set_num_threads(2)
    tmp = Path(tempfile.mkdtemp(prefix="bench-layers-planted-"))
    make_synthetic(tmp / "raw", n_images=200, seed=0, image_size=64)
    manifest = prepare_dataset("synthetic", tmp / "raw", tmp / "prep", task="binary",
                               image_size=64).manifest_path  # fmt: skip
    cols = ("cka", "weight_change", "reset_drop", "probe_base", "probe_tuned")
    print("| case | layer | " + " | ".join(cols) + " |\n|---|---|" + "---:|" * len(cols))
    model, base, batches = fine_tune(manifest, tmp, "frozen", epochs=2, freeze="upto:features.4")
    show("frozen up to features.4", compare_layers(model, base, batches, PLAN).rows, cols)
    model, base, batches = fine_tune(manifest, tmp, "tuned", epochs=10)
    show("against itself", compare_layers(model, model, batches, PLAN).rows, cols)
    show("fine-tuned vs its random init", compare_layers(model, base, batches, PLAN).rows, cols)
    twin = create_model("smallcnn", 1)
    twin.load_state_dict(model.state_dict())
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        twin.features[8].reset_parameters()
    show("features.8 re-initialized", compare_layers(model, twin.eval(), batches, PLAN).rows, cols)
    torch.manual_seed(0)
    a = create_model("smallcnn", 1).eval()
    torch.manual_seed(1)
    b = create_model("smallcnn", 1).eval()
    show("random seeds 0 vs 1", compare_layers(a, b, batches, PLAN).rows, cols)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
