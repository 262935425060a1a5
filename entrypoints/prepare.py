"""``prepare``: read an official ISIC layout into one manifest and cache resized images once."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from entrypoints._common import optional, parser, run_main
from isic_tracking.data.defaults import data_dir
from isic_tracking.data.leakage import DEDUPE_CHOICES
from isic_tracking.data.sources import READERS, get_reader
from isic_tracking.data.testset import TEST_FRACTION, TEST_FRACTION_HELP

_ROOT = "data folder (default for synthetic: data/synthetic/raw, made if missing)"
_ARTIFACTS = "Bissoto artifact labels (isic_bias.csv, isic_inferred_wocarcinoma.csv) to join"
_DEDUPE = "duplicates: test drops a pair's test-side copy, all one per group, none only reports"
#: (flag, type, default, help) of the plain options.
_FLAGS = (
    ("root", optional, None, _ROOT),
    ("out", optional, None, "cache folder (default: data/<dataset>/prepared-<task>)"),
    ("task", optional, None, "binary | multiclass (default: the dataset's own task)"),
    ("extra_malignant", optional, None, "root of a second source whose MEL images are merged in"),
    ("test_dataset", optional, None, "layout of the test set (e.g. isic2016-test)"),
    ("test_root", optional, None, "data folder of the test set"),
    ("test_fraction", float, TEST_FRACTION, TEST_FRACTION_HELP),
    ("test_seed", int, 0, "seed of the held-out test split"),
    ("image_size", int, 256, "short side of cached images"),
    ("max_bad_fraction", float, 0.05, "fail when more than this fraction is unreadable"),
    ("workers", int, None, "decoding processes (default: all cores)"),
    ("artifacts", optional, None, _ARTIFACTS),
    ("artifact_threshold", float, 0.5, "probability from which an inferred artifact counts"),
)


def build_parser() -> argparse.ArgumentParser:
    p = parser("prepare", __doc__)
    layouts = "; ".join(f"{r.name}: {r.description}" for r in READERS.values())
    p.add_argument("--dataset", default="synthetic", choices=list(READERS), help=layouts)
    for flag, kind, default, text in _FLAGS:
        p.add_argument(f"--{flag}", type=kind, default=default, help=text)
    extra = "layout of --extra_malignant"
    p.add_argument("--extra_dataset", default="isic2019", choices=list(READERS), help=extra)
    p.add_argument("--dedupe", default="test", choices=list(DEDUPE_CHOICES), help=_DEDUPE)
    return p


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.root is None and args.dataset == "synthetic":
        from isic_tracking.data.synthetic import make_synthetic

        args.root = str(data_dir() / "synthetic" / "raw")
        if not (Path(args.root) / "isic2020" / "train.csv").is_file():
            make_synthetic(args.root)
    if args.root is None:
        raise SystemExit("error: --root is required for dataset " + args.dataset)
    task = args.task or get_reader(args.dataset).default_task
    out = str(Path(args.out or data_dir() / args.dataset / f"prepared-{task}").resolve())
    from isic_tracking.stages.prepare.runner import run_prepare  # heavy: after parsing

    run_prepare({**vars(args), "task": task, "out": out})
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
