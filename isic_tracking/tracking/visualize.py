"""The ``visualize`` stage: feature visualization by activation maximization (thesis §4.4,
§5.4.1), logged as one run.

Renders, for each chosen layer, the images that maximize the mean activation of chosen filters
(``channels=top_n``: the most activated ones, from a ``filters`` run or a small pass over the
manifest's images; ``all``; explicit indices ``3,17,42``) or the class logits
(``channels=classes``). ``regularization`` takes one or more presets (``thesis``, ``none``,
``fourier``, ``maco``), so the thesis's with/without comparison (Fig. 29) is one flag
(``thesis,none``); ``engine`` our batched engine (``isic``), torch-dreams (``torch_dreams``, the
thesis's library) or both; ``compare_pretrained`` renders the ImageNet base next to the model.

Logs labelled grids (layer, filter, activation reached) under ``figures/``, every image as a PNG
under ``images/<layer>/``, ``tables/activations.csv`` (:mod:`isic_tracking.interpret.fv_table`,
read by ``sanity --fv_run``) and the settings, tagged with the model's name, version and
training run.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.featvis import LOGITS, render
from isic_tracking.interpret.featvis.fastpath import path_params
from isic_tracking.interpret.featvis.grids import comparison_grid, result_grid, save_png
from isic_tracking.interpret.featvis.presets import PRESETS, preset
from isic_tracking.interpret.featvis.render import RenderResult, check_request, layer_channels
from isic_tracking.interpret.fv_table import ARTIFACT, write_activations
from isic_tracking.interpret.fv_targets import (
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
    render_plan,
    top_from_table,
)
from isic_tracking.interpret.stage_config import VisualizeConfig
from isic_tracking.log import get_logger
from isic_tracking.models import conv_layers, resolve_layers
from isic_tracking.tracking import tag
from isic_tracking.tracking.registry import LoadedModel, load_model, training_manifest
from isic_tracking.tracking.runs import (
    download_artifacts,
    get_stage_run,
    log_figure,
    log_image_files,
    log_metrics,
    stage_run,
)
from isic_tracking.utils import resolve_device, seed_everything

STAGE = "visualize"
log = get_logger(__name__)


@dataclass
class VisualizeOutcome:
    run_id: str
    rows: list[dict]  # the rows of tables/activations.csv
    layers: list[str]  # folder names: layer names, ``logits`` for class logits


# --------------------------------------------------------------------------- what to render


def _filters_run_top(run_id: str, tmp: str) -> pd.DataFrame:
    get_stage_run(run_id, "filters")  # IsicInputError when it is not a filters run
    path = "tables/class_filters.csv"
    table = pd.read_csv(download_artifacts(run_id, path, tmp))
    return check_filters_table(table, f"filters run {run_id}: {path}")


def _top_on_the_fly(cfg: VisualizeConfig, model, layers, loaded, size, device) -> dict:
    """Most activated filters (mean over images of each filter's max) on a few manifest images."""
    from isic_tracking.data.dataset import make_loader
    from isic_tracking.data.defaults import default_manifest
    from isic_tracking.data.manifest import read_manifest
    from isic_tracking.data.transforms import build_transforms
    from isic_tracking.interpret.activations import activation_stats

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
    stats = activation_stats(model, loader, layers, device, reduce=("max",))
    log.info(f"top_n: ranked filters on {n} images of {path}")
    return {name: most_activated(s.max, cfg.top_n) for name, s in stats.items()}


def _layer_targets(cfg, loaded: LoadedModel, size: int, device, tmp: str) -> dict:
    """The channels of every layer to render, each with a note (the classes it ranks for)."""
    model = loaded.model
    layers = resolve_layers(model, cfg.layers, default="first,last")
    spec = parse_channels(cfg.channels)
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
        if cfg.filters_run:
            table = _filters_run_top(cfg.filters_run, tmp)
            for name in layers:
                top = top_from_table(table, name, conv_layers(model)[-1], cfg.top_n)
                if top is not None:
                    chans[name] = top
        todo = [name for name in layers if name not in chans]
        if todo:
            if cfg.filters_run:
                log.info(f"note: filters run {cfg.filters_run} has no rows for {todo}: ranked here")
            for name, top in _top_on_the_fly(cfg, model, todo, loaded, size, device).items():
                chans[name] = dict.fromkeys(top, "")
    else:  # explicit indices (``classes`` never gets here)
        chans = {name: dict.fromkeys(spec, "") for name in layers}
    return channel_targets({name: chans[name] for name in layers})


# --------------------------------------------------------------------------- rendering


def _render_targets(cfg, model, targets, engine, reg, size, config, device) -> RenderResult:
    """All targets of one layer with one engine and preset, in batches; results concatenated."""
    parts = []
    for chunk in chunks(targets, max(1, cfg.batch_size)):
        if engine == "torch_dreams":
            from isic_tracking.interpret.featvis.dreams import render_torch_dreams

            res = render_torch_dreams(
                model, chunk[0].layer, [t.channel for t in chunk], size=size,
                steps=cfg.steps, seed=cfg.seed, device=device,
                mean=config["mean"], std=config["std"],
            )  # fmt: skip
        else:
            res = render(
                model, objective(chunk), size=size, steps=cfg.steps, seed=cfg.seed,
                device=device, mean=config["mean"], std=config["std"], **preset(reg),
            )  # fmt: skip
        parts.append((chunk, res))
    return concat_results(parts)


def _save(res: RenderResult, targets: list[Target], key, engine, reg, out: Path) -> list[dict]:
    """Write every image as a PNG; the table rows that describe them."""
    rows = []
    for t, img, act in zip(targets, res.images, res.activation):
        rel = picture_file(key, engine, reg, t)
        save_png(img, out / rel)
        rows.append(picture_row(t, float(act), engine, reg, key, rel))
    return rows


def _models(cfg: VisualizeConfig, loaded: LoadedModel, classes_mode: bool, device) -> dict:
    """The model, and the ImageNet base next to it when asked (and meaningful)."""
    models = {"model": loaded}
    if cfg.compare_pretrained:
        if classes_mode:
            log.info("note: compare_pretrained skipped: the ImageNet base has no logits of ours")
        elif cfg.model_uri.startswith("pretrained:"):
            log.info("note: compare_pretrained skipped: the model is the ImageNet base already")
        else:
            base_uri = f"pretrained:{loaded.config['arch']}"
            models["imagenet"] = load_model(base_uri, device, allow_random=cfg.allow_random)
    return models


def _render_layer(cfg, layer_name, targets, models, engines, regs, size, device, out) -> list:
    """Every (model, engine, preset) render of one layer's targets: metrics, grids, rows."""
    fold, results, rows = folder(layer_name), {}, []
    for key, m, engine, reg in render_plan(models, engines, regs):
        res = _render_targets(cfg, m.model, targets, engine, reg, size, m.config, device)
        results[f"{key} / {engine} / {reg}"] = res
        rows += _save(res, targets, key, engine, reg, out)
        name = f"{fold}/{key}/{engine}/{reg}"
        log_metrics(
            {f"activation_mean/{name}": res.activation.mean(), f"seconds/{name}": res.seconds}
        )
        title = (
            f"{m.tags.get('model.name', m.uri)} | {layer_name or 'class logits'} | "
            f"{engine} | {reg} | {cfg.steps} steps | {size} px"
        )
        log_figure(result_grid(res, title), f"figures/{fold}/{key}_{engine}_{reg}.png")
        log.info(
            f"{name}: {len(targets)} images, mean activation "
            f"{res.activation.mean():.3g}, {res.seconds:.1f} s"
        )
    if len(results) > 1:
        title = f"{layer_name or 'class logits'}: comparison"
        log_figure(comparison_grid(results, title), f"figures/{fold}/comparison.png")
    return rows


def run_visualize(cfg: VisualizeConfig) -> VisualizeOutcome:
    """Render the requested targets of ``cfg.model_uri`` (and its ImageNet base); one run."""
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
        if classes_mode:
            groups = {LOGITS: class_targets(loaded.config)}
        else:
            groups = _layer_targets(cfg, loaded, size, device, tmp)
        for targets in groups.values():  # bad channel or size: fail before the run starts
            for m in models.values():
                check_request(m.model, objective(targets), size)
        params = {
            **dataclasses.asdict(cfg),
            "resolved.image_size": size,
            **path_params(device, size, cfg.steps),  # which render path runs (issue 17)
            "resolved.channels": {
                folder(n): ",".join(str(t.channel) for t in ts) for n, ts in groups.items()
            },
        }
        tags = dict(loaded.tags)
        if cfg.filters_run:
            tags[tag.FILTERS_RUN] = cfg.filters_run
        out = Path(tmp) / "out"
        rows: list[dict] = []
        with stage_run(STAGE, params, tags=tags, run_name=STAGE) as run:
            for layer_name, targets in groups.items():
                rows += _render_layer(
                    cfg, layer_name, targets, models, engines, regs, size, device, out
                )
            log_image_files(out / "images", "images")
            table = write_activations(rows, Path(tmp) / ARTIFACT)
            mlflow.log_artifact(str(table), str(Path(ARTIFACT).parent))
    log.info(f"visualize: {len(rows)} images, layers {', '.join(map(folder, groups))}")
    return VisualizeOutcome(run.info.run_id, rows, [folder(n) for n in groups])
