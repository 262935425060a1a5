"""Feature visualization on CPU: our engine vs torch-dreams and lucent, same request (issue 17).

Same model, layer, channels, image size and steps for every engine (``--isic-steps`` lets
ours run longer, to measure its time to an anchor's final activation), weights frozen for all:
  * isic:          ``render``'s default path (on CPU: bf16 autocast where native, channels-last
                   input, BatchNorm folded), preset ``tuned`` (visualize's default: the thesis's
                   priors at lr 0.2; ``--preset``/``--lr`` choose another), one batch;
  * isic_fp32:     the same render in fp32 with contiguous input (the model rewrites that go
                   with BatchNorm folding stay on): what bf16 autocast changes in the
                   activation reached;
  * isic_plain:    the engine before issue 17 (fp32, lr 0.05);
  * isic_direct:   ``render``'s default path with the wide 3x3 convs direct instead of by
                   Winograd (what :mod:`isic_tracking.interpret.featvis.winograd` gains; the
                   same as isic where the path is bf16, which does not use it);
  * torch_dreams:  torch-dreams 4.0, one ``Dreamer.render`` per channel;
  * lucent:        lucent 0.1.8, one ``render_vis`` with a batch objective per channel
                   (set-up: see bench/featvis_lucent.py).
Every engine's activation is tracked per step the same way (bench/featvis_track.py: final or
snapshot image -> ImageNet normalization -> the channel's spatial mean, fp32, weights frozen),
which gives the CPU time each engine needs to reach an anchor's final activation: the speed at
equal quality. Engines run once briefly (2 steps) as a warm-up, then alternate within each
repeat (and thread count), so load changes hit all; medians over repeats.

    python -m bench.featvis --threads 1,2 --repeats 3 --engines isic,torch_dreams,lucent
    python -m bench.featvis --arch vgg16 --layer features.28 --channels 2 --steps 30
    python -m bench.featvis --model-uri models:/isic-binary-smallcnn@champion   # MLflow store
    python -m bench.featvis --repeats 1 --threads 1 --engines isic,isic_fp32,isic_plain
"""

from __future__ import annotations

import argparse
import os
import statistics
from functools import partial

import torch

from bench.featvis_lucent import render_lucent
from bench.featvis_track import Tracker, clock
from isic_tracking.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.featvis import channel, evaluate, render
from isic_tracking.interpret.featvis.dreams import render_torch_dreams
from isic_tracking.interpret.featvis.presets import preset
from isic_tracking.models import create_model, resolve_layers

ANCHORS = ("torch_dreams", "lucent")
ENGINES = ("isic", "isic_fp32", "isic_plain", "isic_direct", *ANCHORS)
FP32 = {"amp": False, "channels_last": False, "progressive": 0.0}
OPTIONS = {
    "isic": {},
    "isic_fp32": FP32,
    "isic_plain": {**FP32, "lr": 0.05},
    "isic_direct": {"winograd": False},
}


def load_model(args) -> tuple[torch.nn.Module, str]:
    """A registered model (``--model-uri``), ImageNet weights when cached, else random init."""
    if args.model_uri:
        from isic_tracking.tracking.registry import load_model as load_registered

        return load_registered(args.model_uri).model, args.model_uri
    if args.weights in ("auto", "pretrained"):
        try:
            return create_model(args.arch, 1000, pretrained=True), "ImageNet (torch cache)"
        except IsicInputError:
            if args.weights == "pretrained":
                raise
    torch.manual_seed(0)
    return create_model(args.arch, 1000), "random init (seed 0)"


def engine_fn(name: str, model, layer: str, chans: list[int], args):
    """``fn(steps, on_step) -> final images`` for engine ``name``."""
    norm = {"mean": IMAGENET_MEAN, "std": IMAGENET_STD}
    if name in OPTIONS:
        # the preset (with its own lr), --lr, then the engine's options (isic_plain: lr 0.05)
        settings = {**preset(args.preset), **({"lr": args.lr} if args.lr else {}), **OPTIONS[name]}

        def run(steps, on_step):
            res = render(
                model, channel(layer, chans), size=args.size, steps=steps, seed=args.seed,
                record_every=0, on_step=on_step, **norm, **settings,
            )  # fmt: skip
            run.settings = res.settings
            return res.images

        return run
    if name == "torch_dreams":
        return lambda steps, on_step: render_torch_dreams(
            model, layer, chans, size=args.size, steps=steps, seed=args.seed,
            on_step=on_step, **norm,
        ).images  # fmt: skip
    return lambda steps, on_step: render_lucent(
        model, layer, chans, size=args.size, steps=steps, seed=args.seed, on_step=on_step
    )


