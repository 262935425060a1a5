"""The ``filters`` stage: class-specific and artifact-specific filters of a model (thesis
§5.4.1, §5.5), logged as one run.

One pass over the images of a split keeps, per layer, filter and image, the max activation
(and where it is); each filter's 0.95 quantile over the images is its threshold; per class
(and per artifact group: hair, ruler, ... from the manifest's ``artifact`` column or the
z-score detector) the share of images above it ranks the filters. Logs the class x filter
heatmap (Fig. 26), the top-N table (Table 10, CSV + figure), the artifact groups' top
filters next to the classes', their Jaccard overlap, how well each artifact's top filter
recovers the artifact (``recovery_auc/<artifact>``) and dataset exemplars of the top filters.
Then two probes of the rankings (:mod:`.runner_probes`): removing each class's
top filters against random ones (ablation), and each unit's IoU with the images' concept
masks where the synthetic set wrote them (Network Dissection).

Only live filters are ranked: the dead and constant ones (:mod:`isic_tracking.interpret.liveness`) are
counted (``dead_filters``, ``constant_filters``), listed in ``tables/inactive_filters.csv``
and named in one terminal line. A filter's response is read after the BatchNorm that follows
its conv, where there is one (:mod:`isic_tracking.interpret.response`). With ``shortcut_artifact`` set,
the planted shortcut's check is logged (``shortcut_auc``, tag ``isic.shortcut_check``).

``tables/class_filters.csv`` (``class, filter, occurrences, percent, rank, mean_z, layer``)
is what ``visualize --filters_run`` reads.

The run has three steps: :func:`resolve_plan` resolves and checks every setting once (the
model, layers, analysed images, classes, image groups) into a :class:`~.compute.FiltersPlan`;
:func:`~.compute.compute_filters` computes without MLflow; the runner logs what it returns
(:func:`log_result`; the attribution part, :mod:`.runner_attribution`, computes and logs in
its own step).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import mlflow
import pandas as pd

from isic_tracking.data.dataset import make_loader
from isic_tracking.data.decoded import DecodedImages
from isic_tracking.data.defaults import default_manifest
from isic_tracking.data.outliers import score_table
from isic_tracking.data.transforms import build_transforms
from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.filters import check_classes_present, membership
from isic_tracking.interpret.liveness import inactive_filters, liveness_counts
from isic_tracking.interpret.names import safe_name
from isic_tracking.interpret.plots import (
    exemplar_grid,
    filter_heatmap,
    jaccard_heatmap,
    top_filters_table,
)
from isic_tracking.interpret.response import response_layers
from isic_tracking.log import get_logger
from isic_tracking.models import resolve_layers
from isic_tracking.stages.filters.compute import (
    FiltersPlan,
    FiltersResult,
    ablated_layers,
    compute_filters,
)
from isic_tracking.stages.filters.config import FiltersConfig
from isic_tracking.stages.filters.outputs import (
    ZSCORE,
    ShortcutCheck,
    class_names,
    group_sources,
    liveness_line,
    liveness_metrics,
    recovery_metrics,
    union_top,
)
from isic_tracking.stages.filters.report import FilterReport
from isic_tracking.stages.filters.runner_attribution import AttributionInputs, log_attribution
from isic_tracking.stages.filters.runner_probes import log_ablation, log_dissection
from isic_tracking.tracking import tag
from isic_tracking.tracking.analysis import split_rows
from isic_tracking.tracking.registry import load_model
from isic_tracking.tracking.runs import (
    log_dataframe,
    log_figure,
    log_manifest_input,
    log_metrics,
    stage_run,
)
from isic_tracking.utils import resolve_device, seed_everything

STAGE = "filters"
log = get_logger(__name__)


@dataclass
class FiltersOutcome:
    run_id: str
    report: FilterReport
    layers: list[str]
    n_images: int
    n_grids: int
    ablation: pd.DataFrame = field(default_factory=pd.DataFrame)  # verdicts per target
    dissection: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per unit


# --------------------------------------------------------------------------- the plan


def _groups(cfg: FiltersConfig, rows: pd.DataFrame, image_size: int) -> pd.DataFrame | None:
    """Boolean [images, groups] table from manifest columns and/or the z-score detector."""
    sources, notes = group_sources(cfg.groups, list(rows.columns))
    for note in notes:
        log.info(note)
    tables = []
    for source in sources:
        if source == ZSCORE:
            loader = make_loader(
                rows,
                build_transforms(image_size, train=False, mean=None),
                cfg.batch_size,
                workers=cfg.workers,
                return_index=True,
            )
            flags = score_table(rows, loader, threshold=cfg.zscore_threshold)["is_outlier"]
            tables.append(pd.DataFrame({"zscore_outlier": flags.to_numpy(dtype=bool)}))
        else:
            tables.append(membership(rows[source]))
    return pd.concat(tables, axis=1) if tables else None


def _check_shortcut_group(cfg: FiltersConfig, groups: pd.DataFrame | None, split: str) -> None:
    """Before any run: the shortcut's artifact must be an image group of the analysed split."""
    if cfg.shortcut_artifact == "none":
        return
    names = [] if groups is None else [str(c) for c in groups.columns]
    if cfg.shortcut_artifact not in names:
        raise IsicInputError(
            f"shortcut_artifact={cfg.shortcut_artifact!r}: no image of {split} is in that group "
            f"(groups: {', '.join(names) or 'none'}); use groups=artifact and images that "
            "carry it (e.g. split=all)"
        )


