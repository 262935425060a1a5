"""What each section of the study report shows of one chain's stage run: the tables,
figures and verdict lines read from its artifacts and tags (never recomputed), one function per
section, in :data:`FILLS`; :mod:`.report_data` puts them together per chain and section."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from isic_tracking.report import Figure, Table
from isic_tracking.stages.filters.probes import ABLATION_TAG
from isic_tracking.stages.train.runner_results import FOLD_COUNTS_TABLE
from isic_tracking.tracking import tag
from isic_tracking.tracking.runs import param

#: The report's sections in the thesis's order: (id, title, what it shows).
SECTIONS: tuple[tuple[str, str, str], ...] = (
    (
        "data",
        "The data: test set and leakage check",
        "How prepare made the test set (another data set, the data's own test rows or a "
        "held-out split, before any fold) and the duplicate check across splits and sources: "
        "exact copies (same bytes or pixels) and near copies (re-encoded, resized) found, and "
        "the images dropped so that no test image has a copy in training.",
    ),
    (
        "results",
        "Tables 6-9: training, validation and test results",
        "Mean ± std over folds of the best epoch of each fold, and the test split, as logged "
        "by the train stage; per model the fold table.",
    ),
    (
        "test",
        "Test set: the registered model on images no fold saw",
        "The champion on the test set (another data set, the data's own test rows or a "
        "stratified, patient/lesion-grouped split held out before the folds): each metric with "
        "its 95 % BCa bootstrap interval (resampled within each class), the confusion matrix, "
        "the precision-recall curve with its average precision and chance level, the "
        "calibration curve; per-class metrics with intervals for multiclass.",
    ),
    (
        "layers",
        "Layer contributions: fine-tuned vs its base",
        "Per conv layer (shallow to deep) of the champion and the model it was fine-tuned from "
        "(its recorded init): linear CKA, relative weight change, the drop of the validation "
        "metric when the layer is reset to the base or re-randomized, and k-NN probes of the "
        "classes before and after, with 95 % bootstrap intervals over images.",
    ),
    (
        "confusion",
        "Figs. 21, 24, 25: confusion matrices",
        "Out-of-fold confusion matrices (each image predicted by the fold that did not train "
        "on it), counts and row-normalized.",
    ),
    (
        "top5",
        "Table 10: most activated filters of the last conv layer",
        "The filters with the highest mean maximum activation over the analysed images (live "
        "filters only), from the filters stage.",
    ),
    (
        "class-filters",
        "Fig. 26: class-specific filters",
        "Per class, the filters whose maximum activation exceeds their quantile threshold most "
        "often on that class's images; their dataset exemplars, each beside the same crops with "
        "Grad-CAM towards the class; the filters ranked by conductance towards the class logit "
        "next to them, and how far the two rankings agree (Jaccard of the top sets, Spearman). "
        "Whether the decision uses them: removing a class's top filters against as many random "
        "live filters (ablation verdicts: its logit drop on its own images above the random 95th "
        "percentile), and which concepts the units respond to where the images carry concept "
        "masks (Network Dissection, IoU per unit and concept).",
    ),
    (
        "featvis",
        "Figs. 27-32: feature visualizations",
        "Activation maximization of the top filters of the first and last conv layers, with "
        "and without regularization (pretrained beside fine-tuned where both exist).",
    ),
    (
        "sanity",
        "Figs. 33-37: sanity of the visualizations",
        "How close the visualizations' activation paths are to natural images of their class, "
        "against the noise and natural baselines, for the deepest layer's top filters and, per "
        "pictured layer, for that layer's top filters; the verdicts qualify the pictures above.",
    ),
)

#: stage run params shown as "settings" next to what the stage produced
SETTINGS: Mapping[str, tuple[str, ...]] = {
    "train": (
        "arch",
        "task",
        "init.kind",
        "init.source",
        "folds",
        "epochs",
        "lr",
        "batch_size",
        "image_size",
        "augment",
    ),  # fmt: skip
    "evaluate": ("images", "n_resamples", "level", "threshold"),
    "layers": ("layers_resolved", "split", "monitor_resolved", "images", "n_boot"),
    "filters": ("layers", "split", "quantile", "top_n", "n_images"),
    "visualize": ("layers", "top_n", "regularization", "preset", "steps", "image_size"),
    "sanity": ("layers", "metric", "n_images", "n_images_used", "steps", "image_size"),
    "compare": ("runs",),
}


#: tables shown when the run logged them: (artifact, caption)
ATTRIBUTION_TABLES = {
    "tables/attribution_agreement.csv": "activation frequency vs conductance: agreement per class",
    "tables/attribution_vs_frequency.csv": "top filters by frequency and by conductance",
}
SANITY_TABLES = {"tables/verdict_per_layer.csv": "verdict per pictured layer (its own layer)"}


def artifacts(run_id: str, folder: str, suffix: str) -> list[str]:
    """Artifact paths under ``folder`` (recursively) ending with ``suffix``, sorted."""
    client, out, todo = MlflowClient(), [], [folder]
    while todo:
        for f in client.list_artifacts(run_id, todo.pop()):
            if f.is_dir:
                todo.append(f.path)
            elif f.path.endswith(suffix):
                out.append(f.path)
    return sorted(out)


class Reader:
    """Downloads artifacts of the runs the report uses (one temp folder, removed after)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp

    def local(self, run_id: str, path: str) -> Path:
        dst = self.tmp / run_id
        dst.mkdir(exist_ok=True)
        return Path(
            mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=dst)
        )

    def figures(self, run_id: str, paths: Iterable[str]) -> list[Figure]:
        return [Figure(p, self.local(run_id, p).read_bytes()) for p in paths]

    def table(self, run_id: str, path: str, caption: str, note: str = "") -> Table:
        return Table(caption, pd.read_csv(self.local(run_id, path)), note)


