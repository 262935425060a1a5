"""The ``sanity`` stage: how much do feature visualizations resemble what the model sees in
real images? Logged as one run.

Path similarity of feature visualizations vs natural images of their class across the
model's layers, next to baselines (natural vs natural, noise vs natural, unregularized vs
regularized), a layer x layer correlation heatmap, cascading model randomization
(Adebayo et al. 2018) and, with ``reference_model_uri``, transferability (Fel et al.
2023). Visualizations come from a ``visualize`` run (``fv_run``) or are rendered here
with the featvis engine: the ``top_k`` most class-selective channels of each class in the
last conv layer, with and without regularization, and the class logits (few steps by
default, for speed).
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from typing import Any

import mlflow
import pandas as pd
import torch
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NOTE
from torch import Tensor, nn

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret import sanity as S
from isic_tracking.interpret.featvis.param import ColourBasis
from isic_tracking.interpret.featvis.presets import resolve_colours
from isic_tracking.interpret.inputs import (
    images_per_class,
    load_images,
    noise_images,
    sample_per_class,
)
from isic_tracking.interpret.randomization import (
    cascading_randomization,
    plot_randomization,
    plot_randomization_images,
    resolve_levels,
    transferability,
)
from isic_tracking.interpret.versus_noise import (
    markdown,
    one_level,
    verdict_metrics,
    verdict_table,
    versus_noise,
)
from isic_tracking.interpret.versus_noise import summary as verdict_summary
from isic_tracking.log import get_logger
from isic_tracking.models import conv_layers, resolve_layers
from isic_tracking.stages.sanity.config import SanityConfig
from isic_tracking.stages.sanity.pictures import LayerPictures, layer_objectives, run_layer_pictures
from isic_tracking.stages.sanity.plots import (
    plot_image_grid,
    plot_layer_correlation,
    plot_path_similarity,
)
from isic_tracking.stages.sanity.runner_per_layer import log_layer_verdicts, read_visualize_run
from isic_tracking.stages.sanity.sets import (
    Visuals,
    at_size,
    objective_table,
    ordered,
    render_table,
    twins,
)
from isic_tracking.tracking import tag
from isic_tracking.tracking.analysis import split_rows
from isic_tracking.tracking.registry import LoadedModel, load_model
from isic_tracking.tracking.runs import (
    get_stage_run,
    log_dataframe,
    log_figure,
    log_manifest_input,
    log_metrics,
    stage_run,
)
from isic_tracking.utils import resolve_device, seed_everything

log = get_logger(__name__)

STAGE = "sanity"


@dataclass
class ModelInputs:
    """The analysed model and how images are fed to it (what the helpers below share)."""

    model: nn.Module
    classes: list[str]
    num_outputs: int
    mean: list[float]
    std: list[float]
    image_size: int  # the model's input size: natural images and comparisons
    render_size: int  # size of the visualizations rendered here
    batch_size: int
    device: torch.device
    colour: ColourBasis | None = None  # the basis ``tuned`` renders in (None: ImageNet's)

    @property
    def forward_kw(self) -> dict[str, Any]:
        """Keyword arguments of the activation passes (:func:`isic_tracking.interpret.sanity.activation_vectors`)."""
        return dict(
            mean=self.mean, std=self.std, image_size=self.image_size,
            batch_size=self.batch_size, device=self.device,
        )  # fmt: skip


@dataclass
class SanityOutcome:
    run_id: str
    result: S.PathSimilarityResult
    visuals: Visuals


def _render(m: ModelInputs, cfg: SanityConfig, table, regularization: str, seed: int, model=None):
    return render_table(
        model if model is not None else m.model, table, steps=cfg.steps, size=m.render_size,
        mean=m.mean, std=m.std, regularization=regularization, seed=seed, colour=m.colour,
    )  # fmt: skip


def _render_logits(m: ModelInputs, cfg: SanityConfig) -> tuple[pd.DataFrame, Tensor]:
    table = objective_table(m.classes, m.num_outputs, None, None)
    images, reached = _render(m, cfg, table, cfg.regularization, cfg.seed)
    table["activation_reached"] = reached.numpy()
    table["regularization"] = cfg.regularization
    return table, images


def _objectives(m: ModelInputs, cfg: SanityConfig, layer: str, natural, nat_class):
    return layer_objectives(
        m.model, layer, natural, nat_class, m.classes, m.num_outputs, cfg.top_k, m.forward_kw
    )


def _rendered_pictures(
    m: ModelInputs, cfg: SanityConfig, vis: Visuals, layers: list[str], natural, nat_class
) -> list[LayerPictures]:
    """Each pictured layer's top channels rendered here (the deepest: the main set)."""
    out = []
    for layer in layers:
        if layer == vis.main["layer"].iloc[0]:
            out.append(LayerPictures(layer, vis.main, vis.images))
            continue
        table = _objectives(m, cfg, layer, natural, nat_class)
        out.append(
            LayerPictures(layer, table, _render(m, cfg, table, cfg.regularization, cfg.seed)[0])
        )
    return out


