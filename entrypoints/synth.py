"""``synth``: write the synthetic ISIC-like data set in the official layouts."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from entrypoints._common import run_main
from isic_tracking.data.synthetic import make_synthetic
from isic_tracking.log import get_logger, setup
from isic_tracking.tracking import log_metrics, stage_run

log = get_logger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="synth", description=__doc__)
    p.add_argument("--out", default="data/synthetic/raw", help="output folder")
    p.add_argument("--n_images", type=int, default=240, help="images of the ISIC 2020 layout")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image_size", type=int, default=128, help="side of the written JPEGs")
    return p


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with stage_run("synth", vars(args), run_name="synth"):
        paths = make_synthetic(args.out, args.n_images, args.seed, args.image_size)
        log_metrics({"n_images": args.n_images})
        for name, path in paths.items():
            log.info(f"{name}: {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    setup()
    return run_main(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
