"""``eda``: metadata figures of a manifest (class balance, age, sex, site, sizes, sources)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from entrypoints._common import optional, parser, run_main
from isic_tracking.log import get_logger

log = get_logger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = parser("eda", __doc__)
    p.add_argument(
        "--manifest", type=optional, default=None, help="manifest CSV (default: the synthetic data)"
    )
    return p


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # heavy imports after parsing: `--help` stays instant
    from isic_tracking.data.defaults import default_manifest
    from isic_tracking.data.eda import eda_figures
    from isic_tracking.data.manifest import read_manifest
    from isic_tracking.tracking import log_figure, log_manifest_input, stage_run

    path = args.manifest or str(default_manifest("binary"))
    df = read_manifest(path)
    task = "multiclass" if df["label"].nunique() > 2 else "binary"  # the experiment's
    with stage_run("eda", {"manifest": path}, run_name="eda", task=task):
        log_manifest_input(df, name="manifest", context="eda", source=path)
        figures = eda_figures(df)
        for name, fig in figures.items():
            log_figure(fig, f"figures/{name}.png")
        log.info(f"logged {len(figures)} figures: {', '.join(figures)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
