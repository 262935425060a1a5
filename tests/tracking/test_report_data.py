"""The report's reader on a real sqlite MLflow store: a chain's stage runs found from the
pipeline run's tags; each section filled from the artifacts the stage logged, a missing stage
said so, and the results table made of the train run's logged metrics."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import pandas as pd

from isic_tracking.stages.train.runner_results import FOLD_COUNTS_TABLE, FOLD_STAGE
from isic_tracking.tracking import log_dataframe, log_figure, tag
from isic_tracking.tracking.report_data import SECTIONS, ChainRuns, build_report, chain_runs


def _fig():
    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1])
    return fig


def _chain() -> str:
    """A pipeline run with a train and a filters stage (no visualize, no sanity)."""
    with mlflow.start_run(run_name="pipeline") as pipe:
        mlflow.log_params({"arch": "smallcnn", "task": "binary"})
        with mlflow.start_run(run_name="train", nested=True) as train:
            mlflow.set_tags({tag.STAGE: "train", tag.SPLIT_DIGEST: "s1"})
            mlflow.log_params({"arch": "smallcnn", "task": "binary", "folds": 2})
            for auc in (0.96, 0.98):  # compare reads the finished fold runs
                with mlflow.start_run(run_name="fold", nested=True):
                    mlflow.set_tags({tag.STAGE: FOLD_STAGE, tag.FOLD_STATUS: "finished"})
                    mlflow.log_metric("best_val_roc_auc", auc)
            log_dataframe(pd.DataFrame({"fold": [0, 1], "best_val_roc_auc": [0.96, 0.98]}),
                          "tables/fold_metrics.csv")  # fmt: skip
            counts = {"fold": [0, 0], "part": ["train", "validation"], "benign": [5, 4]}
            log_dataframe(pd.DataFrame(counts), FOLD_COUNTS_TABLE)
            log_figure(_fig(), "figures/oof_confusion_matrix.png")
            log_figure(_fig(), "figures/oof_roc.png")
        with mlflow.start_run(run_name="filters", nested=True) as filt:
            mlflow.set_tag(tag.STAGE, "filters")
            mlflow.log_param("layers", "features.12")
            log_dataframe(pd.DataFrame({"filter": [3, 7]}), "tables/most_activated.csv")
            log_figure(_fig(), "figures/class_top.png")
            log_figure(_fig(), "figures/group_top.png")
            log_figure(_fig(), "figures/dissection.png")
            log_figure(_fig(), "figures/ablation.png")
            log_dataframe(pd.DataFrame({"name": ["malignant"], "passed": [True]}),
                          "tables/ablation_verdicts.csv")  # fmt: skip
            mlflow.set_tag("isic.ablation.malignant", "pass")
        mlflow.set_tags({"stage.train": train.info.run_id, "stage.filters": filt.info.run_id})
    return pipe.info.run_id


def test_report_sections_from_logged_runs(mlflow_tracking: str) -> None:
    chain = chain_runs(_chain())
    assert (chain.arch, chain.task, chain.key) == ("smallcnn", "binary", "binary-smallcnn")
    assert set(chain.stages) == {"train", "filters"}
    report = build_report("r", [chain])
    assert [s.id for s in report.sections] == [s for s, _, _ in SECTIONS]
    items = {i.id: i for s in report.sections for i in s.items}

    confusion = items["confusion-binary-smallcnn"]
    assert [f.caption for f in confusion.figures] == ["figures/oof_confusion_matrix.png"]
    assert confusion.figures[0].png.startswith(b"\x89PNG")
    assert confusion.run_id == chain.stages["train"]
    assert f"/runs/{chain.stages['train']}" in confusion.run_link
    assert confusion.settings == {"arch": "smallcnn", "task": "binary", "folds": "2"}

    results = items["results-binary-smallcnn"]
    assert list(results.tables[0].frame["best_val_roc_auc"]) == [0.96, 0.98]
    assert "2 folds" in results.tables[0].note and "split s1" in results.tables[0].note
    assert results.tables[1].caption == "images per class and fold"  # the thesis's Table 5
    assert list(results.tables[1].frame["benign"]) == [5, 4]
    val = next(t for t in items["results-binary"].tables if ", val:" in t.caption).frame
    assert val.loc[0, "roc_auc"] == "0.970 ± 0.010"  # the logged mean ± std
    assert [t.caption.split(":")[0] for t in items["results-binary"].tables] == ["binary, val"]

    assert list(items["top5-binary-smallcnn"].tables[0].frame["filter"]) == [3, 7]
    class_filters = items["class-filters-binary-smallcnn"]
    assert [f.caption for f in class_filters.figures] == [
        "figures/class_top.png", "figures/ablation.png", "figures/dissection.png"
    ]  # fmt: skip
    assert class_filters.verdicts == ["ablation.malignant: pass"]
    assert list(class_filters.tables[0].frame["name"]) == ["malignant"]
    for missing in ("featvis-binary-smallcnn", "sanity-binary-smallcnn"):
        assert items[missing].missing and not items[missing].figures


def test_resumed_train_stands_for_its_target_and_a_missing_artifact_is_said(
    mlflow_tracking: str,
) -> None:
    """A pipeline that resumed a killed train points at a stub run (tag isic.resumed_into):
    the report reads the run that holds the results. A stage run missing an artifact gives
    a cell that says so instead of failing the report."""
    real = chain_runs(_chain()).stages["train"]
    with mlflow.start_run(run_name="pipeline") as pipe:
        with mlflow.start_run(run_name="train", nested=True) as stub:
            mlflow.set_tags({tag.STAGE: "train", tag.RESUMED_INTO: real})
        with mlflow.start_run(run_name="visualize", nested=True) as vis:
            mlflow.set_tag(tag.STAGE, "visualize")
        mlflow.set_tags({"stage.train": stub.info.run_id, "stage.visualize": vis.info.run_id})
    chain = chain_runs(pipe.info.run_id)
    assert chain.stages["train"] == real
    with mlflow.start_run(run_name="bare-train") as bare:
        mlflow.set_tags({tag.STAGE: "train"})
        mlflow.log_params({"arch": "vgg16", "task": "binary"})
    broken = ChainRuns("vgg16", "binary", pipe.info.run_id, {"train": bare.info.run_id})
    items = {i.id: i for s in build_report("r", [chain, broken]).sections for i in s.items}
    assert "fold_metrics.csv" in items["results-binary-vgg16"].missing
    assert items["results-binary-vgg16"].run_id == bare.info.run_id
    assert items["results-binary-smallcnn"].tables  # the good chain is unaffected
    assert "logged nothing" in items["featvis-binary-smallcnn"].missing


def test_test_set_section_shows_intervals_curves_and_a_skip(mlflow_tracking: str) -> None:
    """The evaluate run's metrics table (with intervals), per-class table, confusion, PR and
    calibration figures fill the test-set cell; a skipped evaluation says why."""
    with mlflow.start_run(run_name="pipeline") as pipe:
        mlflow.log_params({"arch": "smallcnn", "task": "multiclass"})
        with mlflow.start_run(run_name="evaluate", nested=True) as ev:
            mlflow.set_tag(tag.STAGE, "evaluate")
            mlflow.log_params({"n_resamples": 100, "level": 0.95, "images": "9 images"})
            metrics = pd.DataFrame({"metric": ["roc_auc"], "estimate": [0.8], "low": [0.7],
                                    "high": [0.9], "method": ["BCa"]})  # fmt: skip
            log_dataframe(metrics, "tables/test_metrics.csv")
            log_dataframe(pd.DataFrame({"class": ["MEL"], "support": [3]}),
                          "tables/test_per_class.csv")  # fmt: skip
            for name in ("test_confusion", "test_pr_curve", "test_calibration"):
                log_figure(_fig(), f"figures/{name}.png")
        mlflow.set_tag("stage.evaluate", ev.info.run_id)
    with mlflow.start_run(run_name="skipped") as skipped:
        mlflow.set_tags({tag.STAGE: "evaluate", tag.TEST_SKIPPED: "no test images"})
    chain = chain_runs(pipe.info.run_id)
    empty = ChainRuns("vgg16", "multiclass", pipe.info.run_id, {"evaluate": skipped.info.run_id})
    report = build_report("r", [chain, empty])
    section = next(s for s in report.sections if s.id == "test")
    items = {i.id: i for i in section.items}
    cell = items["test-multiclass-smallcnn"]
    assert list(cell.tables[0].frame.columns) == ["metric", "estimate", "low", "high", "method"]
    assert "0.95 BCa" in cell.tables[0].caption
    assert list(cell.tables[1].frame["class"]) == ["MEL"]
    assert [f.caption for f in cell.figures] == [
        "figures/test_confusion.png", "figures/test_pr_curve.png", "figures/test_calibration.png"
    ]  # fmt: skip
    assert cell.settings == {"images": "9 images", "n_resamples": "100", "level": "0.95"}
    assert items["test-multiclass-vgg16"].verdicts == ["skipped: no test images"]


def test_attribution_beside_the_exemplars_and_the_per_layer_sanity_verdict(
    mlflow_tracking: str,
) -> None:
    """The filters cell shows each class's Grad-CAM grid right after its exemplar grid and the
    attribution tables; the sanity cell the per-layer verdict table and tag."""
    with mlflow.start_run(run_name="pipeline") as pipe:
        mlflow.log_params({"arch": "smallcnn", "task": "binary"})
        with mlflow.start_run(run_name="filters", nested=True) as filt:
            mlflow.set_tag(tag.STAGE, "filters")
            for name in ("class_malignant_gradcam", "class_benign", "class_benign_gradcam"):
                log_figure(_fig(), f"figures/exemplars/features.12/{name}.png")
            agreement = pd.DataFrame({"class": ["benign"], "jaccard": [0.25], "spearman": [0.4]})
            log_dataframe(agreement, "tables/attribution_agreement.csv")
        with mlflow.start_run(run_name="sanity", nested=True) as san:
            mlflow.set_tags({tag.STAGE: "sanity", tag.SANITY_PICTURED_LAYER_VERDICTS: "a: closer"})
            log_dataframe(pd.DataFrame({"layer": ["a"], "verdict": ["closer"]}),
                          "tables/verdict_per_layer.csv")  # fmt: skip
            log_figure(_fig(), "figures/verdict_per_layer.png")
        mlflow.set_tags({"stage.filters": filt.info.run_id, "stage.sanity": san.info.run_id})
    report = build_report("r", [chain_runs(pipe.info.run_id)])
    items = {i.id: i for s in report.sections for i in s.items}
    filters = items["class-filters-binary-smallcnn"]
    assert [f.caption.split("/")[-1] for f in filters.figures] == [
        "class_benign.png",
        "class_benign_gradcam.png",
        "class_malignant_gradcam.png",
    ]
    (table,) = filters.tables
    assert table.caption.startswith("activation frequency vs conductance")
    assert table.frame["jaccard"].tolist() == [0.25]
    sanity = items["sanity-binary-smallcnn"]
    assert sanity.tables[0].frame["verdict"].tolist() == ["closer"]
    assert "sanity.pictured_layer_verdicts: a: closer" in sanity.verdicts
    assert [f.caption for f in sanity.figures] == ["figures/verdict_per_layer.png"]
