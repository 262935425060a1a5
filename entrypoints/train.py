"""``train``: stratified (grouped) k-fold training, one parent run + one nested run per fold,
fold checkpoints registered with alias ``champion``. Resumable; runs under ``torchrun``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from entrypoints._common import run_main
from isic_tracking import log
from isic_tracking.config import TrainConfig, add_config_args, config_from_args
from isic_tracking.tracking.training import run_training


def build_parser() -> argparse.ArgumentParser:
    return add_config_args(argparse.ArgumentParser(prog="train", description=__doc__), TrainConfig)


def _main(argv: Sequence[str] | None = None) -> int:
    cfg = config_from_args(TrainConfig, build_parser().parse_args(argv))
    run_training(cfg)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    log.setup()
    return run_main(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
