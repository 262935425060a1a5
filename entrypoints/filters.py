"""``filters``: class-specific and artifact-specific filters of a model (thesis §5.4.1, §5.5).

One pass over the images of a split keeps, per layer, filter and image, the max activation
(and where it is); each filter's 0.95 quantile over the images is its threshold; per class
(and per artifact group: hair, ruler, ... from the manifest's ``artifact`` column or the
z-score detector) the share of images above it ranks the filters. Logs the class x filter
heatmap (Fig. 26), the top-N table (Table 10, CSV + figure), the artifact groups' top
filters next to the classes', their Jaccard overlap, how well each artifact's top filter
recovers the artifact (``recovery_auc/<artifact>``) and dataset exemplars of the top filters.

Artifacts (``tables/class_filters.csv``: ``class, filter, occurrences, percent, rank, layer``)
are what ``visualize --filters_run`` reads.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence

import pandas as pd

from entrypoints._common import count, optional, run_main, str2bool
from isic_tracking.data.dataset import make_loader
from isic_tracking.data.defaults import default_manifest
from isic_tracking.data.manifest import infer_task, task_classes
from isic_tracking.data.outliers import score_table
from isic_tracking.data.transforms import build_transforms
from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.activations import activation_stats
from isic_tracking.interpret.exemplars import exemplar_crops, top_exemplars
from isic_tracking.interpret.filters import (
    FilterReport,
    check_classes_present,
    filter_report,
    membership,
)
from isic_tracking.interpret.plots import (
    exemplar_grid,
    filter_heatmap,
    jaccard_heatmap,
    top_filters_table,
)
from isic_tracking.models import resolve_layers
from isic_tracking.tracking import (
    load_model,
    log_dataframe,
    log_figure,
    log_manifest_input,
    log_metrics,
    stage_run,
)
from isic_tracking.tracking.analysis import split_rows
from isic_tracking.utils import resolve_device, seed_everything

STAGE = "filters"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=STAGE, description=__doc__)
    p.add_argument(
        "--model_uri",
        default="models:/isic-binary-alexnet@champion",
        help="models:/name@alias, models:/name/version, runs:/<id>/checkpoint or pretrained:<arch>",
    )
    p.add_argument(
        "--manifest", type=optional, default=None, help="default: the training run's manifest"
    )
    p.add_argument(
        "--split",
        default="val0",
        help="valK (validation images of fold K of the training run), train, test or all",
    )
    p.add_argument("--layers", default="last", help="last, first, all (every conv) or names")
    p.add_argument("--quantile", type=float, default=0.95, help="per-filter threshold quantile")
    p.add_argument("--top_n", type=count, default=5, help="top filters per class and group")
    p.add_argument(
        "--groups",
        default="artifact",
        help="image groups beside the classes: a manifest column (default `artifact`, skipped "
        "when absent), `zscore` (the z-score artifact detector), a comma list, or `none`",
    )
    p.add_argument("--exemplars", type=count, default=8, help="exemplars per top filter (0: off)")
    p.add_argument(
        "--exemplar_layers", default="last", help="layers with exemplar grids: last or all"
    )
    p.add_argument("--image_size", type=count, default=0, help="input size (0: the model's config)")
    p.add_argument("--zscore_threshold", type=float, default=2.0, help="pixel |z| of an outlier")
    p.add_argument("--batch_size", type=count, default=32)
    p.add_argument("--workers", type=count, default=0, help="DataLoader worker processes")
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


def _split_rows(args, loaded) -> tuple[pd.DataFrame, str]:
    """(rows of the requested split, manifest path); a base model falls back to synthetic."""
    return split_rows(
        loaded, args.manifest, args.split, fallback_manifest=lambda: str(default_manifest("binary"))
    )


def _class_names(config: dict, df: pd.DataFrame) -> list[str]:
    """The model's classes; for an ImageNet base (no classes of ours), the manifest's task."""
    if config.get("task") in ("binary", "multiclass"):
        return [str(c) for c in config["classes"]]
    return list(task_classes(infer_task(df)))


def _groups(spec: str, rows: pd.DataFrame, args, config: dict) -> pd.DataFrame | None:
    """Boolean [images, groups] table from manifest columns and/or the z-score detector."""
    tables = []
    for item in (s.strip() for s in spec.split(",")):
        if item in ("", "none"):
            continue
        if item == "zscore":
            loader = make_loader(
                rows,
                build_transforms(int(config["image_size"]), train=False, mean=None),
                args.batch_size,
                workers=args.workers,
                return_index=True,
            )
            flags = score_table(rows, loader, threshold=args.zscore_threshold)["is_outlier"]
            tables.append(pd.DataFrame({"zscore_outlier": flags.to_numpy(dtype=bool)}))
        elif item in rows.columns:
            tables.append(membership(rows[item]))
        elif item == "artifact":
            print("note: the manifest has no `artifact` column: classes only (groups=none)")
        else:
            raise IsicInputError(
                f"groups={item!r} is neither `zscore`, `none` nor a manifest column; "
                f"columns: {', '.join(map(str, rows.columns))}"
            )
    return pd.concat(tables, axis=1) if tables else None


# --------------------------------------------------------------------------- outputs


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _union_top(top: pd.DataFrame, layer: str) -> list[int]:
    return sorted(set(top.loc[top["layer"] == layer, "filter"].astype(int)))


def _log_kind(top, percent, kind: str, title: str, layers: list[str]) -> None:
    """Top-N table, per-layer percentages and heatmaps of one kind (class or group)."""
    log_dataframe(top, f"tables/{kind}_filters.csv")
    log_figure(top_filters_table(top, f"Top filters per {kind}"), f"figures/{kind}_top.png")
    for layer in layers:
        pct = percent[layer]
        log_dataframe(pct.reset_index(), f"tables/{kind}_percent_{_safe(layer)}.csv")
        fig = filter_heatmap(pct, f"{title}-specific filters, {layer}", _union_top(top, layer))
        log_figure(fig, f"figures/{kind}_heatmap_{_safe(layer)}.png")


def _log_tables(report: FilterReport, layers: list[str]) -> None:
    _log_kind(report.class_top, report.class_percent, "class", "Class", layers)
    if report.group_top.empty:
        return
    _log_kind(report.group_top, report.group_percent, "group", "Group", layers)
    log_dataframe(report.jaccard.reset_index(), "tables/jaccard.csv")
    log_figure(jaccard_heatmap(report.jaccard), "figures/jaccard.png")
    log_dataframe(report.recovery, "tables/recovery_auc.csv")
    last = layers[-1]
    metrics = {}
    for r in report.recovery.itertuples(index=False):
        if r.layer == last:
            metrics[f"recovery_auc/{r.artifact}"] = r.auc
            metrics[f"recovery_best_auc/{r.artifact}"] = r.best_auc
        if len(layers) > 1:
            metrics[f"recovery_auc/{r.artifact}/{r.layer}"] = r.auc
    log_metrics({_metric_key(k): v for k, v in metrics.items()})


def _metric_key(key: str) -> str:
    """MLflow metric names allow alphanumerics, _ - . / and spaces."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]+", "_", key)


