"""``sanity``: how much do feature visualizations resemble what the model sees in real images?
Path similarity of visualizations (from a ``visualize`` run, ``--fv_run``, or rendered here)
vs natural images of their class across the layers, next to natural, noise and unregularized
baselines; a layer x layer correlation, cascading model randomization (Adebayo et al. 2018)
and, with ``--reference_model_uri``, transferability (Fel et al. 2023)."""

from __future__ import annotations

from entrypoints._common import ConfigStage
from isic_tracking.stages.sanity.config import SanityConfig

STAGE = ConfigStage(
    "sanity", __doc__, SanityConfig, "isic_tracking.stages.sanity.runner:run_sanity"
)
build_parser = STAGE.build_parser
main = STAGE.main

if __name__ == "__main__":
    raise SystemExit(main())
