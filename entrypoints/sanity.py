"""``sanity``: how much do feature visualizations resemble what the model sees in real images?

Path similarity of feature visualizations vs natural images of their class across the
model's layers, next to baselines (natural vs natural, noise vs natural, unregularized vs
regularized), a layer x layer correlation heatmap, cascading model randomization
(Adebayo et al. 2018) and, with ``--reference_model_uri``, transferability (Fel et al.
2023). Visualizations come from a ``visualize`` run (``--fv_run``) or are rendered here
with the featvis engine: the ``top_k`` most class-selective channels of each class in the
last conv layer, with and without regularization, and the class logits (few steps by
default, for speed).
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image

from entrypoints._common import count, optional, run_main, str2bool
from isic_tracking.errors import IsicInputError
from isic_tracking.interpret import featvis as fv
from isic_tracking.interpret import sanity as S
from isic_tracking.interpret.featvis.presets import PRESETS, preset
from isic_tracking.interpret.randomization import (
    cascade_levels,
    cascading_randomization,
    parametrized_layers,
    plot_randomization,
    plot_randomization_images,
    transferability,
)
from isic_tracking.interpret.similarity import METRICS
from isic_tracking.models import conv_layers, resolve_layers
from isic_tracking.tracking import (
    download_artifacts,
    get_stage_run,
    load_model,
    log_dataframe,
    log_figure,
    log_manifest_input,
    log_metrics,
    stage_run,
    tag,
)
from isic_tracking.tracking.analysis import split_rows
from isic_tracking.utils import resolve_device, seed_everything

STAGE = "sanity"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=STAGE, description=__doc__)
    p.add_argument("--model_uri", default="models:/isic-binary-alexnet@champion")
    p.add_argument(
        "--fv_run",
        type=optional,
        default=None,
        help="id of a `visualize` run; empty: render the visualizations here",
    )
    p.add_argument(
        "--manifest", type=optional, default=None, help="default: the training run's manifest"
    )
    p.add_argument(
        "--split",
        default="val0",
        help="natural images: valK (validation rows of fold K of the training run), train, "
        "test or all (the manifest's split column)",
    )
    p.add_argument(
        "--layers",
        default="all",
        help="all (every conv layer), named (every named leaf layer), first, last or names",
    )
    p.add_argument("--metric", default="spearman", choices=METRICS)
    p.add_argument("--n_images", type=count, default=20, help="natural images per class")
    p.add_argument(
        "--fit_n_images",
        type=str2bool,
        default=False,
        help="a split with fewer images of a class: use what it holds (logged) instead of failing",
    )
    p.add_argument(
        "--reference_model_uri",
        type=optional,
        default=None,
        help="another model (fold or arch) for transferability of class-logit visualizations",
    )
    p.add_argument("--steps", type=count, default=48, help="render steps (no fv_run)")
    p.add_argument(
        "--image_size", type=count, default=0, help="render size (0: the model's input size)"
    )
    p.add_argument("--top_k", type=count, default=5, help="visualizations per class")
    p.add_argument(
        "--regularization",
        default="thesis",
        choices=[k for k in PRESETS if k != "none"],
        help="featvis preset of the rendered visualizations; their twins use `none`",
    )
    p.add_argument("--pooling", default="mean", choices=S.POOLINGS)
    p.add_argument(
        "--standardize",
        type=str2bool,
        default=False,
        help="z-score each unit over the natural images before comparing (see sanity.py)",
    )
    p.add_argument(
        "--randomize",
        default="auto",
        help="cascading randomization cut points: auto (head + 3 conv layers), none, or names",
    )
    p.add_argument("--batch_size", type=count, default=32)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=count, default=0)
    p.add_argument(
        "--allow_random",
        type=str2bool,
        default=False,
        help="pretrained:<arch> URIs only: random init when no weights are cached (demos, tests)",
    )
    return p


# --------------------------------------------------------------------------- inputs


def _ordered(model: torch.nn.Module, names: Sequence[str]) -> list[str]:
    """Layer names sorted shallow to deep (definition order)."""
    order = {n: i for i, (n, _) in enumerate(model.named_modules())}
    return sorted(names, key=order.__getitem__)


def _natural_rows(args, loaded) -> tuple[pd.DataFrame, str, str]:
    """(rows of the requested split, manifest path, a description for messages)."""
    rows, path = split_rows(loaded, args.manifest, args.split)
    return rows, path, f"split {args.split!r} of {path}"


# --------------------------------------------------------------------------- visualizations


def _objective(table: pd.DataFrame):
    """One per-element objective for rows of one kind (class logits or channels of one layer)."""
    kinds = table["kind"].unique().tolist()
    if kinds == ["channel"]:
        (layer,) = table["layer"].unique().tolist()
        return fv.channels(layer, table["channel"].astype(int).tolist())
    idx = torch.tensor(table["channel"].to_numpy(dtype="int64"))
    sign = torch.tensor(table["sign"].to_numpy(dtype="float32"))
    labels = table["label"].tolist()

    def fn(acts):
        out = acts[fv.LOGITS].float()
        return out[torch.arange(out.shape[0], device=out.device), idx.to(out.device)] * sign.to(
            out.device
        )

    return fv.Objective(fn, "signed class logits", [fv.LOGITS], len(table), labels)


def _render(model, table: pd.DataFrame, args, size: int, mean, std, regularization: str, seed: int):
    """Render every row of ``table`` (one batch per kind/layer): images ``[B, 3, S, S]``, values."""
    images = torch.empty(len(table), 3, size, size)
    reached = torch.empty(len(table))
    groups = table.groupby(["kind", "layer"], sort=False).indices
    for idx in groups.values():
        part = table.iloc[idx]
        res = fv.render(
            model,
            _objective(part),
            size=size,
            steps=args.steps,
            seed=seed,
            mean=mean,
            std=std,
            **preset(regularization),
        )
        images[idx] = res.images.float()
        reached[idx] = res.activation.float()
    return images, reached


def _objective_table(
    classes: list[str], num_outputs: int, layer: str | None, channels: torch.Tensor | None
) -> pd.DataFrame:
    """What to render: the class logit of every class, then channels (with their target class)."""
    rows = []
    for c, name in enumerate(classes):
        if num_outputs == 1:  # one logit = P(malignant): benign pictures minimize it
            rows.append(dict(kind="class_logit", layer="", channel=0, sign=1.0 if c else -1.0))
        else:
            rows.append(dict(kind="class_logit", layer="", channel=c, sign=1.0))
        sign = "-" if rows[-1]["sign"] < 0 else ""
        rows[-1].update(
            target=c, label=f"class {name}", objective=f"{sign}class_logit({rows[-1]['channel']})"
        )
    for c, chans in enumerate([] if channels is None else channels.tolist()):
        for ch in chans:
            rows.append(
                dict(kind="channel", layer=layer, channel=int(ch), sign=1.0, target=c)
                | dict(label=f"{layer}:{int(ch)} ({classes[c]})")
                | dict(objective=f"channel({layer}, {int(ch)})")
            )
    return pd.DataFrame(rows)


def _logit_target(label: str, objective: str, channel: int, classes: list[str]) -> int:
    """Class of a class-logit visualization: its label when it names a class, else the logit
    index (with one logit, a negated objective is the first class, benign)."""
    if label in classes:
        return classes.index(label)
    if len(classes) == 2 and objective.lstrip().startswith("-"):
        return 0
    return 1 if len(classes) == 2 else int(channel)


def _one_of(table: pd.DataFrame, column: str, preferred: Sequence[str]) -> pd.DataFrame:
    """Rows of one value of ``column`` (the first preferred one present, else the first)."""
    if column not in table.columns or table[column].nunique() <= 1:
        return table
    values = table[column].astype(str)
    keep = next((v for v in preferred if (values == v).any()), values.iloc[0])
    return table[values == keep]


def _from_visualize_run(
    run_id: str, classes: list[str], tmp: str
) -> tuple[pd.DataFrame, torch.Tensor]:
    """The visualizations of a ``visualize`` run: (table with kind/layer/channel/target/label,
    images ``[N, 3, S, S]`` in [0, 1]).

    Reads ``tables/activations.csv`` (layer, channel, objective, activation_reached, engine,
    regularization, model, label, file) and the PNGs it names. Keeps the fine-tuned model's
    pictures (not the ImageNet base's), one engine (ours when present) and, of the
    regularization presets, ``thesis`` (or the first) plus ``none`` (the twins).
    """
    table = pd.read_csv(download_artifacts(run_id, "tables/activations.csv", tmp))
    missing = [c for c in ("layer", "channel", "file") if c not in table.columns]
    if missing:
        raise IsicInputError(
            f"visualize run {run_id}: tables/activations.csv lacks column(s) {missing}"
        )
    if "model" in table.columns:
        table = table[table["model"].astype(str) == "model"]
    table = _one_of(table, "engine", ["isic"])
    if "regularization" in table.columns:
        regs = table["regularization"].astype(str)
        main = _one_of(table[regs != "none"], "regularization", ["thesis"])
        table = pd.concat([main, table[regs == "none"]]) if len(main) else table
    table = table.reset_index(drop=True)
    if table.empty:
        raise IsicInputError(f"visualize run {run_id} has no visualizations of the model")
    table["layer"] = table["layer"].fillna("").astype(str).replace("logits", "")
    objective = table.get("objective", pd.Series("", index=table.index)).fillna("").astype(str)
    table["objective"] = objective
    is_logit = (table["layer"] == "") | objective.str.contains("class_logit")
    table["kind"] = np.where(is_logit, "class_logit", "channel")
    table.loc[is_logit, "layer"] = ""
    table["sign"] = np.where(objective.str.lstrip().str.startswith("-"), -1.0, 1.0)
    labels = table.get("label", pd.Series("", index=table.index)).fillna("").astype(str)
    table["target"] = [
        _logit_target(lb, o, int(c), classes) if k == "class_logit" else -1
        for lb, o, c, k in zip(labels, objective, table["channel"], table["kind"])
    ]
    table["label"] = [
        f"class {classes[t]}" if k == "class_logit" else f"{ly}:{int(c)}"
        for ly, c, k, t in zip(table["layer"], table["channel"], table["kind"], table["target"])
    ]
    root = download_artifacts(run_id, "images", tmp).parent  # "file" is relative to the run
    imgs = []
    for f in table["file"].astype(str):
        with Image.open(root / f) as im:
            imgs.append(np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0)
    size = max(i.shape[0] for i in imgs)
    images = torch.stack(
        [
            F.interpolate(
                torch.tensor(i).permute(2, 0, 1)[None], size=(size, size), mode="bilinear"
            )[0]
            for i in imgs
        ]
    )
    return table, images


# --------------------------------------------------------------------------- main

_METRIC_PREFIX = {
    "visualization": "similarity",
    "natural_same_class": "baseline_same_class",
    "natural_other_classes": "baseline_other_classes",
    "noise": "baseline_noise",
    "unregularized": "baseline_unregularized",
    "unregularized_vs_regularized": "unregularized_vs_regularized",
    "class_logit": "similarity_class_logit",
}


def _log_path_similarity(res: S.PathSimilarityResult) -> None:
    metrics = {}
    for r in res.summary.itertuples():
        prefix = _METRIC_PREFIX.get(r.comparison, r.comparison)
        metrics[f"{prefix}/{r.layer}"] = r.mean
    for comp, part in res.summary.groupby("comparison"):
        metrics[f"{_METRIC_PREFIX.get(comp, comp)}_mean"] = part["mean"].mean()
    log_metrics(metrics)
    log_dataframe(res.summary, "tables/path_similarity.csv")
    log_dataframe(res.scores, "tables/path_similarity_items.csv")
    log_figure(S.plot_path_similarity(res.summary, res.metric), "figures/path_similarity.png")
    if res.layer_corr is not None:
        corr = pd.DataFrame(res.layer_corr.cpu().numpy(), index=res.layers, columns=res.layers)
        log_dataframe(corr.reset_index(names="layer"), "tables/layer_correlation.csv")
        log_figure(
            S.plot_layer_correlation(res.layer_corr, res.layers), "figures/layer_correlation.png"
        )


@dataclass
class _Visuals:
    """The visualizations compared, with their twins and the class-logit set."""

    main: pd.DataFrame  # kind, layer, channel, target, label, ... one row per image
    images: torch.Tensor
    twins: torch.Tensor | None  # unregularized twin of each main row, or None
    logits: pd.DataFrame  # class-logit visualizations (transferability, extra curve)
    logit_images: torch.Tensor
    rendered_logits: bool  # rendered here with this run's settings (randomization reuses them)


def _render_logits(ctx, args) -> tuple[pd.DataFrame, torch.Tensor]:
    table = _objective_table(ctx.classes, ctx.num_outputs, None, None)
    images, reached = _render(
        ctx.model, table, args, ctx.render_size, ctx.mean, ctx.std, args.regularization, args.seed
    )
    table["activation_reached"] = reached.numpy()
    table["regularization"] = args.regularization
    return table, images


def _rendered_visuals(ctx, args, natural, nat_class) -> _Visuals:
    """Class-selective channels of the last conv layer (top_k per class) and class logits."""
    deepest = conv_layers(ctx.model)[-1]
    acts = S.activation_vectors(ctx.model, natural, [deepest], pooling="mean", **ctx.kw)
    chans = S.class_selective_channels(acts[deepest], nat_class, args.top_k, len(ctx.classes))
    table = _objective_table(ctx.classes, ctx.num_outputs, deepest, chans)
    table = table[table["kind"] == "channel"].reset_index(drop=True)
    images, reached = _render(
        ctx.model, table, args, ctx.render_size, ctx.mean, ctx.std, args.regularization, args.seed
    )
    table["activation_reached"] = reached.numpy()
    table["regularization"] = args.regularization
    twins, _ = _render(
        ctx.model, table, args, ctx.render_size, ctx.mean, ctx.std, "none", args.seed
    )
    logits, logit_images = _render_logits(ctx, args)
    return _Visuals(table, images, twins, logits, logit_images, rendered_logits=True)


def _twins(
    table: pd.DataFrame, images: torch.Tensor
) -> tuple[pd.DataFrame, torch.Tensor, torch.Tensor | None]:
    """Split a run's rows into regularized ones and their ``none`` twins (same objective)."""
    if "regularization" not in table.columns:
        return table, images, None
    none = (table["regularization"].astype(str) == "none").to_numpy()
    if none.all() or not none.any():
        return table, images, None
    key = ["kind", "layer", "channel", "sign"]
    reg, unreg = table[~none].reset_index(drop=True), table[none].reset_index(drop=True)
    pos = {tuple(r): i for i, r in enumerate(unreg[key].itertuples(index=False))}
    match = [pos.get(tuple(r)) for r in reg[key].itertuples(index=False)]
    if any(m is None for m in match):
        return reg, images[torch.tensor(~none)], None
    return reg, images[torch.tensor(~none)], images[torch.tensor(none)][match]


def _run_visuals(ctx, args, natural, nat_class, tmp: str) -> _Visuals:
    """A visualize run's channel pictures of its deepest layer (top_k per class) and logits."""
    table, images = _from_visualize_run(args.fv_run, ctx.classes, tmp)
    table, images, twins = _twins(table, images)
    channel = (table["kind"] == "channel").to_numpy()
    logit = ~channel
    if logit.any():
        logits, logit_images = table[logit].reset_index(drop=True), images[torch.tensor(logit)]
        rendered = False
    else:
        (logits, logit_images), rendered = _render_logits(ctx, args), True
    if not channel.any():  # class-logit pictures only: they are the compared set
        return _Visuals(logits, logit_images, twins, logits, logit_images, rendered)
    deepest = _ordered(ctx.model, table.loc[channel, "layer"].unique().tolist())[-1]
    keep = channel & (table["layer"] == deepest).to_numpy()
    main = table[keep].reset_index(drop=True)
    acts = S.activation_vectors(ctx.model, natural, [deepest], pooling="mean", **ctx.kw)
    chans = torch.tensor(main["channel"].to_numpy(dtype="int64"))
    main["target"] = S.channel_classes(acts[deepest], nat_class, chans, len(ctx.classes)).numpy()
    main["label"] = [f"{r.label} ({ctx.classes[r.target]})" for r in main.itertuples()]
    top = S.select_top(main, k=args.top_k).index.to_numpy()
    sel = torch.tensor(np.flatnonzero(keep)[top])
    return _Visuals(
        main.loc[top].reset_index(drop=True),
        images[sel],
        None if twins is None else twins[sel],
        logits,
        logit_images,
        rendered,
    )


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    seed_everything(args.seed)
    device = resolve_device(args.device)
    if args.fv_run:  # bad input first, before any heavy work
        get_stage_run(args.fv_run, "visualize")
    loaded = load_model(args.model_uri, device, allow_random=args.allow_random)
    model, cfg = loaded.model.eval(), loaded.config
    classes = [str(c) for c in cfg["classes"]]
    size = int(cfg.get("image_size", 224))
    layers = _ordered(model, resolve_layers(model, args.layers, default="all"))
    levels = _levels(model, args.randomize)
    reference = None
    if args.reference_model_uri:
        reference = load_model(args.reference_model_uri, device, allow_random=args.allow_random)
        if [str(c) for c in reference.config["classes"]] != classes:
            raise IsicInputError(
                f"reference model {args.reference_model_uri} predicts "
                f"{reference.config['classes']}, not {classes}: compare models of one task"
            )
    rows, manifest_path, where = _natural_rows(args, loaded)
    n_used = (
        S.images_per_class(rows, args.n_images, classes) if args.fit_n_images else args.n_images
    )
    adapted = ""
    if n_used < args.n_images:
        adapted = f"{where} holds fewer than n_images={args.n_images} images of some class"
        adapted += f": {n_used} per class used"
        print(f"sanity: {adapted}")
    sample = S.sample_per_class(rows, n_used, classes, seed=args.seed, where=where)
    natural = S.load_images(sample, size)
    nat_class = torch.tensor(sample["label"].to_numpy(dtype="int64"))
    ctx = SimpleNamespace(
        model=model,
        classes=classes,
        num_outputs=int(cfg["num_outputs"]),
        render_size=args.image_size or size,
        mean=cfg["mean"],
        std=cfg["std"],
        kw=dict(
            mean=cfg["mean"], std=cfg["std"], image_size=size, batch_size=args.batch_size,
            device=device,
        ),
    )  # fmt: skip

    if args.fv_run:
        with tempfile.TemporaryDirectory() as tmp:
            vis = _run_visuals(ctx, args, natural, nat_class, tmp)
    else:
        vis = _rendered_visuals(ctx, args, natural, nat_class)
    target = torch.tensor(vis.main["target"].to_numpy(dtype="int64"))
    logit_target = torch.tensor(vis.logits["target"].to_numpy(dtype="int64"))
    compared = vis.main["kind"].iloc[0]
    extra = {"class_logit": (vis.logit_images, logit_target)} if compared == "channel" else None

    params = dict(vars(args))
    params.update(
        n_images_used=n_used,
        layers_resolved=layers,
        manifest_resolved=manifest_path,
        render_size=ctx.render_size,
    )
    tags = dict(loaded.tags)
    tags[tag.SANITY_VISUALIZATIONS] = compared
    if adapted:
        tags[tag.ADAPTED] = adapted
    if args.fv_run:
        tags[tag.FV_RUN] = args.fv_run
    with stage_run(STAGE, params=params, tags=tags):
        log_manifest_input(sample, name="sanity-natural-images", context="natural")
        shown = pd.concat([vis.main, vis.logits]) if extra else vis.main
        log_dataframe(shown, "tables/visualizations.csv")
        log_figure(
            S.plot_image_grid(
                torch.cat([vis.images, vis.logit_images]) if extra else vis.images,
                shown["label"].tolist(),
                title="Visualizations compared",
            ),
            "figures/visualizations.png",
        )
        res = S.path_similarity_analysis(
            model,
            layers,
            natural,
            nat_class,
            vis.images,
            target,
            unregularized=vis.twins,
            noise=S.noise_images(len(target), ctx.render_size, seed=args.seed),
            extra=extra,
            metric=args.metric,
            pooling=args.pooling,
            standardize=args.standardize,
            **ctx.kw,
        )
        _log_path_similarity(res)
        if levels:
            _randomization(ctx, args, vis, levels)
        if reference is not None:
            _transferability(reference, args, vis, logit_target, device)
    return 0


def _levels(model: torch.nn.Module, spec: str) -> list[str]:
    """Randomization cut points: ``auto``, ``none`` or layer names (checked to exist)."""
    if spec == "none":
        return []
    if spec == "auto":
        return cascade_levels(model)
    names = [s.strip() for s in spec.split(",") if s.strip()]
    known = {n for n, _ in model.named_modules()}
    bad = [n for n in names if n not in known]
    if bad:
        raise IsicInputError(
            f"randomize: layer(s) {bad} do not exist in {type(model).__name__}; use auto, none "
            f"or names among its parametrized layers: {', '.join(parametrized_layers(model))}"
        )
    return names


def _randomization(ctx, args, vis: _Visuals, levels: list[str]) -> None:
    """Cascading randomization of the class-logit visualizations (Adebayo et al. 2018)."""
    table = _objective_table(ctx.classes, ctx.num_outputs, None, None)

    def render_fn(m, seed):
        if m is ctx.model and seed == args.seed and vis.rendered_logits:
            return vis.logit_images  # already rendered with these settings
        return _render(
            m, table, args, ctx.render_size, ctx.mean, ctx.std, args.regularization, seed
        )[0]

    rand = cascading_randomization(ctx.model, render_fn, levels, seed=args.seed)
    agg = rand.table.groupby("level", sort=False)[["spearman", "ssim"]].mean()
    log_metrics({f"randomization_spearman/{lv}": v for lv, v in agg["spearman"].items()})
    log_metrics({f"randomization_ssim/{lv}": v for lv, v in agg["ssim"].items()})
    log_dataframe(rand.table, "tables/randomization.csv")
    log_figure(plot_randomization(rand.table), "figures/randomization.png")
    log_figure(
        plot_randomization_images(rand.images, table["label"].tolist()),
        "figures/randomization_images.png",
    )


def _transferability(reference, args, vis: _Visuals, logit_target, device) -> None:
    """Share of class-logit visualizations the reference model assigns to their class."""
    rcfg = reference.config
    t = transferability(
        reference.model,
        vis.logit_images,
        logit_target,
        mean=rcfg["mean"],
        std=rcfg["std"],
        image_size=int(rcfg.get("image_size", 224)),
        batch_size=args.batch_size,
        device=device,
    )
    t.insert(1, "label", vis.logits["label"].to_numpy())
    log_metrics({"transferability": float(t["transferred"].mean())})
    log_dataframe(t, "tables/transferability.csv")


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
