"""``visualize``: feature visualization by activation maximization (thesis §4.4, §5.4.1): the
images that maximize chosen filters (``top_n`` from a ``filters`` run or a quick pass, ``all``,
indices) or the class logits, with one or more regularization presets and engines, next to the
ImageNet base on request. Logs grids, PNGs and ``tables/activations.csv`` (read by ``sanity``)."""

from __future__ import annotations

from entrypoints._common import ConfigStage
from isic_tracking.stages.visualize.config import VisualizeConfig

STAGE = ConfigStage(
    "visualize", __doc__, VisualizeConfig, "isic_tracking.stages.visualize.runner:run_visualize"
)
build_parser = STAGE.build_parser
main = STAGE.main

if __name__ == "__main__":
    raise SystemExit(main())
