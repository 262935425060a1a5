"""The ``visualize`` stage's computation, without MLflow: given a resolved
:class:`VisualizePlan`, one pass over the analysed natural images (:func:`natural_pass`),
then every (model, engine, preset) render of every layer's targets (:func:`render_all`), each
picture saved as a PNG under the plan's output folder and described by its
``tables/activations.csv`` row; returned as :class:`LayerRenders` records with their metrics
and, for the class logits, the colour check. The runner logs what this returns."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from torch import Tensor, nn

from isic_tracking.interpret import fv_natural
from isic_tracking.interpret.colour_check import ClassHistograms
from isic_tracking.interpret.featvis import LOGITS, render
from isic_tracking.interpret.featvis.grids import save_png
from isic_tracking.interpret.featvis.param import ColourBasis, ColourStats
from isic_tracking.interpret.featvis.presets import preset, resolve_colours, wants_data_colours
from isic_tracking.interpret.featvis.render import RenderResult
from isic_tracking.interpret.response import response_module
from isic_tracking.log import get_logger
from isic_tracking.stages.visualize import report as fv_report
from isic_tracking.stages.visualize.targets import (
    Target,
    chunks,
    concat_results,
    folder,
    objective,
    picture_file,
    picture_row,
    render_name,
    render_plan,
    single_objective,
    stage_metric,
)

log = get_logger(__name__)

#: ``() -> iterable of (images [B, 3, H, W] normalized, labels [B])``: one pass per call
Batches = Callable[[], Iterable[tuple[Tensor, Tensor]]]


@dataclass(frozen=True)
class PlanModel:
    """A model to render (the analysed one, key ``model``; its base, key ``base``)."""

    key: str
    module: nn.Module
    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass(frozen=True)
class NaturalPass:
    """What the analysed natural images give a visualize run, from one pass: the colour basis
    ``tuned`` renders in (and what it is), each target's natural reference per
    ``(model key, layer)``, and the classes' lesion colour histograms (for the class-logit
    pictures' colour check; None when no logits are rendered or no images)."""

    colour: ColourBasis | None
    colours: str
    refs: Mapping[tuple[str, str], fv_natural.NaturalReference]
    hists: Tensor | None


@dataclass(frozen=True)
class VisualizePlan:
    """Everything a visualize run renders and how, resolved once by the runner.

    Attributes:
        models: the models to render, the analysed one first (``key == "model"``).
        groups: ``{layer: its targets}``, ``""`` (:data:`LOGITS`) for the class logits.
        engines, presets: the engines and regularization presets to render with.
        classes: the model's class names (the colour check's order).
        size: render size; steps, seed, batch_size, device, amp: the render settings.
        natural: the analysed natural images' pass (colour basis, references, histograms).
        about_images: what those images are (param ``resolved.natural_images``).
        header: the grids' title prefix (model name, steps, size).
        tags: the run's tags (the model's name, version, training run; the filters run).
        out: folder the PNGs are written under (``images/<layer>/...``).
    """

    models: tuple[PlanModel, ...]
    groups: Mapping[str, tuple[Target, ...]]
    engines: tuple[str, ...]
    presets: tuple[str, ...]
    classes: tuple[str, ...]
    size: int
    steps: int
    seed: int
    batch_size: int
    device: Any
    amp: bool | None
    natural: NaturalPass
    about_images: str
    header: str
    tags: Mapping[str, str]
    out: Path

    def models_of(self, layer: str) -> tuple[PlanModel, ...]:
        """The models a layer is rendered for: the base is compared on filters only."""
        return self.models if layer != LOGITS else self.models[:1]

    def engines_of(self, layer: str) -> tuple[str, ...]:
        """The engines a layer is rendered with: torch-dreams renders channels only."""
        return self.engines if layer != LOGITS else ("isic",)


@dataclass(frozen=True)
class Render:
    """One (model, engine, preset) render of a layer's targets and its table rows."""

    model_key: str
    engine: str
    preset: str
    result: RenderResult
    rows: tuple[dict[str, Any], ...]  # the rows of tables/activations.csv

    @property
    def key(self) -> tuple[str, str, str]:
        return self.model_key, self.engine, self.preset


@dataclass(frozen=True)
class ColourCheck:
    """The colour check of the class-logit pictures: per preset its table, the metrics and
    the verdict of the first regularized preset (tag ``isic.colour_check``)."""

    table: pd.DataFrame
    metrics: Mapping[str, float]
    passed: bool


@dataclass(frozen=True)
class LayerRenders:
    """Every render of one layer (or of the class logits, layer ``""``) and its metrics."""

    layer: str
    renders: tuple[Render, ...]
    metrics: Mapping[str, float]
    colour_check: ColourCheck | None = None

    @property
    def done(self) -> dict[tuple[str, str, str], Render]:
        return {r.key: r for r in self.renders}


@dataclass(frozen=True)
class VisualizeResult:
    """What a visualize run computed: every layer's renders, the table rows, the metrics."""

    layers: tuple[LayerRenders, ...]
    metrics: Mapping[str, float] = field(default_factory=dict)

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [row for lr in self.layers for r in lr.renders for row in r.rows]


