"""``pretrain``: an offline pretrained base without any download: ``arch`` trained on
formula-driven fractal categories (Kataoka et al. 2020, FractalDB-style), logged and
registered as ``isic-pretrain-<arch>`` (alias ``champion``); ``train -P
init=models:/isic-pretrain-<arch>@champion`` fine-tunes from it, ``export=PATH`` also writes
a state dict in the architecture's own format."""

from __future__ import annotations

from entrypoints._common import ConfigStage
from isic_tracking.stages.pretrain.config import PretrainConfig

STAGE = ConfigStage(
    "pretrain", __doc__, PretrainConfig, "isic_tracking.stages.pretrain.runner:run_pretrain"
)
build_parser = STAGE.build_parser
main = STAGE.main

if __name__ == "__main__":
    raise SystemExit(main())
