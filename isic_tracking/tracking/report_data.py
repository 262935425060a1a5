"""What the study report shows, read from the runs of finished chains (``main`` pipeline
runs): the logged metrics, tables and figures of each stage, never recomputed.

The sections follow the thesis: results (Tables 6-9), confusion matrices (Figs. 21, 24, 25),
the most activated filters of the last conv layer (Table 10), class-specific filters
(Fig. 26), feature visualizations (Figs. 27-32), sanity (Figs. 33-37).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from isic_tracking.report import Figure, Item, Report, Section, Table, slug
from isic_tracking.stages.filters.probes import ABLATION_TAG
from isic_tracking.tracking import tag
from isic_tracking.tracking.compare import PARTS, compare_runs, mean_std_table
from isic_tracking.tracking.links import run_url
from isic_tracking.tracking.pipeline import effective_run
from isic_tracking.tracking.runs import get_run, param
from isic_tracking.tracking.train_results import FOLD_COUNTS_TABLE

#: The report's sections in the thesis's order: (id, title, what it shows).
SECTIONS: tuple[tuple[str, str, str], ...] = (
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


@dataclass(frozen=True)
class ChainRuns:
    """One finished ``main`` chain: its architecture, task and the run of each stage."""

    arch: str
    task: str
    pipeline_run: str
    stages: Mapping[str, str]

    @property
    def key(self) -> str:
        return f"{slug(self.task)}-{slug(self.arch)}"


def chain_runs(pipeline_run_id: str) -> ChainRuns:
    """The stages of a ``main`` pipeline run (its ``stage.<name>`` tags); a train run that
    resumed an earlier one stands for that one (:func:`.pipeline.effective_run`), which holds
    the results."""
    run = get_run(pipeline_run_id)
    stages = {
        k.removeprefix(tag.STAGE_PREFIX): effective_run(get_run(v)).info.run_id
        for k, v in run.data.tags.items()
        if k.startswith(tag.STAGE_PREFIX)
    }
    train = get_run(stages["train"]) if "train" in stages else None
    # the train run's resolved values: main logs what it was given (an empty arch is quoted)
    arch = (param(train, "arch") if train else None) or param(run, "arch") or "?"
    task = (param(train, "task") if train else None) or param(run, "task") or "?"
    return ChainRuns(arch, task, pipeline_run_id, stages)


def _artifacts(run_id: str, folder: str, suffix: str) -> list[str]:
    """Artifact paths under ``folder`` (recursively) ending with ``suffix``, sorted."""
    client, out, todo = MlflowClient(), [], [folder]
    while todo:
        for f in client.list_artifacts(run_id, todo.pop()):
            if f.is_dir:
                todo.append(f.path)
            elif f.path.endswith(suffix):
                out.append(f.path)
    return sorted(out)


class _Reader:
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


def _settings(run: Run, stage: str) -> dict[str, str]:
    keys = SETTINGS.get(stage, ())
    return {k: run.data.params[k] for k in keys if k in run.data.params}


def _item(
    section: str,
    chain: ChainRuns,
    stage: str,
    fill: Callable[[Run], tuple[list[Table], list[Figure], list[str]]],
) -> Item:
    """One (section, chain) cell from the chain's run of ``stage``."""
    title = f"{chain.arch} · {chain.task}"
    item_id = f"{section}-{chain.key}"
    run_id = chain.stages.get(stage)
    if run_id is None:
        return Item(item_id, title, missing=f"the chain has no {stage} run")
    run = get_run(run_id)
    try:
        tables, figures, verdicts = fill(run)
    except (MlflowException, OSError, ValueError) as err:  # a cell says why, the rest stands
        return Item(
            item_id,
            title,
            run_id=run_id,
            run_link=run_url(run.info.experiment_id, run_id),
            missing=f"could not read the {stage} run's artifacts: {err}",
        )
    return Item(
        item_id,
        title,
        run_id=run_id,
        run_link=run_url(run.info.experiment_id, run_id),
        settings=_settings(run, stage),
        verdicts=verdicts,
        tables=tables,
        figures=figures,
        missing="" if tables or figures else f"the {stage} run logged nothing for this section",
    )


def _data_note(run: Run) -> str:
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


