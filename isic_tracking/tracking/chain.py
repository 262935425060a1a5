"""The chain ``main`` runs: synth -> prepare -> eda -> search -> train -> filters ->
visualize -> sanity, each stage a child run of one pipeline run (:class:`Pipeline`), with
the settings of one profile (:mod:`isic_tracking.profiles`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import mlflow

from isic_tracking.data.defaults import data_dir
from isic_tracking.log import get_logger
from isic_tracking.profiles import PROFILES
from isic_tracking.tracking import param, tag
from isic_tracking.tracking.pipeline import Pipeline, current_git_commit
from isic_tracking.tracking.runs import experiment_id

log = get_logger(__name__)


@dataclass(frozen=True)
class ChainOptions:
    """What ``main`` takes on its command line."""

    dataset: str = "synthetic"
    root: str | None = None
    extra_malignant: str | None = None
    arch: str | None = None
    task: str = "binary"
    weights: str | None = None
    profile: str = "demo"
    force: bool = False


def run_chain(project: str, args: ChainOptions) -> Pipeline:
    """Run (or reuse) every stage of the chain for ``args``; returns the pipeline with the
    run of each stage."""
    prof = PROFILES[args.profile]
    arch = args.arch or prof["main"]["arch"]
    t0 = time.time()
    with mlflow.start_run(run_name=f"pipeline-{arch}") as run:
        mlflow.set_tags({tag.STAGE: "main", tag.PROFILE: args.profile})
        pipe = Pipeline(
            project, experiment_id(), run.info.run_id, current_git_commit(project), force=args.force
        )
        root = args.root
        if args.dataset == "synthetic" and root is None:
            root = str(data_dir() / "synthetic" / "raw")
            pipe.run("synth", {"out": root, "seed": 0, **prof["synth"]})
        prep = pipe.run(
            "prepare",
            {
                "dataset": args.dataset,
                "root": root,
                "task": args.task,
                "extra_malignant": args.extra_malignant or "",
                **prof["prepare"],
            },
        )
        manifest = str(Path(param(prep, "out")) / "manifest.csv")
        pipe.run("eda", {"manifest": manifest})
        common = {"manifest": manifest, "arch": arch, "task": args.task}
        weights = {"weights": args.weights} if args.weights else {}
        search = pipe.run("search", {**common, **prof["search"], **weights})
        train = pipe.run(
            "train", {**common, **prof["train"], **weights, "params_from": search.info.run_id}
        )
        model_uri = f"models:/{train.data.tags.get(tag.REGISTERED_MODEL)}@champion"
        analysed = {"model_uri": model_uri, "manifest": manifest}
        filt = pipe.run("filters", {**analysed, **prof["filters"]})
        vis = pipe.run(
            "visualize",
            {"model_uri": model_uri, "filters_run": filt.info.run_id, **prof["visualize"]},
        )
        pipe.run("sanity", {**analysed, "fv_run": vis.info.run_id, **prof["sanity"]})
        mlflow.set_tags({tag.MODEL_URI: model_uri, tag.TRAIN_RUN: train.info.run_id})
        _report(pipe, model_uri, time.time() - t0)
    return pipe


def _report(pipe: Pipeline, model_uri: str, seconds: float) -> None:
    uri = mlflow.get_tracking_uri()
    log.info(f"\n=== isic_tracking pipeline finished in {seconds:.0f} s ===")
    log.info(f"registered model : {model_uri}")
    for stage, (run_id, reused) in pipe.stages.items():
        log.info(f"  {stage:<10} run {run_id}{'  (reused)' if reused else ''}")
    ui = f"mlflow ui --backend-store-uri {uri}" if uri.startswith("sqlite") else f"open {uri}"
    log.info(f"see it all with  : {ui}   (then http://127.0.0.1:5000)")
