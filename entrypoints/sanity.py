"""``sanity``: how much do feature visualizations resemble what the model sees in real images?
Path similarity of visualizations (from a ``visualize`` run, ``--fv_run``, or rendered here)
vs natural images of their class across the layers, next to natural, noise and unregularized
baselines; a layer x layer correlation, cascading model randomization (Adebayo et al. 2018)
and, with ``--reference_model_uri``, transferability (Fel et al. 2023)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from entrypoints._common import parser, run_main
from isic_tracking.config import add_config_args, config_from_args
from isic_tracking.interpret.stage_config import SanityConfig


def build_parser() -> argparse.ArgumentParser:
    return add_config_args(parser("sanity", __doc__), SanityConfig)


def _main(argv: Sequence[str] | None = None) -> int:
    cfg = config_from_args(SanityConfig, build_parser().parse_args(argv))
    from isic_tracking.tracking.sanity import run_sanity  # heavy: after parsing

    run_sanity(cfg)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