def measure(fn, steps: int, every: int, score) -> dict:
    """One tracked run: CPU/wall seconds (tracker time removed), activation curve."""
    tracker = Tracker(steps, every)
    tracker.begin()
    start = clock()
    images = fn(steps, tracker)
    end = clock()
    cpu = end[0] - start[0] - tracker.overhead[0]
    wall = end[1] - start[1] - tracker.overhead[1]
    curve = tracker.curve(score)
    # the last snapshot is the final image: the activation column and the targets are the
    # same measurement as every point of the curve
    last = torch.cat([run[steps][2] for run in tracker.runs])
    assert torch.equal(last, images.float().cpu()), "the last snapshot is not the final image"
    return {"cpu": cpu, "wall": wall, "act": curve[steps], "curve": curve, "tracker": tracker}


def table(results: dict[str, list[dict]], n: int) -> list[str]:
    """Markdown rows: medians over repeats; time to each anchor's final activation."""
    med = {k: {m: statistics.median(r[m] for r in v) for m in ("cpu", "wall")}
           for k, v in results.items()}  # fmt: skip
    finals = {a: results[a][0]["act"] for a in ANCHORS if a in results}
    head = "| engine | steps | CPU s / channel | wall s | mean activation |"
    for a in finals:
        head += f" CPU s to {a}'s {finals[a]:.4g} | speed-up vs {a} (CPU, equal act.) |"
    rows = [head, "|---|" + "---:|" * (head.count("|") - 2)]
    for name, runs in results.items():
        row = f"| {name} | {max(runs[0]['curve'])} | {med[name]['cpu'] / n:.2f} | {med[name]['wall']:.1f} |"
        row += f" {runs[0]['act']:.4f} |"
        for a, target in finals.items():
            times = [r["tracker"].time_to(r["curve"], target) for r in runs]
            if any(t is None for t in times):
                row += " not reached | — |"
                continue
            t = statistics.median(times)
            row += f" {t:.1f} | **{med[a]['cpu'] / t:.1f}x** |"
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--arch", default="alexnet")
    p.add_argument("--model-uri", default="", help="a registered model instead of --arch")
    p.add_argument("--layer", default="last", help="layer name or first/last (default last conv)")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--steps", type=int, default=120)
    p.add_argument(
        "--isic-steps", type=int, default=0,
        help="steps of our engines (default --steps): more lets the time to an anchor's final "
        "activation be measured when our curve reaches it only after --steps",
    )  # fmt: skip
    p.add_argument("--channels", type=int, default=8, help="channels 0..N-1, one isic batch")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", default="1,2", help="torch CPU thread counts, comma-separated")
    p.add_argument("--weights", choices=["auto", "pretrained", "random"], default="auto")
    p.add_argument(
        "--preset", default="tuned",
        help="our engine's preset (default tuned: what visualize and sanity render)",
    )  # fmt: skip
    p.add_argument("--lr", type=float, default=0.0, help="our engine's lr (default: the preset's)")
    p.add_argument("--engines", default=",".join(ENGINES))
    p.add_argument("--track-every", type=int, default=10, help="snapshot every N steps")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    engines = [e for e in args.engines.split(",") if e]
    if unknown := set(engines) - set(ENGINES):
        p.error(f"--engines: unknown {sorted(unknown)}; choose from {', '.join(ENGINES)}")
    threads = [int(t) for t in args.threads.split(",")]
    model, weights = load_model(args)
    model.eval()
    layer = resolve_layers(model, args.layer)[0]
    chans = list(range(args.channels))
    fns = {e: engine_fn(e, model, layer, chans, args) for e in engines}
    objective = channel(layer, chans)
    score = partial(evaluate, model, objective, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    for fn in fns.values():  # warm-up: allocator, oneDNN kernels, lazy imports
        fn(2, None)
    results = {t: {e: [] for e in engines} for t in threads}
    for _ in range(args.repeats):
        for t in threads:
            torch.set_num_threads(t)
            for name, fn in fns.items():
                steps = (args.isic_steps or args.steps) if name.startswith("isic") else args.steps
                results[t][name].append(measure(fn, steps, args.track_every, score))
    path = getattr(fns.get("isic"), "settings", {})
    print(
        f"\n{args.model_uri or args.arch} `{layer}`, {args.size} px, {args.steps} steps "
        f"(ours {args.isic_steps or args.steps}), "
        f"{len(chans)} channels, weights: {weights}, preset {args.preset}"
        f"{f' at lr {args.lr}' if args.lr else ''}, "
        f"isic path: amp {path.get('amp')}, channels_last {path.get('channels_last')}, "
        f"stages {path.get('stages')}; repeats {args.repeats} (median), "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    for t in threads:
        print(f"\n{t} thread(s):\n")
        print("\n".join(table(results[t], len(chans))))
    print("\nmean activation per step (first repeat, 1st thread count):")
    for name, runs in results[threads[0]].items():
        curve = runs[0]["curve"]
        print(f"{name}: " + ", ".join(f"{s}:{v:.4f}" for s, v in curve.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