def _rendered_visuals(m: ModelInputs, cfg: SanityConfig, natural, nat_class) -> Visuals:
    """Class-selective channels of the last conv layer (top_k per class) and class logits."""
    table = _objectives(m, cfg, conv_layers(m.model)[-1], natural, nat_class)
    images, reached = _render(m, cfg, table, cfg.regularization, cfg.seed)
    table["activation_reached"] = reached.numpy()
    table["regularization"] = cfg.regularization
    unregularized, _ = _render(m, cfg, table, "none", cfg.seed)
    logits, logit_images = _render_logits(m, cfg)
    return Visuals(table, images, unregularized, logits, logit_images, rendered_logits=True)


def _run_visuals(
    m: ModelInputs, cfg: SanityConfig, natural, nat_class, tmp: str, pictured: list[str]
) -> tuple[ModelInputs, Visuals, list[LayerPictures]]:
    """A visualize run's channel pictures of its deepest layer (top_k per class) and logits.

    The run's picture size (or ``image_size`` when given, the run's pictures resized to it)
    becomes the render size: class-logit pictures rendered here, noise and randomization
    renders match the run's pictures, whatever the model's input size.
    """
    table, images = read_visualize_run(cfg.fv_run, m.classes, tmp)
    m = dataclasses.replace(m, render_size=cfg.image_size or int(images.shape[-1]))
    images = at_size(images, m.render_size)
    table, images, unregularized = twins(table, images)
    channel = (table["kind"] == "channel").to_numpy()
    logit = ~channel
    if logit.any():
        logits, logit_images = table[logit].reset_index(drop=True), images[torch.tensor(logit)]
        rendered = False
    else:
        (logits, logit_images), rendered = _render_logits(m, cfg), True
    if not channel.any():  # class-logit pictures only: they are the compared set
        vis = Visuals(logits, logit_images, unregularized, logits, logit_images, rendered)
        return m, vis, []
    run_layers = ordered(m.model, table.loc[channel, "layer"].unique().tolist())
    picked = {
        layer: run_layer_pictures(
            m.model, table, layer, natural, nat_class, m.classes, cfg.top_k, m.forward_kw
        )
        for layer in run_layers
        if layer in pictured or layer == run_layers[-1]
    }
    main, sel = picked[run_layers[-1]]
    twin = None if unregularized is None else unregularized[sel]
    pictures = [LayerPictures(lr, t, images[i]) for lr, (t, i) in picked.items() if lr in pictured]
    return m, Visuals(main, images[sel], twin, logits, logit_images, rendered), pictures


def _log_path_similarity(res: S.PathSimilarityResult, cfg: SanityConfig) -> pd.DataFrame:
    """Curves, baselines and the difference to noise per set and layer (returned)."""
    table = versus_noise(
        res.vectors, res.layers, res.metric, n_boot=cfg.n_boot, level=cfg.interval, seed=cfg.seed
    )
    verdicts = verdict_table(table)
    log_metrics(one_level(S.summary_metrics(res.summary) | verdict_metrics(table)))
    log_dataframe(res.summary, "tables/path_similarity.csv")
    log_dataframe(res.scores, "tables/path_similarity_items.csv")
    log_dataframe(table, "tables/versus_noise.csv")
    log_dataframe(verdicts, "tables/verdict.csv")
    log_figure(
        plot_path_similarity(res.summary, res.metric, versus_noise=verdicts),
        "figures/path_similarity.png",
    )
    if res.layer_corr is not None:
        corr = pd.DataFrame(res.layer_corr.cpu().numpy(), index=res.layers, columns=res.layers)
        log_dataframe(corr.reset_index(names="layer"), "tables/layer_correlation.csv")
        log_figure(
            plot_layer_correlation(res.layer_corr, res.layers), "figures/layer_correlation.png"
        )
    return table


def _record_verdict(table: pd.DataFrame) -> str:
    """The verdict against noise as tags and the run's description; returns its sentence."""
    short, text = verdict_summary(table)
    if not short:
        return ""
    vt = verdict_table(table)
    mlflow.set_tags(
        {
            tag.SANITY_VERDICT: short,
            tag.SANITY_VERDICT_LAYERS: "; ".join(
                f"{r.layer}: {r.verdict}" for r in vt.itertuples()
            ),
            MLFLOW_RUN_NOTE: f"**Sanity: {text}.**\n\n{markdown(vt)}",
        }
    )
    return text


