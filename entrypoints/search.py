"""``search``: Optuna search of learning rate, batch size and epochs on a stratified subset,
tracked in MLflow (study = parent run, one nested run per trial). Resumable with the same
``study_name``; ``n_workers`` processes, or machines sharing a PostgreSQL ``storage``, share
one study. Train with the result: ``train -P params_from=<search run id>``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from entrypoints._common import parser, run_main
from isic_tracking import log
from isic_tracking.config import add_config_args, config_from_args
from isic_tracking.train.search import SearchConfig


def build_parser() -> argparse.ArgumentParser:
    return add_config_args(parser("search", __doc__), SearchConfig)


def _main(argv: Sequence[str] | None = None) -> int:
    cfg = config_from_args(SearchConfig, build_parser().parse_args(argv))
    from isic_tracking.tracking.search import run_search  # heavy: after parsing

    run_search(cfg)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    log.setup()
    return run_main(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