def _cells(chain: ChainRuns, read: _Reader) -> dict[str, Item]:
    """Every section's item for one chain."""

    def results(run: Run) -> tuple[list[Table], list[Figure], list[str]]:
        rid = run.info.run_id
        tables = [read.table(rid, "tables/fold_metrics.csv", "per fold", _data_note(run))]
        if FOLD_COUNTS_TABLE in _artifacts(rid, "tables", ".csv"):  # runs before it had none
            tables.append(read.table(rid, FOLD_COUNTS_TABLE, "images per class and fold"))
        return tables, [], []

    def confusion(run: Run) -> tuple[list[Table], list[Figure], list[str]]:
        paths = [p for p in _artifacts(run.info.run_id, "figures", ".png") if "confusion" in p]
        return [], read.figures(run.info.run_id, paths), []

    def top5(run: Run) -> tuple[list[Table], list[Figure], list[str]]:
        rid = run.info.run_id
        tables = [p for p in _artifacts(rid, "tables", ".csv") if "most_activated" in p]
        return [read.table(rid, p, p) for p in tables], [], _verdicts(run)

    def class_filters(run: Run) -> tuple[list[Table], list[Figure], list[str]]:
        rid = run.info.run_id
        logged = _artifacts(rid, "figures", ".png")
        # each exemplar grid class_<c>.png sorts just before its class_<c>_gradcam.png
        figs = [p for p in logged if p.split("/")[-1].startswith("class_")]
        figs += [p for p in PROBE_FIGURES if p in logged]
        tables = _named_tables(rid, ATTRIBUTION_TABLES) + _named_tables(rid, dict(PROBE_TABLES))
        return tables, read.figures(rid, figs), _ablation_verdicts(run)

    def layers(run: Run) -> tuple[list[Table], list[Figure], list[str]]:
        rid = run.info.run_id
        note = f"base: {run.data.tags.get(tag.BASE, '?')}"
        return (
            [read.table(rid, "tables/layers.csv", "per layer", note)],
            read.figures(rid, ["figures/layer_profile.png"]),
            [],
        )

    def test(run: Run) -> tuple[list[Table], list[Figure], list[str]]:
        rid = run.info.run_id
        skipped = run.data.tags.get(tag.TEST_SKIPPED)
        if skipped:
            return [], [], [f"skipped: {skipped}"]
        level = run.data.params.get("level", "0.95")
        tables = [read.table(rid, "tables/test_metrics.csv", f"metrics, {level} BCa interval")]
        if "tables/test_per_class.csv" in _artifacts(rid, "tables", ".csv"):
            tables.append(read.table(rid, "tables/test_per_class.csv", "per class (one-vs-rest)"))
        names = ("test_confusion", "test_pr_curve", "test_calibration")
        return tables, read.figures(rid, [f"figures/{n}.png" for n in names]), []

    def every_figure(run: Run) -> tuple[list[Table], list[Figure], list[str]]:
        rid = run.info.run_id
        return [], read.figures(rid, _artifacts(rid, "figures", ".png")), _verdicts(run)

    def sanity(run: Run) -> tuple[list[Table], list[Figure], list[str]]:
        _, figures, verdicts = every_figure(run)
        return _named_tables(run.info.run_id, SANITY_TABLES), figures, verdicts

    def _named_tables(rid: str, wanted: Mapping[str, str]) -> list[Table]:
        logged = set(_artifacts(rid, "tables", ".csv"))
        return [read.table(rid, p, caption) for p, caption in wanted.items() if p in logged]

    fills = {
        "results": ("train", results),
        "test": ("evaluate", test),
        "layers": ("layers", layers),
        "confusion": ("train", confusion),
        "top5": ("filters", top5),
        "class-filters": ("filters", class_filters),
        "featvis": ("visualize", every_figure),
        "sanity": ("sanity", sanity),
    }
    return {s: _item(s, chain, stage, fill) for s, (stage, fill) in fills.items()}


def _by_part(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The comparison split as the thesis's tables: one per part (train, validation, test),
    each with the models as rows; parts no model has are left out."""
    ident = ["name", "arch", "folds"]
    out = {}
    for part in PARTS:
        cols = [c for c in table.columns if c.startswith(f"{part}_")]
        if cols and (table[cols] != "").any().any():
            names = {c: c.removeprefix(f"{part}_") for c in cols}
            out[part] = table[ident + cols].rename(columns=names)
    return out


def _task_results(task: str, chains: Sequence[ChainRuns], compare_run: str | None) -> Item:
    """The thesis-style table of one task across its architectures (compare's numbers)."""
    trains = [c.stages["train"] for c in chains if "train" in c.stages]
    if not trains:
        return Item(f"results-{slug(task)}", f"{task}: all models", missing="no train run")
    comparison = compare_runs(trains)
    note = "; ".join(comparison.warnings) or _data_note(get_run(trains[0]))
    link = run_url(get_run(compare_run).info.experiment_id, compare_run) if compare_run else None
    return Item(
        f"results-{slug(task)}",
        f"{task}: all models",
        run_id=compare_run,
        run_link=link,
        tables=[
            Table(f"{task}, {part}: mean ± std over folds", frame, note)
            for part, frame in _by_part(mean_std_table(comparison.table)).items()
        ],
    )


def build_report(
    title: str,
    chains: Sequence[ChainRuns],
    compare_runs_by_task: Mapping[str, str] | None = None,
    summary: Sequence[str] = (),
    links: Mapping[str, str] | None = None,
) -> Report:
    """The study's report: every section, for every chain, in the thesis's order."""
    compares = compare_runs_by_task or {}
    with tempfile.TemporaryDirectory(prefix="isic-report-") as tmp:
        read = _Reader(Path(tmp))
        cells = [_cells(c, read) for c in chains]
        tasks = list(dict.fromkeys(c.task for c in chains))
        sections = []
        for sid, stitle, intro in SECTIONS:
            items: list[Item] = []
            if sid == "results":
                for task in tasks:
                    same = [c for c in chains if c.task == task]
                    items.append(_task_results(task, same, compares.get(task)))
            items += [cell[sid] for cell in cells]
            sections.append(Section(sid, stitle, intro, items))
    return Report(title, summary, sections, links or {})