def data_note(run: Run) -> str:
    t = run.data.tags
    return (
        f"data set {t.get(tag.dataset_digest('training'), '?')}, "
        f"{param(run, 'folds') or '?'} folds, grouping {t.get(tag.GROUPING) or 'none'}, "
        f"split {t.get(tag.SPLIT_DIGEST, '?')}"
    )


def _verdicts(run: Run) -> list[str]:
    """The sanity/colour/shortcut verdict tags of a run, as 'name: value' lines."""
    t = run.data.tags
    return [f"{k.removeprefix('isic.')}: {v}" for k, v in sorted(t.items()) if _is_verdict(k)]


def _is_verdict(key: str) -> bool:
    return key.startswith("isic.") and any(w in key for w in ("verdict", "check", "pass"))


#: The filters stage's probes beside its class-specific filters.
PROBE_FIGURES = ("figures/ablation.png", "figures/dissection.png")
PROBE_TABLES = (("tables/ablation_verdicts.csv", "ablation: top-k filters vs random live filters"),)


def _ablation_verdicts(run: Run) -> list[str]:
    """The ablation tags of a filters run (``isic.ablation.<class>``) as 'name: value' lines."""
    t = run.data.tags
    return [
        f"{k.removeprefix('isic.')}: {v}"
        for k, v in sorted(t.items())
        if k.startswith(f"{ABLATION_TAG}.")
    ]


#: what a section shows of a run: (tables, figures, verdict lines)
Fill = Callable[[Run, "Reader"], tuple[list[Table], list[Figure], list[str]]]


def _results(run: Run, read: Reader) -> tuple[list[Table], list[Figure], list[str]]:
    rid = run.info.run_id
    tables = [read.table(rid, "tables/fold_metrics.csv", "per fold", data_note(run))]
    if FOLD_COUNTS_TABLE in artifacts(rid, "tables", ".csv"):  # runs before it had none
        tables.append(read.table(rid, FOLD_COUNTS_TABLE, "images per class and fold"))
    return tables, [], []


def _confusion(run: Run, read: Reader) -> tuple[list[Table], list[Figure], list[str]]:
    paths = [p for p in artifacts(run.info.run_id, "figures", ".png") if "confusion" in p]
    return [], read.figures(run.info.run_id, paths), []


def _top5(run: Run, read: Reader) -> tuple[list[Table], list[Figure], list[str]]:
    rid = run.info.run_id
    tables = [p for p in artifacts(rid, "tables", ".csv") if "most_activated" in p]
    return [read.table(rid, p, p) for p in tables], [], _verdicts(run)


