"""The ``thesis`` study: ``main``'s chain for every (architecture, task) of a grid, each a
child run of one study run, then ``compare`` per task and one report (``report.html``).

Each chain runs as a ``main`` stage through :class:`~isic_tracking.tracking.pipeline.Pipeline`,
so a finished chain is reused whole and an unfinished one (killed) reruns ``main``, which
itself reuses its finished stages and resumes ``train`` at the last completed epoch.

The data options take one value for every task or ``task=value`` pairs (:func:`per_task`),
so one study runs the binary task on ISIC 2020 + ISIC 2019 MEL, tested on ISIC 2016, and the
multiclass task on ISIC 2019, as the thesis did; ``init`` / ``weights`` take one value or
``arch=value`` pairs, resolved per chain (:func:`arch_init`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow

from isic_tracking.errors import IsicInputError
from isic_tracking.log import get_logger
from isic_tracking.models.init import init_for_arch
from isic_tracking.profiles import PROFILES
from isic_tracking.report import slug
from isic_tracking.tracking import tag
from isic_tracking.tracking.chain import pipeline_experiment
from isic_tracking.tracking.links import PIPELINE_ENV, experiment_url, run_url
from isic_tracking.tracking.pipeline import Pipeline, current_git_commit
from isic_tracking.tracking.publish import REPORT, publish
from isic_tracking.tracking.report_data import ChainRuns, build_report, chain_runs
from isic_tracking.train.tasks import TASKS, check_task

log = get_logger(__name__)

#: the study's experiment unless the user chose one (``--experiment-name`` of ``mlflow run``)
EXPERIMENT = "isic-thesis"
#: the options that take ``task=value`` pairs
PER_TASK = ("dataset", "root", "extra_malignant", "test_dataset", "test_root")


def _pairs(spec: str) -> dict[str, str] | None:
    """``{task: value}`` when ``spec`` is ``task=value`` pairs, else None (one value)."""
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not any(p.split("=", 1)[0].strip() in TASKS for p in parts if "=" in p):
        return None
    pairs = {}
    for part in parts:
        key, eq, value = part.partition("=")
        if not eq or key.strip() not in TASKS:
            raise IsicInputError(
                f"{spec!r}: {part!r} is not task=value; use one value for every task or "
                f"pairs like binary=...,multiclass=... (tasks: {', '.join(TASKS)})"
            )
        pairs[key.strip()] = value.strip()
    return pairs


def per_task(spec: str | None, task: str) -> str | None:
    """The value of ``task`` in a per-task option: ``spec`` itself when it is one value,
    the pair's value for ``binary=a,multiclass=b``, None when the task has no pair."""
    if not spec:
        return None
    pairs = _pairs(spec)
    return spec if pairs is None else pairs.get(task) or None


def arch_init(init: str | None, weights: str | None, arch: str) -> str:
    """The init ``main`` gets for ``arch``: ``init`` (else ``weights``) resolved for it
    (:func:`~isic_tracking.models.init.init_for_arch`: one value, a torch-cache folder or
    ``arch=value`` pairs; an arch without a pair starts at random, as in ``main``); "" when
    neither is given (``main`` then takes the profile's)."""
    spec = init or weights
    if not spec:
        return ""
    return init_for_arch(spec, arch) or "random"


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
    test_dataset: str | None = None
    test_root: str | None = None
    test_fraction: float | None = None

    def grid(self) -> list[tuple[str, str]]:
        """(arch, task) pairs, task-major like the thesis's tables; every task of a per-task
        ``dataset`` has its value."""
        archs = self.archs or tuple(PROFILES[self.profile]["thesis"]["archs"])
        for t in self.tasks:
            check_task(t)
        if not archs or not self.tasks:
            raise IsicInputError("thesis: give at least one arch (--archs) and one task (--tasks)")
        for name in PER_TASK:
            for t in self.tasks:
                per_task(getattr(self, name), t)  # a malformed spec fails here, before any run
        missing = [t for t in self.tasks if not per_task(self.dataset, t)]
        if missing:
            raise IsicInputError(
                f"thesis: --dataset {self.dataset!r} names no data set for task(s) "
                f"{', '.join(missing)}; add {missing[0]}=<dataset>"
            )
        return [(a, t) for t in self.tasks for a in archs]


def _main_params(opts: ThesisOptions, arch: str, task: str) -> dict[str, str]:
    """The ``main`` parameters of one chain: the task's data and test set, the arch's init."""
    fraction = opts.test_fraction
    params = {
        "dataset": per_task(opts.dataset, task) or "",
        "root": per_task(opts.root, task) or "",
        "arch": arch,
        "task": task,
        "weights": "",
        "init": arch_init(opts.init, opts.weights, arch),
        "test_dataset": per_task(opts.test_dataset, task) or "",
        "test_root": per_task(opts.test_root, task) or "",
        "test_fraction": "" if fraction is None else str(fraction),
        "profile": opts.profile,
        "force": str(opts.force).lower(),
    }
    extra = per_task(opts.extra_malignant, task)
    if extra:  # not an MLproject parameter of main: passed on as --flag
        params["extra_malignant"] = extra
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