def resolve_plan(cfg: FiltersConfig) -> FiltersPlan:
    """Every setting of the run resolved and checked once, before any run starts: the model,
    its layers and their response modules, the analysed images, their classes (each must
    have images) and groups (the shortcut's among them), the loader."""
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    loaded = load_model(cfg.model_uri, device, allow_random=cfg.allow_random)
    model, config = loaded.model, dict(loaded.config)
    if cfg.image_size > 0:
        config["image_size"] = cfg.image_size
    size = int(config["image_size"])
    layers = resolve_layers(model, cfg.layers, default="last")
    rows, manifest = split_rows(
        loaded, cfg.manifest, cfg.split, fallback_manifest=lambda: str(default_manifest("binary"))
    )
    classes = class_names(config, rows)
    split = f"split {cfg.split!r} of {manifest}"
    check_classes_present(rows["label"].to_numpy(), classes, split)
    groups = _groups(cfg, rows, size)
    _check_shortcut_group(cfg, groups, split)
    modules = {layer: module for module, layer in response_layers(model, layers).items()}
    ablated_layers(cfg.ablate_layers, layers)  # names checked before any run
    # every pass (ranking, ablation, dissection, exemplars, attribution) reads the pixels
    # decoded by the first: each image is decoded once per run
    loader = DecodedImages(rows, size, config["mean"], config["std"], cfg.batch_size, cfg.workers)
    return FiltersPlan(
        cfg, model, config, tuple(layers), rows, manifest, tuple(classes), split, groups,
        modules, loader, device, dict(loaded.tags),
    )  # fmt: skip


def _params(plan: FiltersPlan) -> dict[str, Any]:
    """The run's params: the settings and what they resolved to."""
    params = {**dataclasses.asdict(plan.settings), "manifest": plan.manifest}
    params["layers_resolved"] = ",".join(plan.layers)
    params["n_images"] = len(plan.rows)
    params["response_layers"] = ",".join(plan.modules.values())
    return params


# --------------------------------------------------------------------------- logging


def _log_kind(top, percent, kind: str, title: str, layers) -> None:
    """Top-N table, per-layer percentages and heatmaps of one kind (class or group)."""
    log_dataframe(top, f"tables/{kind}_filters.csv")
    log_figure(top_filters_table(top, f"Top filters per {kind}"), f"figures/{kind}_top.png")
    for layer in layers:
        pct = percent[layer]
        log_dataframe(pct.reset_index(), f"tables/{kind}_percent_{safe_name(layer)}.csv")
        fig = filter_heatmap(pct, f"{title}-specific filters, {layer}", union_top(top, layer))
        log_figure(fig, f"figures/{kind}_heatmap_{safe_name(layer)}.png")


