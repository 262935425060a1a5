"""``visualize``: feature visualization by activation maximization (thesis §4.4, §5.4.1): the
images that maximize chosen filters (``top_n`` from a ``filters`` run or a quick pass, ``all``,
indices) or the class logits, with one or more regularization presets and engines, next to the
ImageNet base on request. Logs grids, PNGs and ``tables/activations.csv`` (read by ``sanity``)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from entrypoints._common import parser, run_main
from isic_tracking.config import add_config_args, config_from_args
from isic_tracking.interpret.stage_config import VisualizeConfig


def build_parser() -> argparse.ArgumentParser:
    return add_config_args(parser("visualize", __doc__), VisualizeConfig)


def _main(argv: Sequence[str] | None = None) -> int:
    cfg = config_from_args(VisualizeConfig, build_parser().parse_args(argv))
    from isic_tracking.tracking.visualize import run_visualize  # heavy: after parsing

    run_visualize(cfg)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
