"""What the study report shows, read from the runs of finished chains (``main`` pipeline
runs): the logged metrics, tables and figures of each stage, never recomputed.

The sections follow the thesis: results (Tables 6-9), confusion matrices (Figs. 21, 24, 25),
the most activated filters of the last conv layer (Table 10), class-specific filters
(Fig. 26), feature visualizations (Figs. 27-32), sanity (Figs. 33-37).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlflow.entities import Run
from mlflow.exceptions import MlflowException

from isic_tracking.report import Figure, Item, Report, Section, Table, slug
from isic_tracking.stages.compare.runner import PARTS, compare_runs, mean_std_table
from isic_tracking.tracking import tag
from isic_tracking.tracking.links import run_url
from isic_tracking.tracking.pipeline import effective_run
from isic_tracking.tracking.report_cells import FILLS, SECTIONS, SETTINGS, Reader, data_note
from isic_tracking.tracking.runs import get_run, param


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


def _cells(chain: ChainRuns, read: Reader) -> dict[str, Item]:
    """Every section's item for one chain."""
    return {
        s: _item(s, chain, stage, lambda run, fill=fill: fill(run, read))
        for s, (stage, fill) in FILLS.items()
    }


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
    note = "; ".join(comparison.warnings) or data_note(get_run(trains[0]))
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
        read = Reader(Path(tmp))
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
