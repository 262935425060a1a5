"""The ``layers`` stage's MLflow side: resolve the plan once (model, its recorded base, layers,
images, monitor), compute (:func:`compare_layers`, no MLflow), then log metrics
``<measure>/<layer>`` and ``<measure>`` with the layer's depth as step (the UI draws each
measure as a curve over depth), ``tables/layers.csv`` and ``figures/layer_profile.png``."""

from __future__ import annotations

import dataclasses

import pandas as pd

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.batch_fit import fitted_batch
from isic_tracking.log import get_logger
from isic_tracking.models import resolve_layers
from isic_tracking.stages.layers.compute import MONITORS, LayersPlan, LayersResult, compare_layers
from isic_tracking.stages.layers.config import LayersConfig
from isic_tracking.stages.layers.plots import layer_profile
from isic_tracking.tracking import tag
from isic_tracking.tracking.analysis import natural_images
from isic_tracking.tracking.init import load_base
from isic_tracking.tracking.registry import LoadedModel, load_model
from isic_tracking.tracking.runs import (
    describe,
    get_run,
    log_dataframe,
    log_figure,
    log_metrics,
    param,
    stage_run,
)
from isic_tracking.utils import resolve_device, seed_everything

log = get_logger(__name__)
STAGE = "layers"
#: the per-layer measures logged as metrics
MEASURES = ("cka", "weight_change", "reset_drop", "rerandomize_drop", "probe_base",
            "probe_tuned", "topk_jaccard", "fv_same", "fv_other")  # fmt: skip


def resolve_monitor(cfg: LayersConfig, loaded: LoadedModel) -> str:
    """The metric of the reset criticality: asked for, else the training run's monitor."""
    monitor = cfg.monitor
    if not monitor and loaded.train_run_id:
        monitor = param(get_run(loaded.train_run_id), "monitor")
    if not monitor:
        monitor = "roc_auc" if loaded.config.get("task") == "binary" else "balanced_accuracy"
    monitor = monitor.removeprefix("best_").removeprefix("val_")
    if monitor not in MONITORS:
        raise IsicInputError(f"layers: monitor {monitor!r} is not one of {MONITORS}")
    return monitor


def _log_rows(result: LayersResult) -> None:
    for row in result.rows:
        values = {m: getattr(row, m) for m in MEASURES}
        log_metrics({f"{m}/{row.layer}": v for m, v in values.items()}, step=row.depth)
        log_metrics(values, step=row.depth)


def layers_summary(table: pd.DataFrame, base: str, monitor: str, metric: float) -> str:
    """What the run found, in words: where the model moved away from its base, which layers
    are critical (interval above 0), where the classes become decodable."""
    moved = table.sort_values("cka").iloc[0]
    critical = table.loc[table["reset_drop_low"] > 0, "layer"].tolist()
    fragile = table.loc[table["rerandomize_drop_low"] > 0, "layer"].tolist()
    gain = (table["probe_tuned"] - table["probe_base"]).round(3)
    return "\n".join([
        f"Base: {base}. Fine-tuned `{monitor}` on the analysed images: {metric:.4f}.",
        f"- Least similar to its base: `{moved['layer']}` (CKA {moved['cka']:.3f}); "
        f"largest weight change: `{table.loc[table['weight_change'].idxmax(), 'layer']}`.",
        f"- Critical when reset to the base (95 % interval of the drop above 0): "
        f"{', '.join(f'`{x}`' for x in critical) or 'none'}; when re-randomized: "
        f"{', '.join(f'`{x}`' for x in fragile) or 'none'}.",
        "- k-NN probe gain over the base, per layer: "
        + ", ".join(f"`{n}` {g:+.3f}" for n, g in zip(table["layer"], gain)),
    ])  # fmt: skip


def run_layers(cfg: LayersConfig) -> LayersResult:
    """Compare ``cfg.model_uri`` with its own recorded base, layer by layer; one run."""
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    loaded = load_model(cfg.model_uri, device)
    base = load_base(loaded, device)
    config = loaded.config
    size = cfg.image_size or int(config["image_size"])
    layers = resolve_layers(loaded.model, cfg.layers, default="all")
    monitor = resolve_monitor(cfg, loaded)
    batch = cfg.batch_size or fitted_batch(loaded.model, size, device)
    images, about = natural_images(loaded, cfg.manifest, cfg.split, size, batch, "val0")
    if images is None:
        raise IsicInputError(f"layers needs natural images: {about}")
    plan = LayersPlan(tuple(layers), config.get("task", "binary"), monitor,
                      tuple(config["mean"]), tuple(config["std"]), cfg.top_k, cfg.n_boot,
                      cfg.fv_steps, size, cfg.seed, cfg.positions)  # fmt: skip
    about_base = base.tags[tag.MODEL_BASE]
    params = {**dataclasses.asdict(cfg), "layers_resolved": ",".join(layers),
              "monitor_resolved": monitor, "batch_size_resolved": batch,
              "images": about}  # fmt: skip
    with (
        images,
        stage_run(STAGE, params, tags={**loaded.tags, tag.BASE: about_base}, run_name=STAGE),
    ):
        result = compare_layers(loaded.model, base.model, lambda: images, plan)
        table = pd.DataFrame([r.as_dict() for r in result.rows])
        _log_rows(result)
        log_metrics({f"{monitor}": result.metric, "n_images": result.n_images})
        log_dataframe(table, "tables/layers.csv")
        title = f"{config['arch']} · {plan.task}: fine-tuned vs its base ({about_base})"
        log_figure(layer_profile(table, title, monitor), "figures/layer_profile.png")
        summary = layers_summary(table, about_base, monitor, result.metric)
        describe(f"**layers** of `{cfg.model_uri}` on {about}\n\n{summary}")
        log.info(summary)
    return result
