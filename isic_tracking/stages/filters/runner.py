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
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import mlflow
import pandas as pd

from isic_tracking.data.dataset import make_loader
from isic_tracking.data.defaults import default_manifest
from isic_tracking.data.outliers import score_table
from isic_tracking.data.transforms import build_transforms
from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.activations import LayerStats
from isic_tracking.interpret.exemplars import exemplar_crops, top_exemplars
from isic_tracking.interpret.filters import check_classes_present, membership
from isic_tracking.interpret.liveness import (
    inactive_filters,
    liveness_counts,
    most_activated_table,
)
from isic_tracking.interpret.names import safe_name
from isic_tracking.interpret.plots import (
    exemplar_grid,
    filter_heatmap,
    jaccard_heatmap,
    top_filters_table,
)
from isic_tracking.interpret.response import response_layers, response_stats
from isic_tracking.log import get_logger
from isic_tracking.models import resolve_layers
from isic_tracking.stages.filters.config import FiltersConfig
from isic_tracking.stages.filters.outputs import (
    ZSCORE,
    class_names,
    group_sources,
    liveness_line,
    liveness_metrics,
    recovery_metrics,
    shortcut_check,
    union_top,
)
from isic_tracking.stages.filters.report import FilterReport, filter_report
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


def _log_kind(top, percent, kind: str, title: str, layers: list[str]) -> None:
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


def _log_shortcut(
    cfg: FiltersConfig, report: FilterReport, stats: LayerStats, classes: list[str]
) -> None:
    """The planted shortcut's check: metrics and pass/fail tag."""
    check = shortcut_check(
        report.recovery, cfg.shortcut_artifact, stats.name, cfg.shortcut_min_auc,
        stats.max.numpy(), stats.labels.numpy(), classes,
    )  # fmt: skip
    log_metrics({"shortcut_auc": check.auc, "shortcut_malignant_auc": check.malignant_auc})
    mlflow.set_tags({tag.SHORTCUT_CHECK: "pass" if check.passed else "fail"})
    log.info(
        f"shortcut {check.artifact!r}: top filter {stats.name}:{check.filter} has ROC AUC "
        f"{check.auc:.3f} for the artifact (>= {check.min_auc}: "
        f"{'pass' if check.passed else 'fail'}), {check.malignant_auc:.3f} for malignant"
    )


def _log_most_activated(stats: dict[str, LayerStats], top_n: int) -> None:
    """Table 10 of the thesis: the most activated live filters of each analysed layer."""
    table = pd.concat(
        [most_activated_table(s.max, top_n).assign(layer=name) for name, s in stats.items()],
        ignore_index=True,
    )
    log_dataframe(table, "tables/most_activated.csv")


def _log_tables(report: FilterReport, layers: list[str]) -> None:
    _log_liveness(report)
    _log_kind(report.class_top, report.class_percent, "class", "Class", layers)
    if report.group_top.empty:
        return
    _log_kind(report.group_top, report.group_percent, "group", "Group", layers)
    log_dataframe(report.jaccard.reset_index(), "tables/jaccard.csv")
    log_figure(jaccard_heatmap(report.jaccard), "figures/jaccard.png")
    log_dataframe(report.recovery, "tables/recovery_auc.csv")
    log_metrics(recovery_metrics(report.recovery, layers))


def _log_exemplars(
    stats: dict[str, LayerStats], top: pd.DataFrame, key: str, rows, loader, config, k: int
) -> int:
    """One grid of dataset exemplars per (class or group, layer); returns how many."""
    dataset = loader.dataset
    n = 0
    for (group, layer), d in top.groupby([key, "layer"], sort=False):
        if layer not in stats:
            continue
        filters = d.sort_values("rank")["filter"].astype(int).tolist()
        ex = top_exemplars(stats[layer], filters, k=k)
        crops = exemplar_crops(ex, lambda i: dataset[i][0], config["mean"], config["std"])
        ids = rows["image_id"].astype(str).to_numpy()
        labels = [f"{ids[e.dataset_index][-10:]}\n{e.activation:.2f}" for e in ex.itertuples()]
        fig = exemplar_grid(
            crops,
            [f"filter {f}" for f in filters],
            labels,
            ncols=k,
            title=f"{layer}: exemplars of {key} {group}'s top filters",
        )
        log_figure(fig, f"figures/exemplars/{safe_name(layer)}/{key}_{safe_name(str(group))}.png")
        n += 1
    return n


