"""``search``: Optuna search of learning rate, batch size and epochs on a stratified subset,
tracked in MLflow (study = parent run, one nested run per trial). Resumable with the same
``study_name``; ``n_workers`` processes, or machines sharing a PostgreSQL ``storage``, share
one study. Train with the result: ``train -P params_from=<search run id>``."""

from __future__ import annotations

from entrypoints._common import ConfigStage
from isic_tracking.train.search import SearchConfig

STAGE = ConfigStage(
    "search", __doc__, SearchConfig, "isic_tracking.stages.search.runner:run_search"
)
build_parser = STAGE.build_parser
main = STAGE.main

if __name__ == "__main__":
    raise SystemExit(main())