def _log_liveness(report: FilterReport) -> None:
    """The dead and constant filters: counts, the table and one terminal line."""
    counts = liveness_counts(report.liveness)
    log_dataframe(inactive_filters(report.liveness), "tables/inactive_filters.csv")
    log_metrics(liveness_metrics(counts))
    log.info(liveness_line(counts))


def _log_shortcut(check: ShortcutCheck) -> None:
    """The planted shortcut's check: metrics and pass/fail tag."""
    log_metrics({"shortcut_auc": check.auc, "shortcut_malignant_auc": check.malignant_auc})
    mlflow.set_tags({tag.SHORTCUT_CHECK: "pass" if check.passed else "fail"})
    log.info(
        f"shortcut {check.artifact!r}: top filter {check.layer}:{check.filter} has ROC AUC "
        f"{check.auc:.3f} for the artifact (>= {check.min_auc}: "
        f"{'pass' if check.passed else 'fail'}), {check.malignant_auc:.3f} for malignant"
    )


def _log_tables(report: FilterReport, layers) -> None:
    _log_liveness(report)
    _log_kind(report.class_top, report.class_percent, "class", "Class", layers)
    if report.group_top.empty:
        return
    _log_kind(report.group_top, report.group_percent, "group", "Group", layers)
    log_dataframe(report.jaccard.reset_index(), "tables/jaccard.csv")
    log_figure(jaccard_heatmap(report.jaccard), "figures/jaccard.png")
    log_dataframe(report.recovery, "tables/recovery_auc.csv")
    log_metrics(recovery_metrics(report.recovery, list(layers)))


def _log_attribution(plan: FiltersPlan, result: FiltersResult) -> None:
    """The attribution part (:mod:`.runner_attribution`), when Grad-CAM or a ranking is on."""
    cfg = plan.settings
    if cfg.gradcam or cfg.attribution != "none":
        inputs = AttributionInputs(
            plan.model, plan.loader.dataset, result.stats, list(plan.classes),
            plan.config["mean"], plan.config["std"], cfg.batch_size,
        )  # fmt: skip
        log_attribution(inputs, result.report, list(plan.layers), plan.exemplar_layers, cfg)


def log_result(plan: FiltersPlan, result: FiltersResult) -> None:
    """Into the active run: the rankings' tables, figures and metrics, Table 10, the shortcut
    check, the probes, the exemplar grids, the attribution part and the terminal summary."""
    report = result.report
    _log_tables(report, plan.layers)
    log_dataframe(result.most_activated, "tables/most_activated.csv")
    if result.shortcut is not None:
        _log_shortcut(result.shortcut)
    if result.ablation is not None:
        log_ablation(result.ablation)
    if result.dissection is not None:
        log_dissection(result.dissection)
    for g in result.exemplars:
        log_figure(exemplar_grid(g.crops, g.columns, g.labels, ncols=g.ncols, title=g.title),
                   g.path)  # fmt: skip
    _log_attribution(plan, result)
    log.info(report.class_top.to_string(index=False))
    if not report.recovery.empty:
        log.info(report.recovery.to_string(index=False))
    log.info(
        f"filters: {len(plan.rows)} images, layers {', '.join(plan.layers)}, "
        f"{len(result.exemplars)} exemplar grids"
    )


def run_filters(cfg: FiltersConfig) -> FiltersOutcome:
    """Rank the filters of ``cfg.model_uri`` per class and group on one split; one run:
    resolve the plan, compute (no MLflow), log."""
    plan = resolve_plan(cfg)
    with (
        plan.loader,
        stage_run(STAGE, _params(plan), tags=dict(plan.tags), run_name=STAGE) as run,
    ):
        log_manifest_input(plan.rows, name="filters-split", context=STAGE, source=plan.manifest)
        result = compute_filters(plan)
        log_result(plan, result)
    ablation = pd.DataFrame() if result.ablation is None else result.ablation.verdicts
    dissection = pd.DataFrame() if result.dissection is None else result.dissection.table
    return FiltersOutcome(
        run.info.run_id, result.report, list(plan.layers), len(plan.rows),
        len(result.exemplars), ablation, dissection,
    )  # fmt: skip