def _log_exemplars(stats, top: pd.DataFrame, key: str, rows, loader, config, k: int) -> int:
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
        log_figure(fig, f"figures/exemplars/{_safe(layer)}/{key}_{_safe(str(group))}.png")
        n += 1
    return n


# --------------------------------------------------------------------------- main


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    seed_everything(args.seed)
    device = resolve_device(args.device)
    loaded = load_model(args.model_uri, device, allow_random=args.allow_random)
    model, config = loaded.model, dict(loaded.config)
    if args.image_size > 0:
        config["image_size"] = args.image_size
    layers = resolve_layers(model, args.layers, default="last")
    rows, manifest = _split_rows(args, loaded)
    classes = _class_names(config, rows)
    split = f"split {args.split!r} of {manifest}"
    check_classes_present(rows["label"].to_numpy(), classes, split)
    groups = _groups(args.groups, rows, args, config)

    params = {**vars(args), "manifest": manifest, "layers_resolved": ",".join(layers)}
    params["n_images"] = len(rows)
    with stage_run(STAGE, params, tags=loaded.tags, run_name=STAGE):
        log_manifest_input(rows, name="filters-split", context=STAGE, source=manifest)
        mean, std = config["mean"], config["std"]
        loader = make_loader(
            rows,
            build_transforms(int(config["image_size"]), train=False, mean=mean, std=std),
            args.batch_size,
            workers=args.workers,
            return_index=True,
        )
        stats = activation_stats(model, loader, layers, device)
        report = filter_report(
            {n: s.max for n, s in stats.items()},
            stats[layers[0]].labels,
            classes,
            None if groups is None else groups.iloc[stats[layers[0]].indices.numpy()],
            args.quantile,
            args.top_n,
            split=split,
        )
        _log_tables(report, layers)
        n_grids = 0
        if args.exemplars > 0:
            ex_layers = layers if args.exemplar_layers == "all" else [layers[-1]]
            ex_stats = {n: stats[n] for n in ex_layers}
            for top, key in ((report.class_top, "class"), (report.group_top, "group")):
                if not top.empty:
                    n_grids += _log_exemplars(
                        ex_stats, top, key, rows, loader, config, args.exemplars
                    )
        print(report.class_top.to_string(index=False))
        if not report.recovery.empty:
            print(report.recovery.to_string(index=False))
        print(f"filters: {len(rows)} images, layers {', '.join(layers)}, {n_grids} exemplar grids")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