def natural_pass(
    choice: str,
    batches: Batches | None,
    what: str,
    models: Sequence[PlanModel],
    groups: Mapping[str, Sequence[Target]],
    n_classes: int,
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
    for m in models:
        mine = {n: ts for n, ts in groups.items() if m.key == "model" or n != LOGITS}
        read = {n: response_module(m.module, n) for n in mine}  # each filter's response
        objs = [single_objective(t, read[n]) for n, ts in mine.items() for t in ts]
        accs[m.key] = (fv_natural.NaturalValues(m.module, objs, m.mean, m.std), mine)
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


def render_targets(
    plan: VisualizePlan, m: PlanModel, targets: Sequence[Target], engine: str, reg: str
) -> RenderResult:
    """All targets of one layer for model ``m`` with one engine and preset, in batches of
    ``plan.batch_size``; results concatenated."""
    parts = []
    read = response_module(m.module, targets[0].layer)  # the filter's response (after its BN)
    for chunk in chunks(targets, max(1, plan.batch_size)):
        if engine == "torch_dreams":
            from isic_tracking.interpret.featvis.dreams import render_torch_dreams

            res = render_torch_dreams(
                m.module, read, [t.channel for t in chunk], size=plan.size,
                steps=plan.steps, seed=plan.seed, device=plan.device, mean=m.mean, std=m.std,
            )  # fmt: skip
        else:
            res = render(
                m.module, objective(chunk, read), size=plan.size, steps=plan.steps,
                seed=plan.seed, device=plan.device, mean=m.mean, std=m.std, amp=plan.amp,
                **preset(reg, plan.natural.colour),
            )  # fmt: skip
        parts.append((chunk, res))
    return concat_results(parts)


def _save(plan: VisualizePlan, key: tuple[str, str, str], res: RenderResult, targets, natural):
    """Write every image as a PNG under ``plan.out``; the table rows that describe them."""
    model_key, engine, reg = key
    rows = []
    for t, img, act, nat in zip(targets, res.images, res.activation, natural):
        rel = picture_file(model_key, engine, reg, t)
        save_png(img, plan.out / rel)
        rows.append(picture_row(t, float(act), engine, reg, model_key, rel, nat))
    return tuple(rows)


def render_layer(plan: VisualizePlan, layer: str) -> LayerRenders:
    """Every (model, engine, preset) render of one layer's targets, saved, with its metrics."""
    targets = plan.groups[layer]
    models = {m.key: m for m in plan.models_of(layer)}
    renders, metrics = [], {}
    for key, m, engine, reg in render_plan(models, plan.engines_of(layer), plan.presets):
        res = render_targets(plan, m, targets, engine, reg)
        natural = fv_report.natural_columns(res.activation, plan.natural.refs.get((key, layer)))
        rows = _save(plan, (key, engine, reg), res, targets, natural)
        renders.append(Render(key, engine, reg, res, rows))
        name = render_name(folder(layer), key, engine, reg)
        metrics |= fv_report.render_metrics(name, res.activation, res.seconds, rows)
        frac = metrics.get(stage_metric("fv_over_natural_max_frac", name), float("nan"))
        log.info(
            f"{name}: {len(targets)} images, mean activation {res.activation.mean():.3g}, "
            f"fv/natural max >= 1 for {frac:.0%} of the live ones, {res.seconds:.1f} s"
        )
    check = None
    if layer == LOGITS and plan.natural.hists is not None:
        check = colour_check(renders, plan.classes, plan.natural.hists, plan.presets)
    return LayerRenders(layer, tuple(renders), metrics, check)


def colour_check(
    renders: Sequence[Render], classes: Sequence[str], hists: Tensor, presets: Sequence[str]
) -> ColourCheck | None:
    """The colour check of every preset's class-logit pictures (the analysed model, our
    engine) against ``hists``, the lesion colours of each class's natural images; the verdict
    is the first regularized preset's (the first preset's when all are ``none``)."""
    done = {r.key: r for r in renders}
    tables, metrics, verdicts = [], {}, {}
    for reg in presets:
        if ("model", "isic", reg) in done:
            r = done["model", "isic", reg]
            table, m, verdicts[reg] = fv_report.colour_report(
                r.rows, r.result.images, classes, hists, reg
            )
            tables.append(table)
            metrics |= m
            log.info(f"colour check ({reg}):\n{table.to_string(index=False)}")
    if not tables:
        return None
    main = next((r for r in verdicts if r != "none"), next(iter(verdicts)))
    return ColourCheck(pd.concat(tables), metrics, bool(verdicts[main]))


def render_all(plan: VisualizePlan) -> VisualizeResult:
    """Every layer of the plan rendered (:func:`render_layer`), with the run's metrics: each
    render's, the colour check's and the overall ones (:func:`.report.overall_metrics`)."""
    layers = tuple(render_layer(plan, layer) for layer in plan.groups)
    metrics: dict[str, float] = {}
    for lr in layers:
        metrics |= lr.metrics
        if lr.colour_check is not None:
            metrics |= lr.colour_check.metrics
    result = VisualizeResult(layers)
    metrics |= fv_report.overall_metrics(result.rows)
    return VisualizeResult(layers, metrics)
