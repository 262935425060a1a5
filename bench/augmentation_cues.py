"""Do the training augmentations keep the planted cues of the synthetic data?

For each augmentation (``none``, ``flips``, ``perez``, ``perez`` without hue shift) every
image of a manifest is transformed (3 draws each) and described by hand-made lesion features
that carry the planted cues: lesion area (size), the lesion's mean colour, its colour spread
(multi-coloured vs uniform) and the border irregularity proxy (lesion perimeter^2 / area).
A logistic regression is fitted on the features of one half of the images and scored on
the other half (grouped by image, balanced accuracy and, for binary, ROC AUC). If an
augmentation erased a cue, the score under it drops towards chance.

    python bench/augmentation_cues.py --manifest data/synthetic/prepared-binary/manifest.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from isic_tracking.data.dataset import ManifestDataset  # noqa: E402
from isic_tracking.data.manifest import read_manifest  # noqa: E402
from isic_tracking.data.transforms import ColorJitter, build_transforms  # noqa: E402


def lesion_features(img: torch.Tensor) -> np.ndarray:
    """Features of one float image [3, H, W] in [0, 1]: area, mean RGB, RGB std, irregularity."""
    lum = img.mean(0)
    ring = torch.cat([lum[:4].flatten(), lum[-4:].flatten(), lum[:, :4].flatten(), lum[:, -4:].flatten()])  # fmt: skip
    mask = lum < ring.median() - 0.12
    area = mask.float().mean()
    if mask.sum() < 4:
        return np.array([0.0, *img.mean((1, 2)).tolist(), 0.0, 0.0, 0.0, 0.0])
    pix = img[:, mask]
    outside = (~mask).float()[None, None]
    eroded = torch.nn.functional.max_pool2d(outside, 3, 1, 1)[0, 0] == 0
    edge = mask & ~eroded
    perimeter = edge.float().sum()
    irregular = perimeter**2 / (mask.float().sum() * 4 * np.pi)
    return np.array([area, *pix.mean(1).tolist(), *pix.std(1).tolist(), float(irregular)])


def features(ds: ManifestDataset, draws: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y, g = [], [], []
    for i in range(len(ds)):
        for _ in range(draws):
            img, label = ds[i][0], ds[i][1]
            x.append(lesion_features(img))
            y.append(int(label))
            g.append(i)
    return np.array(x), np.array(y), np.array(g)


def transforms(name: str, size: int):
    if name == "perez_no_hue":
        tf = build_transforms(size, train=True, mean=None, augment="perez")
        for t in tf.transforms:
            if isinstance(t, ColorJitter):
                t.hue = 0.0
        return tf
    return build_transforms(size, train=name != "none", mean=None, augment=name)


def main() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    p = argparse.ArgumentParser()
    p.add_argument("--manifest", required=True)
    p.add_argument("--image_size", type=int, default=64)
    p.add_argument("--draws", type=int, default=3)
    args = p.parse_args()
    df = read_manifest(args.manifest)
    df = df[df["split"] == "train"].reset_index(drop=True)
    binary = df["label"].nunique() == 2
    rng = np.random.default_rng(0)
    half = rng.permutation(len(df)) < len(df) // 2
    print(f"{'augmentation':<14} {'balanced acc':>12} {'ROC AUC':>8}")
    for name in ("none", "flips", "perez_no_hue", "perez"):
        torch.manual_seed(0)
        ds = ManifestDataset(df, transforms(name, args.image_size))
        x, y, g = features(ds, 1 if name == "none" else args.draws)
        fit = half[g]
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
        clf.fit(x[fit], y[fit])
        bacc = balanced_accuracy_score(y[~fit], clf.predict(x[~fit]))
        auc = roc_auc_score(y[~fit], clf.predict_proba(x[~fit])[:, 1]) if binary else float("nan")
        print(f"{name:<14} {bacc:>12.3f} {auc:>8.3f}")


if __name__ == "__main__":
    main()
