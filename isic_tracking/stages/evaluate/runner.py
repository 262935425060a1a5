"""The ``evaluate`` stage's MLflow side: resolve the plan once (the model, its test rows),
score the test images, compute (:func:`evaluate_scores`, no MLflow), then log the metrics
``test_<m>`` with ``test_<m>_low`` / ``_high`` (the bootstrap interval), the tables
(``tables/test_metrics.csv``, ``tables/test_per_class.csv``, ``tables/test_predictions.csv``),
the figures (confusion matrix, precision-recall and calibration curves) and a description,
and write the result into the registered version's description.

A manifest without test rows (``prepare`` with ``test_fraction=0`` and no test set) gives a
finished run that says so (tag ``isic.test_skipped``), so ``main`` goes on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import mlflow
import pandas as pd
import torch

from isic_tracking.data.dataset import make_loader
from isic_tracking.data.transforms import build_transforms
from isic_tracking.errors import IsicInputError
from isic_tracking.log import get_logger
from isic_tracking.stages.evaluate.compute import Evaluation, evaluate_scores
from isic_tracking.stages.evaluate.config import EvaluateConfig
from isic_tracking.stages.evaluate.plots import calibration_figure, pr_curve_figure
from isic_tracking.tracking import tag
from isic_tracking.tracking.analysis import split_rows
from isic_tracking.tracking.descriptions import evaluation_section
from isic_tracking.tracking.registry import LoadedModel, describe_version_test, load_model
from isic_tracking.tracking.runs import describe, log_dataframe, log_figure, log_metrics, stage_run
from isic_tracking.train.engine import evaluate
from isic_tracking.train.metrics import predictions_table
from isic_tracking.train.plots import confusion_matrix_figure
from isic_tracking.train.predictions import Predictions
from isic_tracking.utils import resolve_device

log = get_logger(__name__)
STAGE = "evaluate"
#: the metric the summary lines lead with, per task
HEADLINE = {"binary": ("roc_auc", "average_precision", "sensitivity", "specificity"),
            "multiclass": ("balanced_accuracy", "roc_auc", "f1")}  # fmt: skip


@dataclass(frozen=True)
class EvaluatePlan:
    """What one evaluation runs on, resolved once."""

    loaded: LoadedModel
    rows: pd.DataFrame
    about: str
    task: str
    classes: tuple[str, ...]
    image_size: int
    device: torch.device


def resolve_test_rows(loaded: LoadedModel, manifest: str | None) -> tuple[pd.DataFrame, str]:
    """The test images of ``loaded``: the ``split == "test"`` rows of ``manifest`` (default:
    its training run's), and what they are in words.

    The one place the test rows are resolved: a check that drops test images with a (near)
    duplicate among the training images belongs here, before anything is scored.
    """
    rows, path = split_rows(loaded, manifest, "all")
    rows = rows[rows["split"].astype(str) == "test"].reset_index(drop=True)
    classes = tuple(loaded.config["classes"])
    foreign = sorted(set(rows["label_name"].astype(str)) - set(classes))
    if foreign:
        raise IsicInputError(
            f"{path}: test label names {foreign} are not classes of the model {loaded.uri} "
            f"({list(classes)}); give the manifest of its task"
        )
    return rows, f"{len(rows)} images of split 'test' of {path}"


def resolve_plan(cfg: EvaluateConfig) -> EvaluatePlan:
    """The model, its test rows and how to feed them."""
    device = resolve_device(cfg.device)
    loaded = load_model(cfg.model_uri, device)
    rows, about = resolve_test_rows(loaded, cfg.manifest)
    config = loaded.config
    size = cfg.image_size or int(config["image_size"])
    task = str(config.get("task", "binary"))
    return EvaluatePlan(loaded, rows, about, task, tuple(config["classes"]), size, device)


def predict(plan: EvaluatePlan, batch_size: int) -> Predictions:
    """Labels and scores of the test rows, in row order: the evaluation transform and the
    scores of training's validation (:func:`isic_tracking.train.engine.evaluate`)."""
    config = plan.loaded.config
    transform = build_transforms(plan.image_size, train=False, mean=config["mean"],
                                 std=config["std"])  # fmt: skip
    loader = make_loader(plan.rows, transform, batch_size, shuffle=False)
    _, pred = evaluate(plan.loaded.model, loader, None, plan.device, plan.task, desc="test")
    return pred


def summary_lines(result: Evaluation) -> list[str]:
    """The headline metrics with their intervals, one line each."""
    pct = f"{result.level:.0%}"
    return [f"`{m}` {result.line(m)} ({pct} BCa bootstrap, {result.n_resamples} resamples)"
            for m in HEADLINE[result.task]]  # fmt: skip


def _log_result(
    plan: EvaluatePlan, result: Evaluation, pred: Predictions, threshold: float, n_bins: int
) -> None:
    y, scores = pred.y_true, pred.scores
    log_metrics({**result.metric_values(), "n_test": result.n_images})
    if result.per_class is not None:
        pc = result.per_class.set_index("class")
        log_metrics({f"test_class_{m}/{c}": pc.loc[c, m] for c in pc.index
                     for m in ("precision", "recall", "f1", "roc_auc")})  # fmt: skip
        log_dataframe(result.per_class, "tables/test_per_class.csv")
    log_dataframe(result.metrics, "tables/test_metrics.csv")
    cm = pd.DataFrame(result.confusion, index=plan.classes, columns=plan.classes)
    log_dataframe(cm.rename_axis("true \\ predicted").reset_index(), "tables/test_confusion.csv")
    preds = predictions_table(pred, plan.rows["image_id"], plan.classes, threshold)
    log_dataframe(preds, "tables/test_predictions.csv")
    arch = plan.loaded.config.get("arch", "?")
    title = f"{arch} · {plan.task} · test set ({result.n_images} images)"
    log_figure(confusion_matrix_figure(result.confusion, plan.classes, title=f"{arch} · {plan.task}\ntest set ({result.n_images} images), counts"),
               "figures/test_confusion.png")  # fmt: skip
    log_figure(pr_curve_figure(y, scores, plan.classes, title), "figures/test_pr_curve.png")
    log_figure(calibration_figure(y, scores, title, n_bins), "figures/test_calibration.png")


def run_evaluate(cfg: EvaluateConfig) -> Evaluation | None:
    """Evaluate ``cfg.model_uri`` on its test rows; one run. None when there are none."""
    plan = resolve_plan(cfg)
    params = {**dataclasses.asdict(cfg), "images": plan.about, "task": plan.task}
    with stage_run(STAGE, params, tags=plan.loaded.tags, run_name=STAGE) as run:
        if plan.rows.empty:
            why = f"no test images: {plan.about} (prepare with test_fraction > 0 or a test set)"
            mlflow.set_tag(tag.TEST_SKIPPED, why)
            describe(f"**evaluate** of `{cfg.model_uri}`: skipped, {why}.")
            log.warning(f"evaluate: {why}")
            return None
        pred = predict(plan, cfg.batch_size)
        result = evaluate_scores(pred.y_true, pred.scores, plan.task, plan.classes, threshold=cfg.threshold,
                                 n_resamples=cfg.n_resamples, level=cfg.level, seed=cfg.seed)  # fmt: skip
        _log_result(plan, result, pred, cfg.threshold, cfg.n_bins)
        lines = summary_lines(result)
        describe("\n".join([f"**evaluate** of `{cfg.model_uri}` on {plan.about}", "",
                            *[f"- {x}" for x in lines]]))  # fmt: skip
        loaded = plan.loaded
        if loaded.name and loaded.version:
            section = evaluation_section(plan.about, lines, run.info.run_id)
            describe_version_test(loaded.name, loaded.version, section, run.info.run_id)
        for line in lines:
            log.info(f"test: {line}")
    return result