def _class_filters(run: Run, read: Reader) -> tuple[list[Table], list[Figure], list[str]]:
    rid = run.info.run_id
    logged = artifacts(rid, "figures", ".png")
    # each exemplar grid class_<c>.png sorts just before its class_<c>_gradcam.png
    figs = [p for p in logged if p.split("/")[-1].startswith("class_")]
    figs += [p for p in PROBE_FIGURES if p in logged]
    tables = _named_tables(read, rid, ATTRIBUTION_TABLES) + _named_tables(
        read, rid, dict(PROBE_TABLES)
    )
    return tables, read.figures(rid, figs), _ablation_verdicts(run)


def _layers(run: Run, read: Reader) -> tuple[list[Table], list[Figure], list[str]]:
    rid = run.info.run_id
    note = f"base: {run.data.tags.get(tag.BASE, '?')}"
    return (
        [read.table(rid, "tables/layers.csv", "per layer", note)],
        read.figures(rid, ["figures/layer_profile.png"]),
        [],
    )


def _test(run: Run, read: Reader) -> tuple[list[Table], list[Figure], list[str]]:
    rid = run.info.run_id
    skipped = run.data.tags.get(tag.TEST_SKIPPED)
    if skipped:
        return [], [], [f"skipped: {skipped}"]
    level = run.data.params.get("level", "0.95")
    tables = [read.table(rid, "tables/test_metrics.csv", f"metrics, {level} BCa interval")]
    if "tables/test_per_class.csv" in artifacts(rid, "tables", ".csv"):
        tables.append(read.table(rid, "tables/test_per_class.csv", "per class (one-vs-rest)"))
    names = ("test_confusion", "test_pr_curve", "test_calibration")
    return tables, read.figures(rid, [f"figures/{n}.png" for n in names]), []


def _every_figure(run: Run, read: Reader) -> tuple[list[Table], list[Figure], list[str]]:
    rid = run.info.run_id
    return [], read.figures(rid, artifacts(rid, "figures", ".png")), _verdicts(run)


def _sanity(run: Run, read: Reader) -> tuple[list[Table], list[Figure], list[str]]:
    _, figures, verdicts = _every_figure(run, read)
    return _named_tables(read, run.info.run_id, SANITY_TABLES), figures, verdicts


def _named_tables(read: Reader, rid: str, wanted: Mapping[str, str]) -> list[Table]:
    logged = set(artifacts(rid, "tables", ".csv"))
    return [read.table(rid, p, caption) for p, caption in wanted.items() if p in logged]


#: rows of a long table shown in the report (all of them are in the run's artifact)
SHOWN_ROWS = 50
LEAKAGE_TABLES = {
    "leakage/pairs.csv": "duplicate pairs (exact and near) across splits and sources",
    "leakage/dropped.csv": "images dropped as duplicates",
    "artifacts/prevalence.csv": "artifact labels joined: prevalence per class",
}
LEAKAGE_COUNTS = ("n_images", "n_test", "leakage_pairs", "leakage_cross_split",
                  "leakage_dropped", "leakage_planted", "leakage_planted_found",
                  "leakage_false_alarms")  # fmt: skip


def _data(run: Run, read: Reader) -> tuple[list[Table], list[Figure], list[str]]:
    """The prepare run: its test set (tag) and counts as lines, the leakage tables (the first
    :data:`SHOWN_ROWS` rows; the note says how many there are)."""
    rid, m = run.info.run_id, run.data.metrics
    lines = [f"test set: {run.data.tags[tag.TEST_SET]}"] if tag.TEST_SET in run.data.tags else []
    lines += [f"{k}: {int(m[k])}" for k in LEAKAGE_COUNTS if k in m]
    logged = {p for folder in ("leakage", "artifacts") for p in artifacts(rid, folder, ".csv")}
    tables = []
    for path, caption in LEAKAGE_TABLES.items():
        if path not in logged:
            continue
        table = read.table(rid, path, caption)
        n = len(table.frame)
        note = f"first {SHOWN_ROWS} of {n} rows" if n > SHOWN_ROWS else f"{n} rows"
        tables.append(Table(table.caption, table.frame.head(SHOWN_ROWS), note))
    return tables, [], lines


#: section -> (the stage whose run fills it, how)
FILLS: dict[str, tuple[str, Fill]] = {
    "data": ("prepare", _data),
    "results": ("train", _results),
    "test": ("evaluate", _test),
    "layers": ("layers", _layers),
    "confusion": ("train", _confusion),
    "top5": ("filters", _top5),
    "class-filters": ("filters", _class_filters),
    "featvis": ("visualize", _every_figure),
    "sanity": ("sanity", _sanity),
}
