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

The run has three steps: :func:`resolve_plan` resolves and checks every setting once (the
model and its base, the targets, the natural images and their one pass) into a
:class:`~.compute.VisualizePlan`; :func:`~.compute.render_all` renders without MLflow; the
runner logs what it returns (:func:`log_result`).
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch

from isic_tracking.data.decoded import DecodedImages
from isic_tracking.data.transforms import normalize
from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.choices import AMP_CHOICES
from isic_tracking.interpret.featvis import LOGITS
from isic_tracking.interpret.featvis.fastpath import path_params
from isic_tracking.interpret.featvis.grids import comparison_grid, twin_grid
from isic_tracking.interpret.featvis.presets import PRESETS
from isic_tracking.interpret.featvis.render import check_request, layer_channels
from isic_tracking.interpret.fv_table import ARTIFACT, BASE_KEY, write_activations
from isic_tracking.interpret.response import response_module
from isic_tracking.log import get_logger
from isic_tracking.models import conv_layers, resolve_layers
from isic_tracking.stages.visualize import report as fv_report
from isic_tracking.stages.visualize.compute import (
    LayerRenders,
    PlanModel,
    VisualizePlan,
    VisualizeResult,
    natural_pass,
    render_all,
)
from isic_tracking.stages.visualize.config import VisualizeConfig
from isic_tracking.stages.visualize.targets import (
    ENGINES,
    MAX_ALL_CHANNELS,
    Target,
    channel_targets,
    check_filters_table,
    choices,
    class_targets,
    folder,
    most_activated,
    objective,
    parse_channels,
    selectivity_from_table,
    top_from_table,
)
from isic_tracking.tracking import tag
from isic_tracking.tracking.analysis import natural_images
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


def _filters_run_top(run_id: str, tmp: Path) -> pd.DataFrame:
    get_stage_run(run_id, "filters")  # IsicInputError when it is not a filters run
    path = "tables/class_filters.csv"
    table = pd.read_csv(download_artifacts(run_id, path, str(tmp)))
    return check_filters_table(table, f"filters run {run_id}: {path}")


def _ranking_sample(images: DecodedImages, n: int, seed: int, mean, std, batch_size: int):
    """A seeded sample of ``n`` analysed images, normalized for the model, in batches: read
    back from the scratch file, so the natural pass that follows decodes nothing again."""
    pick = np.sort(np.random.default_rng(seed).choice(len(images.labels), n, replace=False))
    images.decode()
    for start in range(0, n, batch_size):
        x = torch.cat([images.read(int(i), 1) for i in pick[start : start + batch_size]])
        yield normalize(x, mean, std)


def _top_on_the_fly(
    cfg: VisualizeConfig, loaded: LoadedModel, layers, size: int, device,
    images: DecodedImages | None,
) -> dict:  # fmt: skip
    """Most activated live filters (mean over images of each filter's max response, read after
    its BatchNorm as the filters stage does) on ``n_images`` of the analysed images, else (no
    natural images) of the manifest."""
    from isic_tracking.interpret.response import response_stats

    mc = loaded.config
    if images is not None:
        n = min(cfg.n_images, len(images.labels))
        sample = _ranking_sample(images, n, cfg.seed, mc["mean"], mc["std"], cfg.batch_size)
        where = f"{n} of the analysed images"
    else:
        sample, where = _manifest_sample(cfg, loaded, size)
    stats = response_stats(loaded.model, sample, layers, device, reduce=("max",))
    log.info(f"top_n: ranked filters (their responses, after BatchNorm) on {where}")
    return {name: most_activated(s.max, cfg.top_n) for name, s in stats.items()}


def _manifest_sample(cfg: VisualizeConfig, loaded: LoadedModel, size: int):
    """``n_images`` of the manifest (there are no analysed images: ``split=none``), as a
    loader normalized for the model, and what they are."""
    from isic_tracking.data.dataset import make_loader
    from isic_tracking.data.defaults import default_manifest
    from isic_tracking.data.manifest import read_manifest
    from isic_tracking.data.transforms import build_transforms

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
    return loader, f"{n} images of {path}"


def _layer_targets(cfg, loaded: LoadedModel, size: int, device, tmp: Path, images) -> dict:
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
            for name, top in _top_on_the_fly(cfg, loaded, todo, size, device, images).items():
                chans[name] = dict.fromkeys(top, "")
    else:  # explicit indices (``classes`` never gets here)
        chans = {name: dict.fromkeys(spec, "") for name in layers}
    return channel_targets({name: chans[name] for name in layers}, selectivity)


def _groups(cfg, loaded: LoadedModel, classes_mode: bool, size, device, tmp: Path, images) -> dict:
    """``{layer: targets}`` to render; the class logits (``""``) too with ``class_logits``;
    ``images``: the analysed natural images (a top_n ranked here uses them)."""
    if classes_mode:
        return {LOGITS: class_targets(loaded.config)}
    groups = _layer_targets(cfg, loaded, size, device, tmp, images)
    if cfg.class_logits and loaded.config.get("task") in ("binary", "multiclass"):
        groups[LOGITS] = class_targets(loaded.config)
    return groups


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


# --------------------------------------------------------------------------- the plan


def _check_settings(cfg: VisualizeConfig) -> tuple[list[str], list[str]]:
    """The presets and engines asked for; the numbers that must be positive."""
    regs = choices(cfg.regularization, list(PRESETS), "regularization")
    engines = choices(cfg.engine, ENGINES, "engine")
    if min(cfg.steps, cfg.batch_size, cfg.top_n) < 1:
        raise IsicInputError("steps, batch_size and top_n must be >= 1")
    if cfg.channels.strip() == "classes" and "torch_dreams" in engines:
        raise IsicInputError("engine torch_dreams renders channels only: use engine=isic")
    return regs, engines


