"""``train``: stratified (grouped) k-fold training, one parent run + one nested run per fold,
fold checkpoints registered with alias ``champion``. Resumable; runs under ``torchrun``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from entrypoints._common import parser, run_main
from isic_tracking import log
from isic_tracking.config import TrainConfig, add_config_args, config_from_args


def build_parser() -> argparse.ArgumentParser:
    return add_config_args(parser("train", __doc__), TrainConfig)


def _main(argv: Sequence[str] | None = None) -> int:
    cfg = config_from_args(TrainConfig, build_parser().parse_args(argv))
    from isic_tracking.tracking.training import run_training  # heavy: after parsing

    run_training(cfg)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    log.setup()
    return run_main(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
