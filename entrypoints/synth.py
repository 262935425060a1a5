"""``synth``: write the synthetic ISIC-like data set in the official layouts."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from entrypoints._common import parser, run_main
from isic_tracking.data.synthetic import ARTIFACTS
from isic_tracking.log import get_logger

log = get_logger(__name__)


def fraction(v: str) -> float:
    """argparse type: a float in [0, 1]."""
    x = float(v)
    if not 0.0 <= x <= 1.0:
        raise argparse.ArgumentTypeError(f"{v} is not a fraction in [0, 1]")
    return x


def build_parser() -> argparse.ArgumentParser:
    p = parser("synth", __doc__)
    p.add_argument("--out", default="data/synthetic/raw", help="output folder")
    p.add_argument("--n_images", type=int, default=240, help="images of the ISIC 2020 layout")
    p.add_argument("--seed", type=int, default=0, help="random seed of the whole data set")
    p.add_argument("--image_size", type=int, default=128, help="side of the written JPEGs")
    p.add_argument(
        "--shortcut_artifact",
        default="none",
        choices=["none", *ARTIFACTS],
        help="plant this artifact on --shortcut_rate of the malignant images, on no benign one",
    )
    p.add_argument(
        "--shortcut_rate",
        type=fraction,
        default=0.9,
        help="fraction of malignant images carrying the shortcut artifact",
    )
    p.add_argument(
        "--near_duplicates",
        type=int,
        default=0,
        help="pairs of slightly cropped, resized, re-encoded copies planted across splits and "
        "sources (truth: <out>/synthetic_near_duplicates.csv)",
    )
    return p


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from isic_tracking.data.synthetic import make_synthetic, read_shortcut
    from isic_tracking.tracking import log_metrics, stage_run  # heavy: after parsing

    with stage_run("synth", vars(args), run_name="synth"):
        paths = make_synthetic(
            args.out,
            args.n_images,
            args.seed,
            args.image_size,
            shortcut_artifact=args.shortcut_artifact,
            shortcut_rate=args.shortcut_rate,
            near_duplicates=args.near_duplicates,
        )
        log_metrics({"n_images": args.n_images, "near_duplicates": args.near_duplicates})
        for layout, planted in read_shortcut(args.out).items():
            log_metrics(planted, prefix=f"shortcut_{layout}/")  # one `/` level
        for name, path in paths.items():
            log.info(f"{name}: {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
