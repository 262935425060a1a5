"""``visualize``: feature visualization by activation maximization (thesis §4.4, §5.4.1).

Renders, for each chosen layer, the images that maximize the mean activation of chosen filters
(``channels=top_n``: the most activated ones, from a ``filters`` run or a small pass over the
manifest's images; ``all``; explicit indices ``3,17,42``) or the class logits
(``channels=classes``). ``regularization`` takes one or more presets (``thesis``, ``none``,
``fourier``, ``maco``), so the thesis's with/without comparison (Fig. 29) is one flag
(``thesis,none``); ``engine`` our batched engine (``isic``), torch-dreams (``torch_dreams``, the
thesis's library) or both; ``compare_pretrained`` renders the ImageNet base next to the model.

Logs labelled grids (layer, filter, activation reached) under ``figures/``, every image as a PNG
under ``images/<layer>/``, ``tables/activations.csv`` (layer, channel, objective,
activation_reached, engine, regularization, model, file; read by ``sanity --fv_run``) and the
settings, tagged with the model's name, version and training run.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from entrypoints._common import count, optional, run_main, str2bool
from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.featvis import LOGITS, channel, class_logit, render
from isic_tracking.interpret.featvis.grids import comparison_grid, result_grid, save_png
from isic_tracking.interpret.featvis.presets import PRESETS, preset
from isic_tracking.interpret.featvis.render import RenderResult, check_request, layer_channels
from isic_tracking.models import conv_layers, resolve_layers
from isic_tracking.tracking import (
    download_artifacts,
    get_stage_run,
    load_model,
    log_dataframe,
    log_figure,
    log_image_files,
    log_metrics,
    stage_run,
    tag,
    training_manifest,
)
from isic_tracking.utils import resolve_device, seed_everything

STAGE = "visualize"
ENGINES = ("isic", "torch_dreams")
MAX_ALL_CHANNELS = 512


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=STAGE, description=__doc__)
    p.add_argument(
        "--model_uri",
        default="models:/isic-binary-alexnet@champion",
        help="models:/name@alias, models:/name/version, runs:/<id>/checkpoint or pretrained:<arch>",
    )
    p.add_argument(
        "--compare_pretrained",
        type=str2bool,
        default=False,
        help="also render the ImageNet base (pretrained:<arch>) with the same channels",
    )
    p.add_argument("--layers", default="first,last", help="first, last, all or layer names")
    p.add_argument(
        "--channels",
        default="top_n",
        help="top_n (most activated filters), all, classes (class logits) or indices '3,17,42'",
    )
    p.add_argument("--top_n", type=count, default=5, help="filters per layer for top_n")
    p.add_argument(
        "--filters_run", type=optional, default=None, help="a filters run: its top filters"
    )
    p.add_argument("--steps", type=count, default=200)
    p.add_argument(
        "--image_size", type=count, default=0, help="render size (0: the model's input size)"
    )
    p.add_argument(
        "--regularization",
        default="thesis",
        help=f"preset(s), comma-separated: {', '.join(PRESETS)}",
    )
    p.add_argument("--engine", default="isic", help=f"engine(s), comma-separated: {ENGINES}")
    p.add_argument("--seed", type=count, default=0)
    p.add_argument("--batch_size", type=count, default=16, help="images rendered per forward")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--manifest",
        type=optional,
        default=None,
        help="images for top_n without filters_run (default: the training run's manifest)",
    )
    p.add_argument(
        "--n_images", type=count, default=32, help="images of the top_n pass (no filters_run)"
    )
    p.add_argument(
        "--allow_random",
        type=str2bool,
        default=False,
        help="pretrained:<arch> only: random init when no weights are cached (demos, tests)",
    )
    return p


# --------------------------------------------------------------------------- what to render


@dataclass
class Target:
    """One picture to render: a channel of a layer, or a (signed) class logit."""

    layer: str  # "" for class logits
    channel: int
    sign: float = 1.0
    label: str = ""


def _choices(spec: str, allowed: Sequence[str], what: str) -> list[str]:
    items = [s.strip() for s in spec.split(",") if s.strip()]
    bad = [s for s in items if s not in allowed]
    if bad or not items:
        raise IsicInputError(f"unknown {what} {bad or spec!r}; choose from {', '.join(allowed)}")
    return list(dict.fromkeys(items))


def _class_targets(config: dict) -> list[Target]:
    classes = [str(c) for c in config.get("classes", [])]
    n = int(config["num_outputs"])
    if n == 1:  # binary: one logit, + is malignant, - is benign
        names = classes if len(classes) == 2 else ["benign", "malignant"]
        return [Target("", 0, 1.0, names[1]), Target("", 0, -1.0, names[0])]
    return [Target("", i, 1.0, classes[i] if i < len(classes) else str(i)) for i in range(n)]


def _filters_run_top(run_id: str, tmp: str) -> pd.DataFrame:
    get_stage_run(run_id, "filters")  # IsicInputError when it is not a filters run
    table = pd.read_csv(download_artifacts(run_id, "tables/class_filters.csv", tmp))
    missing = {"filter", "rank"} - set(table.columns)
    if missing:
        raise IsicInputError(
            f"filters run {run_id}: tables/class_filters.csv lacks column(s) {sorted(missing)}"
        )
    return table


def _top_from_table(
    table: pd.DataFrame, layer: str, last: str, top_n: int
) -> dict[int, str] | None:
    """Each class's ``top_n`` filters of ``layer`` (best rank first, then percent), with the
    classes they rank for; None when the table has no rows for ``layer``."""
    if "layer" in table.columns:
        rows = table[table["layer"] == layer]
    else:  # an old table without a layer column holds the last layer only
        rows = table if layer == last else table.iloc[:0]
    rows = rows[rows["rank"] <= top_n]
    if rows.empty:
        return None
    sort = ["rank", "percent"] if "percent" in rows.columns else ["rank"]
    rows = rows.sort_values(sort, ascending=[True, False][: len(sort)])
    classes = rows["class"].astype(str) if "class" in rows.columns else pd.Series("", rows.index)
    top: dict[int, list[str]] = {}
    for f, c in zip(rows["filter"].astype(int), classes):
        top.setdefault(f, []).append(c)
    return {f: ", ".join(dict.fromkeys(c for c in cs if c)) for f, cs in top.items()}


def _top_on_the_fly(model, layers, args, loaded, size, device) -> dict[str, list[int]]:
    """Most activated filters (mean over images of each filter's max) on a few manifest images."""
    from isic_tracking.data.dataset import make_loader
    from isic_tracking.data.defaults import default_manifest
    from isic_tracking.data.manifest import read_manifest
    from isic_tracking.data.transforms import build_transforms
    from isic_tracking.interpret.activations import activation_stats

    path = args.manifest
    if path is None:
        path = (
            training_manifest(loaded.train_run_id)
            if loaded.train_run_id
            else str(default_manifest("binary"))
        )
    df = read_manifest(path)
    n = min(args.n_images, len(df))
    rows = df.sample(n=n, random_state=args.seed).reset_index(drop=True)
    cfg = loaded.config
    loader = make_loader(
        rows,
        build_transforms(size, train=False, mean=cfg["mean"], std=cfg["std"]),
        args.batch_size,
    )
    stats = activation_stats(model, loader, layers, device, reduce=("max",))
    print(f"top_n: ranked filters on {n} images of {path}")
    return {
        name: s.max.mean(0).argsort(descending=True)[: args.top_n].tolist()
        for name, s in stats.items()
    }


def _channel_targets(model, args, loaded, size, device, tmp) -> dict[str, list[Target]]:
    """The channels of every layer to render, each with a note (the classes it ranks for)."""
    layers = resolve_layers(model, args.layers, default="first,last")
    spec = args.channels.strip()
    chans: dict[str, dict[int, str]] = {}
    if spec == "all":
        for name in layers:
            c = layer_channels(model, name, size)
            if c > MAX_ALL_CHANNELS:
                raise IsicInputError(
                    f"channels=all: layer {name!r} has {c} channels (> {MAX_ALL_CHANNELS}); "
                    "use top_n or explicit indices"
                )
            chans[name] = dict.fromkeys(range(c), "")
    elif spec == "top_n":
        if args.filters_run:
            table = _filters_run_top(args.filters_run, tmp)
            for name in layers:
                top = _top_from_table(table, name, conv_layers(model)[-1], args.top_n)
                if top is not None:
                    chans[name] = top
        todo = [name for name in layers if name not in chans]
        if todo:
            if args.filters_run:
                print(f"note: filters run {args.filters_run} has no rows for {todo}: ranked here")
            for name, top in _top_on_the_fly(model, todo, args, loaded, size, device).items():
                chans[name] = dict.fromkeys(top, "")
    elif re.fullmatch(r"\d+(\s*,\s*\d+)*", spec):
        chans = {name: dict.fromkeys((int(s) for s in spec.split(",")), "") for name in layers}
    else:
        raise IsicInputError(
            f"channels={spec!r}: use top_n, all, classes or comma-separated indices like 3,17,42"
        )
    return {
        name: [
            Target(name, c, 1.0, f"{name}:{c}" + (f" ({note})" if note else ""))
            for c, note in chans[name].items()
        ]
        for name in layers
    }


# --------------------------------------------------------------------------- rendering


def _objective(targets: list[Target]):
    if targets[0].layer != LOGITS:
        return channel(targets[0].layer, [t.channel for t in targets])
    obj = class_logit([t.channel for t in targets])
    return -obj if targets[0].sign < 0 else obj


def _chunks(targets: list[Target], batch_size: int) -> list[list[Target]]:
    """Batches of at most ``batch_size`` with one sign each (a sign is per objective)."""
    out: list[list[Target]] = []
    for t in targets:
        if out and len(out[-1]) < batch_size and out[-1][0].sign == t.sign:
            out[-1].append(t)
        else:
            out.append([t])
    return out


def _render_targets(model, targets, engine, reg, args, size, config, device) -> RenderResult:
    """All targets of one layer with one engine and preset, in batches; results concatenated."""
    parts = []
    for chunk in _chunks(targets, max(1, args.batch_size)):
        if engine == "torch_dreams":
            from isic_tracking.interpret.featvis.dreams import render_torch_dreams

            res = render_torch_dreams(
                model, chunk[0].layer, [t.channel for t in chunk], size=size,
                steps=args.steps, seed=args.seed, device=device,
                mean=config["mean"], std=config["std"],
            )  # fmt: skip
        else:
            res = render(
                model, _objective(chunk), size=size, steps=args.steps, seed=args.seed,
                device=device, mean=config["mean"], std=config["std"], **preset(reg),
            )  # fmt: skip
        parts.append((chunk, res))
    first = parts[0][1]
    return RenderResult(
        images=torch.cat([r.images for _, r in parts]),
        activation=torch.cat([r.activation for _, r in parts]),
        history=torch.empty(0),
        history_steps=torch.empty(0, dtype=torch.long),
        labels=[t.label for chunk, _ in parts for t in chunk],
        objective=first.objective,
        seconds=sum(r.seconds for _, r in parts),
        settings=first.settings,
    )


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _folder(layer: str) -> str:
    return _safe(layer) if layer else "logits"


def _objective_name(t: Target) -> str:
    """As in the table: ``channel(layer, c)``, ``class_logit(c)``, ``-class_logit(c)``."""
    name = f"channel({t.layer}, {t.channel})" if t.layer else f"class_logit({t.channel})"
    return f"-{name}" if t.sign < 0 else name


def _file(model_key: str, engine: str, reg: str, t: Target) -> str:
    kind = "ch" if t.layer else ("neglogit" if t.sign < 0 else "logit")
    return f"images/{_folder(t.layer)}/{model_key}_{engine}_{reg}_{kind}{t.channel:04d}.png"


def _save(res: RenderResult, targets, model_key, engine, reg, out: Path) -> list[dict]:
    """Write every image as a PNG; the table rows that describe them."""
    rows = []
    for t, img, act in zip(targets, res.images, res.activation):
        rel = _file(model_key, engine, reg, t)
        save_png(img, out / rel)
        rows.append(
            {
                "layer": t.layer or "logits",
                "channel": t.channel,
                "objective": _objective_name(t),
                "activation_reached": float(act),
                "engine": engine,
                "regularization": reg,
                "model": model_key,
                "label": t.label,
                "file": rel,
            }
        )
    return rows


def _runs(models: dict, engines: list[str], regs: list[str]):
    """(model key, loaded model, engine, preset) of every render; torch-dreams has its own."""
    for key, m in models.items():
        for engine in engines:
            for reg in regs if engine == "isic" else ["torch_dreams"]:
                yield key, m, engine, reg


# --------------------------------------------------------------------------- main


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    regs = _choices(args.regularization, list(PRESETS), "regularization")
    engines = _choices(args.engine, ENGINES, "engine")
    if min(args.steps, args.batch_size, args.top_n) < 1:
        raise IsicInputError("steps, batch_size and top_n must be >= 1")
    seed_everything(args.seed)
    device = resolve_device(args.device)
    loaded = load_model(args.model_uri, device, allow_random=args.allow_random)
    size = args.image_size or int(loaded.config["image_size"])
    classes_mode = args.channels.strip() == "classes"
    if classes_mode and "torch_dreams" in engines:
        raise IsicInputError("engine torch_dreams renders channels only: use engine=isic")
    models = {"model": loaded}
    if args.compare_pretrained:
        if classes_mode:
            print("note: compare_pretrained skipped: the ImageNet base has no logits of ours")
        elif args.model_uri.startswith("pretrained:"):
            print("note: compare_pretrained skipped: the model is the ImageNet base already")
        else:
            base_uri = f"pretrained:{loaded.config['arch']}"
            models["imagenet"] = load_model(base_uri, device, allow_random=args.allow_random)

    with tempfile.TemporaryDirectory() as tmp:
        if classes_mode:
            groups = {LOGITS: _class_targets(loaded.config)}
        else:
            groups = _channel_targets(loaded.model, args, loaded, size, device, tmp)
        for targets in groups.values():  # bad channel or size: fail before the run starts
            for m in models.values():
                check_request(m.model, _objective(targets), size)
        params = {
            **vars(args),
            "resolved.image_size": size,
            "resolved.channels": {
                _folder(n): ",".join(str(t.channel) for t in ts) for n, ts in groups.items()
            },
        }
        tags = dict(loaded.tags)
        if args.filters_run:
            tags[tag.FILTERS_RUN] = args.filters_run
        out = Path(tmp) / "out"
        rows: list[dict] = []
        with stage_run(STAGE, params, tags=tags, run_name=STAGE):
            for layer_name, targets in groups.items():
                folder, results = _folder(layer_name), {}
                for key, m, engine, reg in _runs(models, engines, regs):
                    res = _render_targets(
                        m.model, targets, engine, reg, args, size, m.config, device
                    )
                    results[f"{key} / {engine} / {reg}"] = res
                    rows += _save(res, targets, key, engine, reg, out)
                    name = f"{folder}/{key}/{engine}/{reg}"
                    log_metrics(
                        {
                            f"activation_mean/{name}": res.activation.mean(),
                            f"seconds/{name}": res.seconds,
                        }
                    )
                    title = (
                        f"{m.tags.get('model.name', m.uri)} | {layer_name or 'class logits'} | "
                        f"{engine} | {reg} | {args.steps} steps | {size} px"
                    )
                    log_figure(
                        result_grid(res, title), f"figures/{folder}/{key}_{engine}_{reg}.png"
                    )
                    print(
                        f"{name}: {len(targets)} images, mean activation "
                        f"{res.activation.mean():.3g}, {res.seconds:.1f} s"
                    )
                if len(results) > 1:
                    title = f"{layer_name or 'class logits'}: comparison"
                    log_figure(comparison_grid(results, title), f"figures/{folder}/comparison.png")
            log_image_files(out / "images", "images")
            log_dataframe(pd.DataFrame(rows), "tables/activations.csv")
    print(f"visualize: {len(rows)} images, layers {', '.join(map(_folder, groups))}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
