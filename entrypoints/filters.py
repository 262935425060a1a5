"""``filters``: class-specific and artifact-specific filters of a model (thesis §5.4.1, §5.5):
per class and artifact group the filters most often above their 0.95 quantile, their heatmaps,
top-N tables, Jaccard overlap, artifact recovery AUCs and dataset exemplars. Its
``tables/class_filters.csv`` is what ``visualize --filters_run`` reads."""

from __future__ import annotations

from entrypoints._common import ConfigStage
from isic_tracking.stages.filters.config import FiltersConfig

STAGE = ConfigStage(
    "filters", __doc__, FiltersConfig, "isic_tracking.stages.filters.runner:run_filters"
)
build_parser = STAGE.build_parser
main = STAGE.main

if __name__ == "__main__":
    raise SystemExit(main())