def _randomization(m: ModelInputs, cfg: SanityConfig, vis: Visuals, levels: list[str]) -> None:
    """Cascading randomization of the class-logit visualizations (Adebayo et al. 2018)."""
    table = objective_table(m.classes, m.num_outputs, None, None)

    def render_fn(model, seed):
        if model is m.model and seed == cfg.seed and vis.rendered_logits:
            return vis.logit_images  # already rendered with these settings
        return _render(m, cfg, table, cfg.regularization, seed, model=model)[0]

    rand = cascading_randomization(m.model, render_fn, levels, seed=cfg.seed)
    agg = rand.table.groupby("level", sort=False)[["spearman", "ssim"]].mean()
    log_metrics(one_level({f"randomization_spearman/{lv}": v for lv, v in agg["spearman"].items()}))
    log_metrics(one_level({f"randomization_ssim/{lv}": v for lv, v in agg["ssim"].items()}))
    log_dataframe(rand.table, "tables/randomization.csv")
    log_figure(plot_randomization(rand.table), "figures/randomization.png")
    log_figure(
        plot_randomization_images(rand.images, table["label"].tolist()),
        "figures/randomization_images.png",
    )


def _transferability(reference: LoadedModel, m: ModelInputs, vis: Visuals, logit_target) -> None:
    """Share of class-logit visualizations the reference model assigns to their class."""
    rcfg = reference.config
    t = transferability(
        reference.model,
        vis.logit_images,
        logit_target,
        mean=rcfg["mean"],
        std=rcfg["std"],
        image_size=int(rcfg.get("image_size", 224)),
        batch_size=m.batch_size,
        device=m.device,
    )
    t.insert(1, "label", vis.logits["label"].to_numpy())
    log_metrics({"transferability": float(t["transferred"].mean())})
    log_dataframe(t, "tables/transferability.csv")


def _reference(cfg: SanityConfig, classes: list[str], device) -> LoadedModel | None:
    if not cfg.reference_model_uri:
        return None
    reference = load_model(cfg.reference_model_uri, device, allow_random=cfg.allow_random)
    if [str(c) for c in reference.config["classes"]] != classes:
        raise IsicInputError(
            f"reference model {cfg.reference_model_uri} predicts "
            f"{reference.config['classes']}, not {classes}: compare models of one task"
        )
    return reference


@dataclass(frozen=True)
class SanityPlan:
    """What one sanity run works on, resolved once: the model, its layers and randomization
    levels, the reference model, the natural images (decoded once) and how to feed them."""

    loaded: LoadedModel
    layers: list[str]
    levels: list[str]
    reference: LoadedModel | None
    sample: pd.DataFrame
    natural: Tensor
    nat_class: Tensor
    inputs: ModelInputs
    n_used: int
    adapted: str
    manifest_path: str
    colours: str


def resolve_plan(cfg: SanityConfig) -> SanityPlan:
    """Check the inputs (the ``fv_run`` first, before any heavy work), load the model, and
    sample and decode the natural images."""
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    if cfg.fv_run:
        get_stage_run(cfg.fv_run, "visualize")
    loaded = load_model(cfg.model_uri, device, allow_random=cfg.allow_random)
    model, mc = loaded.model.eval(), loaded.config
    classes = [str(c) for c in mc["classes"]]
    size = int(mc.get("image_size", 224))
    layers = ordered(model, resolve_layers(model, cfg.layers, default="all"))
    levels = resolve_levels(model, cfg.randomize)
    reference = _reference(cfg, classes, device)
    rows, manifest_path = split_rows(loaded, cfg.manifest, cfg.split)
    where = f"split {cfg.split!r} of {manifest_path}"
    n_used = images_per_class(rows, cfg.n_images, classes) if cfg.fit_n_images else cfg.n_images
    adapted = ""
    if n_used < cfg.n_images:
        adapted = f"{where} holds fewer than n_images={cfg.n_images} images of some class"
        adapted += f": {n_used} per class used"
        log.info(f"sanity: {adapted}")
    sample = sample_per_class(rows, n_used, classes, seed=cfg.seed, where=where)
    natural = load_images(sample, size)
    colour, colours = resolve_colours(cfg.colours, lambda: [natural], f"{len(sample)} of {where}")
    inputs = ModelInputs(
        model, classes, int(mc["num_outputs"]), mc["mean"], mc["std"], size,
        cfg.image_size or size, cfg.batch_size, device, colour,
    )  # fmt: skip
    return SanityPlan(
        loaded=loaded,
        layers=layers,
        levels=levels,
        reference=reference,
        sample=sample,
        natural=natural,
        nat_class=torch.tensor(sample["label"].to_numpy(dtype="int64")),
        inputs=inputs,
        n_used=n_used,
        adapted=adapted,
        manifest_path=str(manifest_path),
        colours=colours,
    )


