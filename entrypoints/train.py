"""``train``: stratified (grouped) k-fold training, one parent run + one nested run per fold,
fold checkpoints registered with alias ``champion``. Resumable; runs under ``torchrun``."""

from __future__ import annotations

from entrypoints._common import ConfigStage
from isic_tracking.config import TrainConfig

STAGE = ConfigStage("train", __doc__, TrainConfig, "isic_tracking.stages.train.runner:run_training")
build_parser = STAGE.build_parser
main = STAGE.main

if __name__ == "__main__":
    raise SystemExit(main())
