"""``prepare``: read an official ISIC layout into one manifest and cache resized images once."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from entrypoints._common import optional, run_main
from isic_tracking.data.defaults import data_dir
from isic_tracking.data.prepare import prepare_dataset
from isic_tracking.data.sources import READERS, get_reader
from isic_tracking.log import get_logger, setup
from isic_tracking.tracking import log_dataframe, log_manifest_input, log_metrics, stage_run

log = get_logger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="prepare", description=__doc__)
    p.add_argument("--dataset", default="synthetic", choices=list(READERS))
    p.add_argument(
        "--root",
        type=optional,
        default=None,
        help="data folder (default for synthetic: data/synthetic/raw, made if missing)",
    )
    p.add_argument(
        "--out",
        type=optional,
        default=None,
        help="cache folder (default data/<dataset>/prepared-<task>)",
    )
    p.add_argument("--task", type=optional, default=None, help="binary | multiclass")
    p.add_argument(
        "--extra_malignant",
        type=optional,
        default=None,
        help="root of a second source whose malignant (MEL) images are merged in",
    )
    p.add_argument("--extra_dataset", default="isic2019", choices=list(READERS))
    p.add_argument("--image_size", type=int, default=256, help="short side of cached images")
    p.add_argument("--max_bad_fraction", type=float, default=0.05)
    p.add_argument("--workers", type=int, default=None)
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
    with stage_run(
        "prepare", {**vars(args), "task": task, "out": out}, run_name=f"prepare-{args.dataset}"
    ):
        prepared = prepare_dataset(
            args.dataset,
            args.root,
            out,
            task=task,
            extra_malignant=args.extra_malignant,
            extra_dataset=args.extra_dataset,
            image_size=args.image_size,
            max_bad_fraction=args.max_bad_fraction,
            workers=args.workers,
        )
        df = prepared.cache.manifest
        log_manifest_input(
            df, name=args.dataset, context="prepared", source=str(prepared.manifest_path)
        )
        log_metrics(prepared.counts())
        log_metrics({f"n_class/{k}": v for k, v in df["label_name"].value_counts().items()})
        log_metrics({f"n_source/{k}": v for k, v in df["source"].value_counts().items()})
        log_dataframe(prepared.skip_report(), "skipped.csv")
        log.info(
            f"manifest: {prepared.manifest_path.resolve()} ({len(df)} images, "
            f"{prepared.cache.n_skipped} skipped -> {Path(out) / 'skipped.csv'})"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    setup()
    return run_main(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
