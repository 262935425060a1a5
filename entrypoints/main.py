"""``main``: synth -> prepare (with the test set) -> eda -> pretrain (the offline base) ->
search -> train (k-fold, registry) -> evaluate (the champion on the test set) -> layers ->
filters -> visualize -> sanity, each stage a child run of one pipeline run; finished
identical stages are reused (``force=true`` reruns them)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from entrypoints._common import (
    add_init_args,
    add_test_set_args,
    optional,
    parser,
    run_main,
    str2bool,
)
from isic_tracking.profiles import PROFILES

PROJECT = str(Path(__file__).resolve().parents[1])


def build_parser() -> argparse.ArgumentParser:
    p = parser("main", __doc__)
    p.add_argument(
        "--dataset", default="synthetic", help="prepare's dataset (synthetic: made here)"
    )
    p.add_argument("--root", type=optional, default=None, help="data folder for real data")
    p.add_argument(
        "--extra_malignant", type=optional, default=None, help="second source of malignant images"
    )
    p.add_argument(
        "--arch", type=optional, default=None, help="model (default: the profile's, demo smallcnn)"
    )
    p.add_argument("--task", default="binary", help="binary | multiclass")
    add_test_set_args(p)
    add_init_args(p)
    p.add_argument("--profile", default="demo", choices=sorted(PROFILES), help="stage settings")
    p.add_argument("--force", type=str2bool, default=False, help="rerun finished stages too")
    return p


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from isic_tracking.tracking.chain import ChainOptions, run_chain  # heavy: after parsing

    run_chain(PROJECT, ChainOptions(**vars(args)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
