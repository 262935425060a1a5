"""The ``thesis`` study: ``main``'s chain for every (architecture, task) of a grid, each a
child run of one study run, then ``compare`` per task and one report (``report.html``).

Each chain runs as a ``main`` stage through :class:`~isic_tracking.tracking.pipeline.Pipeline`,
so a finished chain is reused whole and an unfinished one (killed) reruns ``main``, which
itself reuses its finished stages and resumes ``train`` at the last completed epoch.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow

from isic_tracking.errors import IsicInputError
from isic_tracking.log import get_logger
from isic_tracking.profiles import PROFILES
from isic_tracking.report import slug
from isic_tracking.tracking import tag
from isic_tracking.tracking.chain import pipeline_experiment
from isic_tracking.tracking.links import PIPELINE_ENV, experiment_url, run_url
from isic_tracking.tracking.pipeline import Pipeline, current_git_commit
from isic_tracking.tracking.publish import REPORT, publish
from isic_tracking.tracking.report_data import ChainRuns, build_report, chain_runs
from isic_tracking.train.tasks import check_task

log = get_logger(__name__)

#: the study's experiment unless the user chose one (``--experiment-name`` of ``mlflow run``)
EXPERIMENT = "isic-thesis"


@dataclass(frozen=True)
class ThesisOptions:
    """What ``thesis`` takes on its command line."""

    archs: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ("binary", "multiclass")
    dataset: str = "synthetic"
    root: str | None = None
    extra_malignant: str | None = None
    weights: str | None = None
    init: str | None = None
    profile: str = "demo"
    force: bool = False
    report_dir: str | None = None

    def grid(self) -> list[tuple[str, str]]:
        """(arch, task) pairs, task-major like the thesis's tables."""
        archs = self.archs or tuple(PROFILES[self.profile]["thesis"]["archs"])
        for t in self.tasks:
            check_task(t)
        if not archs or not self.tasks:
            raise IsicInputError("thesis: give at least one arch (--archs) and one task (--tasks)")
        return [(a, t) for t in self.tasks for a in archs]


def _main_params(opts: ThesisOptions, arch: str, task: str) -> dict[str, str]:
    params = {
        "dataset": opts.dataset,
        "root": opts.root or "",
        "arch": arch,
        "task": task,
        "weights": opts.weights or "",
        "init": opts.init or "",
        "profile": opts.profile,
        "force": str(opts.force).lower(),
    }
    if opts.extra_malignant:  # not an MLproject parameter of main: passed on as --flag
        params["extra_malignant"] = opts.extra_malignant
    return params


def run_thesis(project: str, opts: ThesisOptions) -> tuple[str, Path]:
    """Run (or reuse) every chain of the grid and the per-task comparisons; log and write the
    report. Returns (study run id, report path)."""
    grid = opts.grid()
    t0 = time.time()
    exp = pipeline_experiment(None, stage="thesis", name=EXPERIMENT)
    with mlflow.start_run(run_name="thesis", experiment_id=exp) as run:
        mlflow.set_tags({tag.STAGE: "thesis", tag.PROFILE: opts.profile})
        mlflow.log_params(
            {
                "archs": ",".join(dict.fromkeys(a for a, _ in grid)),
                "tasks": ",".join(dict.fromkeys(t for _, t in grid)),
                "profile": opts.profile,
                "dataset": opts.dataset,
            }
        )
        # force reaches each chain's own stages through main's parameter, not the chain itself
        os.environ[PIPELINE_ENV] = run.info.run_id  # the stages leave the UI hint to the study
        pipe = Pipeline(project, exp, run.info.run_id, current_git_commit(project))
        chains: list[ChainRuns] = []
        for arch, task in grid:
            log.info(f"thesis: chain {arch} on {task}")
            main = pipe.run(
                "main", _main_params(opts, arch, task), label=f"main-{task}-{slug(arch)}"
            )
            chains.append(chain_runs(main.info.run_id))
        compares = {}
        for task in dict.fromkeys(t for _, t in grid):
            trains = [c.stages["train"] for c in chains if c.task == task]
            cmp = pipe.run("compare", {"runs": ",".join(trains), "models": ""}, f"compare-{task}")
            compares[task] = cmp.info.run_id
        summary = [
            f"{len(chains)} chains ({', '.join(f'{c.arch} on {c.task}' for c in chains)}), "
            f"profile {opts.profile}, data {opts.dataset}; finished in {time.time() - t0:.0f} s.",
        ]
        report = build_report(
            "isic_tracking study report",
            chains,
            compares,
            summary,
            {
                "study run": run_url(exp, run.info.run_id),
                "all its runs": experiment_url(exp),
            },
        )
        path = publish(report, "thesis", opts.report_dir)
    for stage, (run_id, reused) in pipe.stages.items():
        log.info(f"  {stage:<28} run {run_id}{'  (reused)' if reused else ''}")
    log.info(f"report: {path}  (and artifact {REPORT} of run {run.info.run_id})")
    log.info(f"study run: {run_url(exp, run.info.run_id)}")
    return run.info.run_id, path


__all__ = ["ThesisOptions", "run_thesis"]
