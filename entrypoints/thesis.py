"""``thesis``: the whole study in one command. ``main``'s chain for every (architecture, task)
of the grid, each a child run of one study run, then ``compare`` per task and one
self-contained report (``report.html``: tables and figures in the thesis's order, each linked
to its run). A second invocation reuses every finished chain; a killed one resumes."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from entrypoints._common import add_init_args, optional, parser, run_main, str2bool
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
    p.add_argument(
        "--dataset", default="synthetic", help="prepare's dataset (synthetic: made here)"
    )
    p.add_argument("--root", type=optional, default=None, help="data folder for real data")
    p.add_argument(
        "--extra_malignant", type=optional, default=None, help="second source of malignant images"
    )
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
