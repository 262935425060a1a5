"""The colour check of the class-logit pictures under each colour basis and score (issue 18).

For a registered model: render its class logits with preset ``tuned`` in lucid's ImageNet
colour basis and in the basis of the analysed natural images (``colours=data``, visualize's
default), for several seeds, and score every set of pictures with the colour check's class
posterior (``interpret/colour_check.py``, the stage's score) and with the Kullback-Leibler
divergence it replaced. Beside them, the same check with natural images in place of the
pictures (one image of each class per seed, in-sample): their lesion pixels (what the check is
built to recognize) and the whole image (skin included, which the lesion histograms leave
out). Prints classes passed per seed, the median, and the chance p of seed 0's pictures.

    python -m bench.colour_check --model-uri models:/isic-multiclass-smallcnn@champion
    python -m bench.colour_check --model-uri models:/isic-binary-smallcnn@champion --seeds 0,1
"""

from __future__ import annotations

import argparse
import functools
import statistics
from collections.abc import Callable

import pandas as pd
import torch
from torch import Tensor

from isic_tracking.interpret.colour_check import (
    chance_p,
    class_histograms,
    colour_histogram,
    distances,
    divergence,
    lesion_mask,
)
from isic_tracking.interpret.featvis import render
from isic_tracking.interpret.featvis.presets import preset, resolve_colours
from isic_tracking.stages.visualize.targets import chunks, class_targets, concat_results, objective
from isic_tracking.tracking.analysis import natural_images
from isic_tracking.tracking.registry import load_model

Score = Callable[[Tensor, Tensor], Tensor]


def kl_distances(pictures: Tensor, hists: Tensor) -> Tensor:
    """``[K, K]`` KL(picture || class): the score the check used before the class posterior."""
    return torch.stack(
        [divergence(colour_histogram(v.reshape(3, -1).T)[None], hists) for v in pictures]
    )


SCORES: dict[str, Score] = {"posterior": distances, "kl": kl_distances}


def passed(d: Tensor) -> int:
    return int((d.argmin(1) == torch.arange(len(d))).sum())


def chance_of(d: Tensor, classes: list[str]) -> float:
    """:func:`chance_p` of the pictures whose distances are ``d``."""
    nearest = d.argmin(1)
    table = pd.DataFrame(
        {
            "nearest_class": [classes[i] for i in nearest],
            "passed": (nearest == torch.arange(len(d))).tolist(),
        }
    )
    return chance_p(table, classes)


def render_logits(loaded, size: int, steps: int, seed: int, colour) -> Tensor:
    """The class-logit pictures ``[K, 3, size, size]`` in class order (one render per sign,
    as visualize)."""
    targets = class_targets(loaded.config)
    parts = []
    for chunk in chunks(targets, len(targets)):
        res = render(
            loaded.model, objective(chunk), size=size, steps=steps, seed=seed,
            mean=loaded.config["mean"], std=loaded.config["std"], **preset("tuned", colour),
        )  # fmt: skip
        parts.append((chunk, res))
    res = concat_results(parts)  # binary: + malignant, then - benign
    classes = [str(c) for c in loaded.config["classes"]]
    return res.images[[res.labels.index(c) for c in classes]]  # in the order of the classes


def images_by_class(batches, n_classes: int) -> dict[int, list[Tensor]]:
    """The natural images of each class (read once)."""
    by_class: dict[int, list[Tensor]] = {k: [] for k in range(n_classes)}
    for x, y in batches():
        for img, label in zip(x, y.tolist()):
            by_class[int(label)].append(img)
    return by_class


def natural_pictures(by_class: dict[int, list[Tensor]], seed: int, lesion_only: bool) -> Tensor:
    """One natural image of each class (the ``seed``-th of the class, cycling), whole or as
    its lesion pixels (a ``[3, 1, P]`` strip, cut to the shortest)."""
    picks = [imgs[seed % len(imgs)] for _, imgs in sorted(by_class.items())]
    if not lesion_only:
        return torch.stack(picks)
    strips = [p[:, lesion_mask(p)][:, None, :] for p in picks]
    side = min(s.shape[-1] for s in strips)
    return torch.stack([s[..., :side] for s in strips])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-uri", default="models:/isic-multiclass-smallcnn@champion")
    ap.add_argument("--split", default="val0", help="valK, train, test or all")
    ap.add_argument("--manifest", default=None, help="default: the training run's")
    ap.add_argument("--size", type=int, default=96, help="render size (the demo's: 96)")
    ap.add_argument("--steps", type=int, default=64, help="render steps (the demo's: 64)")
    ap.add_argument("--seeds", default="0,1,2,3")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    loaded = load_model(args.model_uri, "cpu")
    classes = [str(c) for c in loaded.config["classes"]]
    images, what = natural_images(loaded, args.manifest, args.split, args.size, 32, args.split)
    if images is None:
        raise SystemExit(f"no natural images: {what}")

    def batches():  # the images decoded once, read back by every pass
        return ((x, y) for x, y, _ in images)

    hists = class_histograms(batches(), len(classes))
    bases = {
        "imagenet": None,
        "data": resolve_colours("data", lambda: (x for x, _ in batches()), what)[0],
    }
    print(f"{args.model_uri}: {len(classes)} classes, {what}; {args.size} px, {args.steps} steps")
    print("\n| pictures | score | classes passed per seed | median | chance p (seed 0) |")
    print("|---|---|---|---:|---:|")
    sets: dict[str, Callable[[int], Tensor]] = {
        f"`tuned`, {name} colours": functools.partial(
            lambda seed, c: render_logits(loaded, args.size, args.steps, seed, c), c=basis
        )
        for name, basis in bases.items()
    }
    by_class = images_by_class(batches, len(classes))
    images.close()  # every pass over the natural images is done
    sets["natural: lesion pixels"] = lambda s: natural_pictures(by_class, s, True)
    sets["natural: whole image"] = lambda s: natural_pictures(by_class, s, False)
    for label, make in sets.items():
        counts: dict[str, list[int]] = {score: [] for score in SCORES}
        p: dict[str, float] = {}
        for seed in seeds:
            pictures = make(seed)
            for score, fn in SCORES.items():
                d = fn(pictures, hists)
                counts[score].append(passed(d))
                if seed == seeds[0]:
                    p[score] = chance_of(d, classes)
        for score, n in counts.items():
            print(
                f"| {label} | {score} | {', '.join(map(str, n))} of {len(classes)} | "
                f"{statistics.median(n):g} | {p[score]:.3g} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
