"""The MLflow side of the ``filters`` stage's probes, called by its runner
(``isic_tracking/stages/filters/runner.py``) inside its run: it logs what the probes computed
(:func:`.probes.run_ablation`, :func:`.probes.run_dissection`, via :mod:`.compute`).

Ablation: ``tables/ablation.csv`` (every target, variant, score and image side),
``tables/ablation_verdicts.csv``, ``figures/ablation.png``, the metrics of
:func:`.probes.ablation_metrics` (``ablation_drop_mean_<layer>/<class>``, ...) and a tag per
class / artifact (``isic.ablation.<class>``).
Dissection: ``tables/dissection.csv`` (one row per unit), ``figures/dissection.png``, metrics
``dissection_labelled/<layer>`` (units labelled) and ``dissection_best_iou/<concept>``.
"""

from __future__ import annotations

import mlflow

from isic_tracking.data.synthetic.masks import MASK_CONCEPTS
from isic_tracking.log import get_logger
from isic_tracking.stages.filters.plots import ablation_figure, dissection_heatmap
from isic_tracking.stages.filters.probes import (
    AblationResult,
    DissectionResult,
    ablation_lines,
    ablation_metrics,
    ablation_tags,
)
from isic_tracking.tracking.runs import log_dataframe, log_figure, log_metrics

log = get_logger(__name__)


def log_ablation(result: AblationResult) -> None:
    """Log an ablation (:func:`.probes.run_ablation`) into the active run: its tables, figure,
    metrics, tags and one terminal line per target."""
    verdicts = result.verdicts
    log_dataframe(result.table.drop(columns="random"), "tables/ablation.csv")
    log_dataframe(verdicts, "tables/ablation_verdicts.csv")
    log_figure(ablation_figure(result.table), "figures/ablation.png")
    log_metrics({**ablation_metrics(verdicts), "ablation_seconds": result.seconds})
    mlflow.set_tags(ablation_tags(verdicts))
    for line in ablation_lines(verdicts):
        log.info(line)


def log_dissection(result: DissectionResult) -> None:
    """Log a Network Dissection (:func:`.probes.run_dissection`) into the active run: its
    table, heatmap, metrics and one terminal line."""
    log_dataframe(result.table, "tables/dissection.csv")
    log_figure(dissection_heatmap(result.table, MASK_CONCEPTS), "figures/dissection.png")
    log_metrics(result.metrics())
    log.info(result.line())
