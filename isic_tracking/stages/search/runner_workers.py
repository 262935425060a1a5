"""The search's workers: one in this process, or ``n_workers`` spawned processes on this
host, each opening the shared study and running trials tracked under the parent run."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from dataclasses import dataclass
from typing import Any

import mlflow

from isic_tracking.log import get_logger, setup
from isic_tracking.scaleout.scratch import owned_scratch
from isic_tracking.scaleout.storage import make_storage
from isic_tracking.scaleout.worker_loop import claim_lock_path, run_worker
from isic_tracking.stages.search.runner_trials import MlflowTrialHooks
from isic_tracking.train.search import (
    SearchConfig,
    SearchData,
    SearchObjective,
    load_search_data,
    make_sampler,
    open_study,
)
from isic_tracking.utils import resolve_device, seed_everything

log = get_logger(__name__)


def run_worker_here(
    cfg: SearchConfig,
    study_name: str,
    storage_url: str,
    parent_run_id: str,
    data: SearchData | None = None,
) -> list[int]:
    """One worker: open the shared study and run trials until the budget is used."""
    storage = make_storage(storage_url, cfg.heartbeat, cfg.max_retry)
    sampler = make_sampler(cfg.seed)  # seeded per trial: no two workers draw alike
    study = open_study(storage, study_name, cfg, sampler=sampler)
    data = data or load_search_data(cfg)
    cpu = resolve_device(cfg.device).type == "cpu"
    seed_everything(cfg.seed, deterministic=cfg.deterministic and cpu)
    hooks = MlflowTrialHooks(parent_run_id, study_name, cfg.resolved_metric())
    return run_worker(
        study,
        SearchObjective(cfg, data, hooks, scratch=owned_scratch),
        cfg.n_trials,
        timeout=cfg.timeout,
        lock_path=claim_lock_path(storage_url, study_name),
        max_retry=cfg.max_retry,
    )


@dataclass(frozen=True)
class WorkerJob:
    """What a spawned worker process is handed (plain values: it is pickled to the child)."""

    cfg: dict[str, Any]  # the SearchConfig's fields
    study_name: str
    storage_url: str
    parent_run_id: str
    worker: int  # its number among this host's workers (picks its GPU)
    tracking_uri: str
    threads: int  # torch threads (this host's cores shared among the workers)


def _worker_process(job: WorkerJob) -> None:
    """Entry of a spawned worker process (module level, so ``spawn`` can import it)."""
    import torch

    setup()  # a spawned process: print this project's messages as the parent does
    torch.set_num_threads(job.threads)
    mlflow.set_tracking_uri(job.tracking_uri)
    os.environ.pop("MLFLOW_RUN_ID", None)  # never resume the parent's run from here
    cfg = SearchConfig(**job.cfg)
    n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if cfg.device in ("auto", "cuda") and n_gpus > 1:  # spread the workers over the GPUs
        cfg = dataclasses.replace(cfg, device=f"cuda:{job.worker % n_gpus}")
    ran = run_worker_here(cfg, job.study_name, job.storage_url, job.parent_run_id)
    log.info(f"search worker {job.worker} (pid {os.getpid()}): trials {ran}")


def run_workers(
    cfg: SearchConfig,
    study_name: str,
    storage_url: str,
    parent_run_id: str,
) -> list[int]:
    """``n_workers`` processes on this host; returns their exit codes."""
    ctx = multiprocessing.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // cfg.n_workers)
    procs = [
        ctx.Process(
            target=_worker_process,
            args=(
                WorkerJob(
                    dataclasses.asdict(cfg),
                    study_name,
                    storage_url,
                    parent_run_id,
                    i,
                    mlflow.get_tracking_uri(),
                    threads,
                ),
            ),
            name=f"isic-search-worker-{i}",
        )
        for i in range(cfg.n_workers)
    ]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except BaseException:
        for p in procs:  # interrupted: stop our own workers, their trials fail and re-queue
            if p.is_alive():
                p.terminate()
                p.join()
        raise
    return [int(p.exitcode or 0) for p in procs]
