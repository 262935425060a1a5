"""The ``visualize`` stage: feature visualization by activation maximization (thesis §4.4,
§5.4.1), logged as one run.

Renders, for each chosen layer, the images that maximize the mean response of chosen filters
(``channels=top_n``, from a ``filters`` run or a small pass over the manifest; ``all``;
indices ``3,17,42``) or the class logits (``channels=classes``), with one or more presets
(``regularization=tuned,thesis,none,fourier,maco``: the thesis's with/without comparison,
Fig. 29, is one flag), engines (``isic``, ``torch_dreams``) and the model's own base (its recorded init) beside the
model on request. ``tuned`` renders in the colour basis of the analysed natural images
(``colours=data``, param ``resolved.colours``).

Every picture's activation is set next to the same objective's maximum and 99th percentile
over the analysed natural images (``split``, default fold 0's validation images, as
``filters``): ``fv_over_natural_max`` (:mod:`isic_tracking.interpret.fv_natural`). Logs one labelled grid
per layer and preset under ``figures/`` with its twin beside it, every image as a PNG under
``images/<layer>/``, ``tables/activations.csv`` (read by ``sanity --fv_run``), metrics
``<kind>/<layer>-<preset>``, the colour check of the class-logit pictures and the settings,
tagged with the model's name, version and training run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from torch import Tensor

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret import fv_natural
from isic_tracking.interpret.choices import AMP_CHOICES
from isic_tracking.interpret.colour_check import ClassHistograms
from isic_tracking.interpret.featvis import LOGITS, render
from isic_tracking.interpret.featvis.fastpath import path_params
from isic_tracking.interpret.featvis.grids import comparison_grid, save_png, twin_grid
from isic_tracking.interpret.featvis.param import ColourBasis, ColourStats
from isic_tracking.interpret.featvis.presets import (
    PRESETS,
    preset,
    resolve_colours,
    wants_data_colours,
)
from isic_tracking.interpret.featvis.render import RenderResult, check_request, layer_channels
from isic_tracking.interpret.fv_table import ARTIFACT, BASE_KEY, write_activations
from isic_tracking.interpret.response import response_module
from isic_tracking.log import get_logger
from isic_tracking.models import conv_layers, resolve_layers
from isic_tracking.stages.visualize import report as fv_report
from isic_tracking.stages.visualize.config import VisualizeConfig
from isic_tracking.stages.visualize.targets import (
    ENGINES,
    MAX_ALL_CHANNELS,
    Target,
    channel_targets,
    check_filters_table,
    choices,
    chunks,
    class_targets,
    concat_results,
    folder,
    most_activated,
    objective,
    parse_channels,
    picture_file,
    picture_row,
    render_name,
    render_plan,
    selectivity_from_table,
    single_objective,
    stage_metric,
    top_from_table,
)
from isic_tracking.tracking import tag
from isic_tracking.tracking.analysis import natural_batches
from isic_tracking.tracking.init import load_base
from isic_tracking.tracking.registry import LoadedModel, load_model, training_manifest
from isic_tracking.tracking.runs import (
    download_artifacts,
    get_stage_run,
    log_dataframe,
    log_figure,
    log_image_files,
    log_metrics,
    stage_run,
)
from isic_tracking.utils import resolve_device, seed_everything

STAGE = "visualize"
DEFAULT_SPLIT = VisualizeConfig.split
log = get_logger(__name__)


@dataclass
class VisualizeOutcome:
    run_id: str
    rows: list[dict]  # the rows of tables/activations.csv
    layers: list[str]  # folder names: layer names, ``logits`` for class logits
    metrics: dict[str, float]  # what was logged as metrics


# --------------------------------------------------------------------------- what to render


def _filters_run_top(run_id: str, tmp: str) -> pd.DataFrame:
    get_stage_run(run_id, "filters")  # IsicInputError when it is not a filters run
    path = "tables/class_filters.csv"
    table = pd.read_csv(download_artifacts(run_id, path, tmp))
    return check_filters_table(table, f"filters run {run_id}: {path}")


def _top_on_the_fly(cfg: VisualizeConfig, model, layers, loaded, size, device) -> dict:
    """Most activated live filters (mean over images of each filter's max response, read after
    its BatchNorm as the filters stage does) on a few manifest images."""
    from isic_tracking.data.dataset import make_loader
    from isic_tracking.data.defaults import default_manifest
    from isic_tracking.data.manifest import read_manifest
    from isic_tracking.data.transforms import build_transforms
    from isic_tracking.interpret.response import response_stats

    path = cfg.manifest
    if path is None:
        path = (
            training_manifest(loaded.train_run_id)
            if loaded.train_run_id
            else str(default_manifest("binary"))
        )
    df = read_manifest(path)
    n = min(cfg.n_images, len(df))
    rows = df.sample(n=n, random_state=cfg.seed).reset_index(drop=True)
    mc = loaded.config
    loader = make_loader(
        rows, build_transforms(size, train=False, mean=mc["mean"], std=mc["std"]), cfg.batch_size
    )
    stats = response_stats(model, loader, layers, device, reduce=("max",))
    log.info(f"top_n: ranked filters (their responses, after BatchNorm) on {n} images of {path}")
    return {name: most_activated(s.max, cfg.top_n) for name, s in stats.items()}


def _layer_targets(cfg, loaded: LoadedModel, size: int, device, tmp: str) -> dict:
    """The channels of every layer to render, each with a note (the classes it ranks for)."""
    model = loaded.model
    layers = resolve_layers(model, cfg.layers, default="first,last")
    spec = parse_channels(cfg.channels)
    chans: dict[str, dict[int, str]] = {}
    selectivity: dict[str, dict[int, str]] = {}
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
        if cfg.filters_run:
            table = _filters_run_top(cfg.filters_run, tmp)
            last = conv_layers(model)[-1]
            for name in layers:
                top = top_from_table(table, name, last, cfg.top_n)
                if top is not None:
                    chans[name] = top
                    selectivity[name] = selectivity_from_table(table, name, last)
        todo = [name for name in layers if name not in chans]
        if todo:
            if cfg.filters_run:
                log.info(f"note: filters run {cfg.filters_run} has no rows for {todo}: ranked here")
            for name, top in _top_on_the_fly(cfg, model, todo, loaded, size, device).items():
                chans[name] = dict.fromkeys(top, "")
    else:  # explicit indices (``classes`` never gets here)
        chans = {name: dict.fromkeys(spec, "") for name in layers}
    return channel_targets({name: chans[name] for name in layers}, selectivity)


# --------------------------------------------------------------------------- rendering


def _render_targets(cfg, model, targets, engine, kw, size, config, device) -> RenderResult:
    """All targets of one layer with one engine and preset (``kw()``: its render keywords),
    in batches; results concatenated."""
    parts = []
    read = response_module(model, targets[0].layer)  # the filter's response (after its BN)
    for chunk in chunks(targets, max(1, cfg.batch_size)):
        if engine == "torch_dreams":
            from isic_tracking.interpret.featvis.dreams import render_torch_dreams

            res = render_torch_dreams(
                model, read, [t.channel for t in chunk], size=size,
                steps=cfg.steps, seed=cfg.seed, device=device,
                mean=config["mean"], std=config["std"],
            )  # fmt: skip
        else:
            res = render(
                model, objective(chunk, read), size=size, steps=cfg.steps, seed=cfg.seed,
                device=device, mean=config["mean"], std=config["std"],
                amp=AMP_CHOICES[cfg.amp], **kw(),
            )  # fmt: skip
        parts.append((chunk, res))
    return concat_results(parts)


def _save(res: RenderResult, targets: list[Target], key, engine, reg, out: Path, natural):
    """Write every image as a PNG; the table rows that describe them."""
    rows = []
    for t, img, act, nat in zip(targets, res.images, res.activation, natural):
        rel = picture_file(key, engine, reg, t)
        save_png(img, out / rel)
        rows.append(picture_row(t, float(act), engine, reg, key, rel, nat))
    return rows


def _models(cfg: VisualizeConfig, loaded: LoadedModel, classes_mode: bool, device) -> dict:
    """The model, and the base it was fine-tuned from (its recorded init: the same ImageNet
    file, the pretrain stage's model, or its own random init) next to it when asked."""
    models = {"model": loaded}
    if cfg.compare_pretrained:
        if classes_mode:
            log.info("note: compare_pretrained skipped: it compares filters, not class logits")
        elif cfg.model_uri.startswith("pretrained:"):
            log.info("note: compare_pretrained skipped: the model is the ImageNet base already")
        elif loaded.config.get("init") is None:
            log.info(
                "note: compare_pretrained skipped: the model was trained before its init was "
                "recorded, so its base is unknown (retrain it)"
            )
        else:
            models[BASE_KEY] = load_base(loaded, device)
            log.info(f"compare_pretrained: the base is {models[BASE_KEY].tags['model.base']}")
    return models


# --------------------------------------------------------------------------- natural images


@dataclass(frozen=True)
class NaturalPass:
    """What the analysed natural images give a visualize run, from one pass: the colour basis
    ``tuned`` renders in (and what it is), each target's natural reference per model, and the
    classes' lesion colour histograms (for the class-logit pictures' colour check)."""

    colour: ColourBasis | None
    colours: str
    refs: dict
    hists: Tensor | None


def _natural_pass(
    choice: str, batches, what: str, models: dict, groups: dict, n_classes: int
) -> NaturalPass:
    """One pass over the analysed natural images, each decoded once, feeding the colour
    basis (``colours=data``), every target's :class:`~.fv_natural.NaturalReference` per
    model (the base is compared on filters only: no logits for it) and, when class logits
    are rendered, the classes' colour histograms."""
    if batches is None:
        return NaturalPass(*resolve_colours(choice, None, what), {}, None)
    stats = ColourStats() if wants_data_colours(choice) else None
    hists = ClassHistograms(n_classes) if LOGITS in groups else None
    accs = {}
    for key, m in models.items():
        mine = {n: ts for n, ts in groups.items() if key == "model" or n != LOGITS}
        read = {n: response_module(m.model, n) for n in mine}  # each filter's response
        objs = [single_objective(t, read[n]) for n, ts in mine.items() for t in ts]
        acc = fv_natural.NaturalValues(m.model, objs, m.config["mean"], m.config["std"])
        accs[key] = (acc, mine)
    with contextlib.ExitStack() as stack:
        for acc, _ in accs.values():
            stack.enter_context(acc)
        for x, y in batches():
            for consumer in (stats, *(acc for acc, _ in accs.values())):
                if consumer is not None:
                    consumer.add(x)
            if hists is not None:
                hists.add(x, y)
    refs = {}
    for key, (acc, mine) in accs.items():
        values, start = acc.values(), 0
        for layer_name, ts in mine.items():
            refs[key, layer_name] = fv_natural.reference(values[:, start : start + len(ts)])
            start += len(ts)
    colour, colours = resolve_colours(choice, stats, what)
    return NaturalPass(colour, colours, refs, None if hists is None else hists.result())


# --------------------------------------------------------------------------- one layer


def _log_grids(layer_name: str, done: dict, header: str) -> None:
    """One grid per render, its twin (``none``, or the base) beside it where there is
    one; and a comparison of all renders of the layer when there are several."""
    fold = folder(layer_name)
    title = f"{header} | {layer_name or 'class logits'}"
    for render_key, (res, rows) in done.items():
        panels = [fv_report.panel(" | ".join(render_key), res.images, rows)]
        twin = fv_report.twin_of(render_key, list(done))
        if twin is not None:
            panels.append(fv_report.panel(" | ".join(twin), done[twin][0].images, done[twin][1]))
        log_figure(twin_grid(panels, title), f"figures/{fold}/{'_'.join(render_key)}.png")
    if len(done) > 1:
        results = {" / ".join(k): res for k, (res, _) in done.items()}
        title = f"{layer_name or 'class logits'}: comparison"
        log_figure(comparison_grid(results, title), f"figures/{fold}/comparison.png")


def _render_layer(cfg, layer_name, targets, models, engines, regs, size, device, out, refs):
    """Every (model, engine, preset) render of one layer's targets (``regs``: preset name ->
    its render keywords): ``{render: (result, rows)}`` and the metrics."""
    fold, done, metrics = folder(layer_name), {}, {}
    for key, m, engine, reg in render_plan(models, engines, list(regs)):
        kw = regs.get(reg, dict)  # torch-dreams: its own preset
        res = _render_targets(cfg, m.model, targets, engine, kw, size, m.config, device)
        natural = fv_report.natural_columns(res.activation, refs.get((key, layer_name)))
        rows = _save(res, targets, key, engine, reg, out, natural)
        done[key, engine, reg] = (res, rows)
        name = render_name(fold, key, engine, reg)
        metrics |= fv_report.render_metrics(name, res.activation, res.seconds, rows)
        frac = metrics.get(stage_metric("fv_over_natural_max_frac", name), float("nan"))
        log.info(
            f"{name}: {len(targets)} images, mean activation {res.activation.mean():.3g}, "
            f"fv/natural max >= 1 for {frac:.0%} of the live ones, {res.seconds:.1f} s"
        )
    model = models["model"]
    header = f"{model.tags.get('model.name', model.uri)} | {cfg.steps} steps | {size} px"
    _log_grids(layer_name, done, header)
    return done, metrics


def _colour_check(done: dict, classes: list[str], hists: Tensor, regs: list[str]) -> dict:
    """The colour check of every preset's class-logit pictures against ``hists``, the lesion
    colours of each class's natural images: metrics, ``tables/colour_check.csv`` and the
    pass/fail tag (of the first regularized preset)."""
    tables, metrics, verdicts = [], {}, {}
    for reg in regs:
        if ("model", "isic", reg) in done:
            res, rows = done["model", "isic", reg]
            table, m, verdicts[reg] = fv_report.colour_report(rows, res.images, classes, hists, reg)
            tables.append(table)
            metrics |= m
            log.info(f"colour check ({reg}):\n{table.to_string(index=False)}")
    if tables:
        log_dataframe(pd.concat(tables), "tables/colour_check.csv")
        main = next((r for r in verdicts if r != "none"), next(iter(verdicts)))
        mlflow.set_tag(tag.COLOUR_CHECK, "pass" if verdicts[main] else "fail")
    return metrics


def _groups(cfg, loaded: LoadedModel, classes_mode: bool, size, device, tmp) -> dict:
    """``{layer: targets}`` to render; the class logits (``""``) too with ``class_logits``."""
    if classes_mode:
        return {LOGITS: class_targets(loaded.config)}
    groups = _layer_targets(cfg, loaded, size, device, tmp)
    if cfg.class_logits and loaded.config.get("task") in ("binary", "multiclass"):
        groups[LOGITS] = class_targets(loaded.config)
    return groups


def run_visualize(cfg: VisualizeConfig) -> VisualizeOutcome:
    """Render the requested targets of ``cfg.model_uri`` (and the base it was fine-tuned from); one run."""
    regs = choices(cfg.regularization, list(PRESETS), "regularization")
    engines = choices(cfg.engine, ENGINES, "engine")
    if min(cfg.steps, cfg.batch_size, cfg.top_n) < 1:
        raise IsicInputError("steps, batch_size and top_n must be >= 1")
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    loaded = load_model(cfg.model_uri, device, allow_random=cfg.allow_random)
    size = cfg.image_size or int(loaded.config["image_size"])
    classes_mode = cfg.channels.strip() == "classes"
    if classes_mode and "torch_dreams" in engines:
        raise IsicInputError("engine torch_dreams renders channels only: use engine=isic")
    models = _models(cfg, loaded, classes_mode, device)

    with tempfile.TemporaryDirectory() as tmp:
        groups = _groups(cfg, loaded, classes_mode, size, device, tmp)
        for name, targets in groups.items():  # bad channel or size: fail before the run starts
            for key, m in models.items():
                if key == "model" or name != LOGITS:
                    check_request(m.model, objective(targets), size)
        batches, natural = natural_batches(
            loaded, cfg.manifest, cfg.split, size, cfg.batch_size, DEFAULT_SPLIT
        )
        classes = [str(c) for c in loaded.config["classes"]]
        nat = _natural_pass(cfg.colours, batches, natural, models, groups, len(classes))
        colour, colours, refs = nat.colour, nat.colours, nat.refs
        presets = {reg: functools.partial(preset, reg, colour) for reg in regs}
        params = {
            **dataclasses.asdict(cfg),
            "resolved.image_size": size,
            # which render path runs
            **path_params(device, size, cfg.steps, AMP_CHOICES[cfg.amp]),
            "resolved.channels": {
                folder(n): ",".join(str(t.channel) for t in ts) for n, ts in groups.items()
            },
            "resolved.natural_images": natural,
            "resolved.colours": colours,  # the colour basis tuned renders in
            # the module each layer's pictures maximize and are measured at
            "resolved.response": {
                folder(n): response_module(loaded.model, n) or "output" for n in groups
            },
        }
        tags = dict(loaded.tags)
        if cfg.filters_run:
            tags[tag.FILTERS_RUN] = cfg.filters_run
        out = Path(tmp) / "out"
        rows: list[dict] = []
        metrics: dict[str, float] = {}
        with stage_run(STAGE, params, tags=tags, run_name=STAGE) as run:
            log.info(f"natural images: {natural}")
            for name, targets in groups.items():
                logits = name == LOGITS
                done, m = _render_layer(
                    cfg, name, targets, {"model": models["model"]} if logits else models,
                    ["isic"] if logits else engines, presets, size, device, out, refs,
                )  # fmt: skip
                rows += [r for _, rs in done.values() for r in rs]
                metrics |= m
                if logits and nat.hists is not None:
                    metrics |= _colour_check(done, classes, nat.hists, regs)
            metrics |= fv_report.overall_metrics(rows)
            log_metrics(metrics)
            log_image_files(out / "images", "images")
            table = write_activations(rows, Path(tmp) / ARTIFACT)
            mlflow.log_artifact(str(table), str(Path(ARTIFACT).parent))
    log.info(f"visualize: {len(rows)} images, layers {', '.join(map(folder, groups))}")
    return VisualizeOutcome(run.info.run_id, rows, [folder(n) for n in groups], metrics)
