"""``compare``: one table (train/val/test accuracy, balanced accuracy, AUC, loss, mean ± std
over folds) across training runs or registered models, plus bar charts with error bars."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from entrypoints._common import parser, run_main


def _csv(v: str) -> list[str]:
    return [x.strip() for x in v.split(",") if x.strip() and x.strip() != "none"]


def build_parser() -> argparse.ArgumentParser:
    p = parser("compare", __doc__)
    p.add_argument("--runs", type=_csv, default="", help="comma-separated train run ids")
    p.add_argument(
        "--models",
        type=_csv,
        default="",
        help="comma-separated registered model names (name, name@alias, name/version)",
    )
    return p


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # heavy imports after parsing: `--help` stays instant
    import mlflow

    from isic_tracking.stages.compare.runner import compare_runs, mean_std_table, resolve_train_runs
    from isic_tracking.tracking import log_dataframe, log_figure, stage_run, tag
    from isic_tracking.train.plots import metric_bars_figure

    run_ids = resolve_train_runs(args.runs, args.models)
    result = compare_runs(run_ids)
    params = {"runs": ",".join(run_ids), "n_runs": len(run_ids)}
    with stage_run("compare", params, run_name="compare"):
        mlflow.set_tag(tag.COMPARABLE, str(result.comparable).lower())
        for w in result.warnings:
            print(f"WARNING: {w}")
        if result.warnings:
            mlflow.set_tag(tag.COMPARE_WARNINGS, " | ".join(result.warnings)[:4000])
        log_dataframe(result.table, "tables/comparison_raw.csv")
        log_dataframe(mean_std_table(result.table), "tables/comparison.csv")
        for part in ("val", "test"):
            for metric in ("roc_auc", "balanced_accuracy", "accuracy"):
                col = f"{part}_{metric}"
                if result.table[f"{col}_mean"].notna().any():
                    log_figure(metric_bars_figure(result.table, col), f"figures/{col}.png")
        print(mean_std_table(result.table).to_string(index=False))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