def _visuals(plan: SanityPlan, cfg: SanityConfig) -> tuple[ModelInputs, Visuals, list]:
    """The pictures compared: read from ``cfg.fv_run`` or rendered here, and each pictured
    layer's top filters' pictures for the per-layer verdict."""
    m, model = plan.inputs, plan.inputs.model
    pictured = [] if cfg.fv_layers == "none" else resolve_layers(model, cfg.fv_layers)
    if cfg.fv_run:
        with tempfile.TemporaryDirectory() as tmp:
            return _run_visuals(m, cfg, plan.natural, plan.nat_class, tmp, pictured)
    vis = _rendered_visuals(m, cfg, plan.natural, plan.nat_class)
    pictures = _rendered_pictures(
        m, cfg, vis, ordered(model, pictured), plan.natural, plan.nat_class
    )
    return m, vis, pictures


def _run_record(plan: SanityPlan, cfg: SanityConfig, m: ModelInputs, compared: str):
    """The run's params (the config and what it resolved to) and tags."""
    params = dataclasses.asdict(cfg)
    params.update(
        n_images_used=plan.n_used,
        layers_resolved=plan.layers,
        manifest_resolved=plan.manifest_path,
        render_size=m.render_size,
        colours_resolved=plan.colours,
    )
    tags = dict(plan.loaded.tags)
    tags[tag.SANITY_VISUALIZATIONS] = compared
    if plan.adapted:
        tags[tag.ADAPTED] = plan.adapted
    if cfg.fv_run:
        tags[tag.FV_RUN] = cfg.fv_run
    return params, tags


def run_sanity(cfg: SanityConfig) -> SanityOutcome:
    """Path similarity, baselines, randomization and transferability of ``cfg.model_uri``'s
    visualizations (rendered here or read from ``cfg.fv_run``); one run."""
    plan = resolve_plan(cfg)
    m, vis, pictures = _visuals(plan, cfg)
    model, layers, natural, nat_class = m.model, plan.layers, plan.natural, plan.nat_class
    target = torch.tensor(vis.main["target"].to_numpy(dtype="int64"))
    logit_target = torch.tensor(vis.logits["target"].to_numpy(dtype="int64"))
    compared = vis.main["kind"].iloc[0]
    extra = {"class_logit": (vis.logit_images, logit_target)} if compared == "channel" else None
    params, tags = _run_record(plan, cfg, m, compared)
    with stage_run(STAGE, params=params, tags=tags) as run:
        log_manifest_input(plan.sample, name="sanity-natural-images", context="natural")
        _log_compared(vis, m, extra)
        noise = noise_images(len(target), m.render_size, seed=cfg.seed)
        res = S.path_similarity_analysis(
            model, layers, natural, nat_class, vis.images, target, unregularized=vis.twins,
            noise=noise, extra=extra, metric=cfg.metric, pooling=cfg.pooling,
            standardize=cfg.standardize, **m.forward_kw,
        )  # fmt: skip
        verdict = _record_verdict(_log_path_similarity(res, cfg))
        path = ordered(model, list(dict.fromkeys([*layers, *(p.layer for p in pictures)])))
        log_layer_verdicts(
            model, path, natural, nat_class, noise, pictures, metric=cfg.metric,
            pooling=cfg.pooling, standardize=cfg.standardize, n_boot=cfg.n_boot,
            level=cfg.interval, seed=cfg.seed, **m.forward_kw,
        )  # fmt: skip
        if plan.levels:
            _randomization(m, cfg, vis, plan.levels)
        if plan.reference is not None:
            _transferability(plan.reference, m, vis, logit_target)
        if verdict:
            log.info(f"sanity: {verdict}")  # the stage's conclusion, its last line
    return SanityOutcome(run.info.run_id, res, vis)


def _log_compared(vis: Visuals, m: ModelInputs, extra: dict | None) -> None:
    """The table and the grid of the pictures compared (with the class-logit ones when the
    main pictures are channels)."""
    shown = pd.concat([vis.main, vis.logits]) if extra else vis.main
    log_dataframe(shown, "tables/visualizations.csv")
    images = (
        torch.cat([vis.images, at_size(vis.logit_images, m.render_size)]) if extra else vis.images
    )
    log_figure(
        plot_image_grid(images, shown["label"].tolist(), title="Visualizations compared"),
        "figures/visualizations.png",
    )
