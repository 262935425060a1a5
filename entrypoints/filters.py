"""``filters``: class-specific and artifact-specific filters of a model (thesis §5.4.1, §5.5):
per class and artifact group the filters most often above their 0.95 quantile, their heatmaps,
top-N tables, Jaccard overlap, artifact recovery AUCs and dataset exemplars. Its
``tables/class_filters.csv`` is what ``visualize --filters_run`` reads."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from entrypoints._common import run_main
from isic_tracking.config import add_config_args, config_from_args
from isic_tracking.interpret.stage_config import FiltersConfig
from isic_tracking.tracking.filters import STAGE, run_filters


def build_parser() -> argparse.ArgumentParser:
    return add_config_args(argparse.ArgumentParser(prog=STAGE, description=__doc__), FiltersConfig)


def _main(argv: Sequence[str] | None = None) -> int:
    run_filters(config_from_args(FiltersConfig, build_parser().parse_args(argv)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