def run_filters(cfg: FiltersConfig) -> FiltersOutcome:
    """Rank the filters of ``cfg.model_uri`` per class and group on one split; one run."""
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    loaded = load_model(cfg.model_uri, device, allow_random=cfg.allow_random)
    model, config = loaded.model, dict(loaded.config)
    if cfg.image_size > 0:
        config["image_size"] = cfg.image_size
    layers = resolve_layers(model, cfg.layers, default="last")
    rows, manifest = split_rows(
        loaded, cfg.manifest, cfg.split, fallback_manifest=lambda: str(default_manifest("binary"))
    )
    classes = class_names(config, rows)
    split = f"split {cfg.split!r} of {manifest}"
    check_classes_present(rows["label"].to_numpy(), classes, split)
    groups = _groups(cfg, rows, int(config["image_size"]))
    _check_shortcut_group(cfg, groups, split)
    hooked = response_layers(model, layers)

    params = {**dataclasses.asdict(cfg), "manifest": manifest, "layers_resolved": ",".join(layers)}
    params["n_images"] = len(rows)
    params["response_layers"] = ",".join(hooked)
    with stage_run(STAGE, params, tags=loaded.tags, run_name=STAGE) as run:
        log_manifest_input(rows, name="filters-split", context=STAGE, source=manifest)
        mean, std = config["mean"], config["std"]
        loader = make_loader(
            rows,
            build_transforms(int(config["image_size"]), train=False, mean=mean, std=std),
            cfg.batch_size,
            workers=cfg.workers,
            return_index=True,
        )
        stats = response_stats(model, loader, layers, device)
        report = filter_report(
            {n: s.max for n, s in stats.items()},
            stats[layers[0]].labels,
            classes,
            None if groups is None else groups.iloc[stats[layers[0]].indices.numpy()],
            cfg.quantile,
            cfg.top_n,
            split=split,
        )
        _log_tables(report, layers)
        _log_most_activated(stats, cfg.top_n)
        if cfg.shortcut_artifact != "none":
            _log_shortcut(cfg, report, stats[layers[-1]], classes)
        modules = {layer: module for module, layer in hooked.items()}
        ablation = pd.DataFrame()
        if config.get("task") in ("binary", "multiclass"):  # logits of the analysed classes
            members = None if groups is None else membership(groups, len(rows))
            ablation = log_ablation(
                cfg, model, loader, stats, modules, report, classes, members, device
            )
        elif cfg.ablate_k:
            log.info("ablation needs a classifier of the analysed classes: skipped")
        dissection = log_dissection(
            cfg, model, loader, rows, modules, int(config["image_size"]), device
        )
        n_grids = 0
        if cfg.exemplars > 0:
            ex_layers = layers if cfg.exemplar_layers == "all" else [layers[-1]]
            ex_stats = {n: stats[n] for n in ex_layers}
            for top, key in ((report.class_top, "class"), (report.group_top, "group")):
                if not top.empty:
                    n_grids += _log_exemplars(
                        ex_stats, top, key, rows, loader, config, cfg.exemplars
                    )
        if cfg.gradcam or cfg.attribution != "none":
            inputs = AttributionInputs(
                model, loader.dataset, stats, classes, mean, std, cfg.batch_size
            )
            ex_layers = layers if cfg.exemplar_layers == "all" else [layers[-1]]
            log_attribution(inputs, report, layers, ex_layers, cfg)
        log.info(report.class_top.to_string(index=False))
        if not report.recovery.empty:
            log.info(report.recovery.to_string(index=False))
        log.info(
            f"filters: {len(rows)} images, layers {', '.join(layers)}, {n_grids} exemplar grids"
        )
    return FiltersOutcome(run.info.run_id, report, layers, len(rows), n_grids, ablation, dissection)
