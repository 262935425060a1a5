"""``layers``: per layer of a fine-tuned model and the base it started from (its recorded
init): linear CKA, relative weight change, the drop of the validation metric when the layer
is reset to the base or re-randomized, k-NN probes before and after, the overlap of the
top filters and the similarity of their pictures; a table and a layer-profile figure."""

from __future__ import annotations

from entrypoints._common import ConfigStage
from isic_tracking.stages.layers.config import LayersConfig

STAGE = ConfigStage(
    "layers", __doc__, LayersConfig, "isic_tracking.stages.layers.runner:run_layers"
)
build_parser = STAGE.build_parser
main = STAGE.main

if __name__ == "__main__":
    raise SystemExit(main())