def _plan_model(key: str, loaded: LoadedModel) -> PlanModel:
    mc = loaded.config
    return PlanModel(key, loaded.model, tuple(mc["mean"]), tuple(mc["std"]))


def _check_requests(groups: dict[str, list[Target]], models: tuple[PlanModel, ...], size: int):
    """Bad channel or size: fail before the run starts."""
    for name, targets in groups.items():
        for m in models:
            if m.key == "model" or name != LOGITS:
                check_request(m.module, objective(targets), size)


def resolve_plan(cfg: VisualizeConfig, work: Path) -> VisualizePlan:
    """Every setting of the run resolved and checked once, before any run starts: the model
    (and its base), the targets per layer, the natural images and their one pass (colour
    basis, references, class histograms), the run's tags; ``work``: a folder for the
    filters run's table and the pictures (under ``work / "out"``)."""
    regs, engines = _check_settings(cfg)
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    loaded = load_model(cfg.model_uri, device, allow_random=cfg.allow_random)
    size = cfg.image_size or int(loaded.config["image_size"])
    classes_mode = cfg.channels.strip() == "classes"
    models = tuple(_plan_model(k, m) for k, m in _models(cfg, loaded, classes_mode, device).items())
    classes = tuple(str(c) for c in loaded.config["classes"])
    images, about = natural_images(
        loaded, cfg.manifest, cfg.split, size, cfg.batch_size, DEFAULT_SPLIT
    )
    try:  # each analysed image decoded once: the ranking (top_n) and the pass read it back
        groups = _groups(cfg, loaded, classes_mode, size, device, work, images)
        _check_requests(groups, models, size)
        batches = None if images is None else (lambda: ((x, y) for x, y, _ in images))
        natural = natural_pass(cfg.colours, batches, about, models, groups, len(classes))
    finally:
        if images is not None:
            images.close()
    header = f"{loaded.tags.get('model.name', loaded.uri)} | {cfg.steps} steps | {size} px"
    tags = dict(loaded.tags)
    if cfg.filters_run:
        tags[tag.FILTERS_RUN] = cfg.filters_run
    return VisualizePlan(
        models, {n: tuple(ts) for n, ts in groups.items()}, tuple(engines), tuple(regs),
        classes, size, cfg.steps, cfg.seed, cfg.batch_size, device, AMP_CHOICES[cfg.amp],
        natural, about, header, tags, work / "out",
    )  # fmt: skip


def _params(cfg: VisualizeConfig, plan: VisualizePlan) -> dict[str, Any]:
    """The run's params: the settings and what they resolved to."""
    model = plan.models[0].module
    return {
        **dataclasses.asdict(cfg),
        "resolved.image_size": plan.size,
        # which render path runs
        **path_params(plan.device, plan.size, plan.steps, plan.amp),
        "resolved.channels": {
            folder(n): ",".join(str(t.channel) for t in ts) for n, ts in plan.groups.items()
        },
        "resolved.natural_images": plan.about_images,
        "resolved.colours": plan.natural.colours,  # the colour basis tuned renders in
        # the module each layer's pictures maximize and are measured at
        "resolved.response": {
            folder(n): response_module(model, n) or "output" for n in plan.groups
        },
    }


# --------------------------------------------------------------------------- logging


def _log_grids(layer: LayerRenders, header: str) -> None:
    """One grid per render, its twin (``none``, or the base) beside it where there is
    one; and a comparison of all renders of the layer when there are several."""
    fold = folder(layer.layer)
    title = f"{header} | {layer.layer or 'class logits'}"
    done = layer.done
    for key, r in done.items():
        panels = [fv_report.panel(" | ".join(key), r.result.images, r.rows)]
        twin = fv_report.twin_of(key, list(done))
        if twin is not None:
            panels.append(fv_report.panel(" | ".join(twin), done[twin].result.images,
                                          done[twin].rows))  # fmt: skip
        log_figure(twin_grid(panels, title), f"figures/{fold}/{'_'.join(key)}.png")
    if len(done) > 1:
        results = {" / ".join(k): r.result for k, r in done.items()}
        title = f"{layer.layer or 'class logits'}: comparison"
        log_figure(comparison_grid(results, title), f"figures/{fold}/comparison.png")


def log_result(plan: VisualizePlan, result: VisualizeResult, work: Path) -> None:
    """Into the active run: every layer's grids, the colour check (table and tag), the
    metrics, the PNGs under ``images/`` and ``tables/activations.csv``."""
    for layer in result.layers:
        _log_grids(layer, plan.header)
        check = layer.colour_check
        if check is not None:
            log_dataframe(check.table, "tables/colour_check.csv")
            mlflow.set_tag(tag.COLOUR_CHECK, "pass" if check.passed else "fail")
    log_metrics(dict(result.metrics))
    log_image_files(plan.out / "images", "images")
    table = write_activations(result.rows, work / ARTIFACT)
    mlflow.log_artifact(str(table), str(Path(ARTIFACT).parent))


def run_visualize(cfg: VisualizeConfig) -> VisualizeOutcome:
    """Render the requested targets of ``cfg.model_uri`` (and the base it was fine-tuned
    from); one run: resolve the plan, render (no MLflow), log."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        plan = resolve_plan(cfg, work)
        with stage_run(STAGE, _params(cfg, plan), tags=dict(plan.tags), run_name=STAGE) as run:
            log.info(f"natural images: {plan.about_images}")
            result = render_all(plan)
            log_result(plan, result, work)
    layers = [folder(n) for n in plan.groups]
    log.info(f"visualize: {len(result.rows)} images, layers {', '.join(layers)}")
    return VisualizeOutcome(run.info.run_id, result.rows, layers, dict(result.metrics))
