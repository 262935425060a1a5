"""``thesis``: the whole study in one command. ``main``'s chain for every (architecture, task)
of the grid, each a child run of one study run, then ``compare`` per task and one
self-contained report (``report.html``: tables and figures in the thesis's order, each linked
to its run). A second invocation reuses every finished chain; a killed one resumes.

The data options take one value for every task or task=value pairs, e.g. the thesis's
study: dataset binary=isic2020,multiclass=isic2019, root binary=/d/isic2020,multiclass=
/d/isic2019, extra_malignant binary=/d/isic2019, test_dataset binary=isic2016-test,
test_root binary=/d/isic2016 (README, "thesis")."""

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


def _csv(v: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in v.split(",") if x.strip())


def build_parser() -> argparse.ArgumentParser:
    p = parser("thesis", __doc__)
    p.add_argument(
        "--archs",
        type=_csv,
        default=(),
        help="comma-separated models (default: the profile's grid; demo smallcnn,timm:resnet10t;"
        " full alexnet,vgg16,resnet50)",
    )
    p.add_argument("--tasks", type=_csv, default=("binary", "multiclass"), help="binary,multiclass")
    each = "; one value or task=value pairs"
    p.add_argument(
        "--dataset", default="synthetic", help=f"prepare's dataset (synthetic: made here){each}"
    )
    p.add_argument("--root", type=optional, default=None, help=f"data folder for real data{each}")
    extra = f"second source of malignant images (binary){each}"
    p.add_argument("--extra_malignant", type=optional, default=None, help=extra)
    add_test_set_args(p, each)
    add_init_args(p)
    p.add_argument("--profile", default="demo", choices=sorted(PROFILES), help="stage settings")
    p.add_argument("--force", type=str2bool, default=False, help="rerun finished stages too")
    p.add_argument(
        "--report_dir",
        type=optional,
        default=None,
        help="where report.html is written (default: beside the sqlite store, else outputs/)",
    )
    return p


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from isic_tracking.tracking.thesis import ThesisOptions, run_thesis  # heavy: after parsing

    run_thesis(PROJECT, ThesisOptions(**vars(args)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
