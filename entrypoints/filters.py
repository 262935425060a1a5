"""``filters``: class-specific and artifact-specific filters of a model (thesis §5.4.1, §5.5):
per class and artifact group the filters most often above their 0.95 quantile, their heatmaps,
top-N tables, Jaccard overlap, artifact recovery AUCs and dataset exemplars. Its
``tables/class_filters.csv`` is what ``visualize --filters_run`` reads."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from entrypoints._common import parser, run_main
from isic_tracking.config import add_config_args, config_from_args
from isic_tracking.interpret.stage_config import FiltersConfig


def build_parser() -> argparse.ArgumentParser:
    return add_config_args(parser("filters", __doc__), FiltersConfig)


def _main(argv: Sequence[str] | None = None) -> int:
    cfg = config_from_args(FiltersConfig, build_parser().parse_args(argv))
    from isic_tracking.tracking.filters import run_filters  # heavy: after parsing

    run_filters(cfg)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
