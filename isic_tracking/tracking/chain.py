"""The chain ``main`` runs: synth -> prepare -> eda -> (pretrain) -> search -> train ->
evaluate -> layers -> filters -> visualize -> sanity, each stage a child run of one pipeline
run (:class:`Pipeline`), with the settings of one profile (:mod:`isic_tracking.profiles`).

The test set is made in ``prepare`` (``test_dataset`` + ``test_root``, else the data's own
test rows, else a held-out ``test_fraction``), before search and train see any row; the
``evaluate`` stage scores the registered champion on it."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from isic_tracking.data.defaults import data_dir
from isic_tracking.log import get_logger
from isic_tracking.models.init import init_for_arch
from isic_tracking.profiles import PROFILES
from isic_tracking.tracking import param, tag
from isic_tracking.tracking.descriptions import pipeline_description
from isic_tracking.tracking.links import (
    LOCAL_UI,
    PIPELINE_ENV,
    experiment_url,
    run_link,
    run_url,
    ui_base,
    ui_command,
)
from isic_tracking.tracking.pipeline import Pipeline, current_git_commit
from isic_tracking.tracking.publish import publish
from isic_tracking.tracking.report_data import build_report, chain_runs
from isic_tracking.tracking.runs import describe, ensure_experiment, experiment_id, get_run

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
    init: str | None = None
    profile: str = "demo"
    force: bool = False
    test_dataset: str | None = None
    test_root: str | None = None
    test_fraction: float | None = None


def prepare_test_params(args: ChainOptions) -> dict[str, str | float]:
    """``prepare``'s test-set parameters: the given test set, and the held-out fraction
    (``test_fraction``, else the profile's) for data without one."""
    prof = PROFILES[args.profile]["prepare"]
    fraction = prof["test_fraction"] if args.test_fraction is None else args.test_fraction
    return {
        "test_dataset": args.test_dataset or "",
        "test_root": args.test_root or "",
        "test_fraction": fraction,
    }


def chain_init(pipe: Pipeline, args: ChainOptions, arch: str) -> str:
    """The init of the chain's model: ``init`` (else ``weights``, else the profile's) for
    ``arch`` (:func:`init_for_arch`: one value, a torch-cache folder or ``arch=value`` pairs);
    ``pretrain`` runs (or reuses) the pretrain stage and names the version it registered."""
    prof = PROFILES[args.profile]
    spec = args.init or args.weights or prof["main"].get("init")
    value = init_for_arch(spec, arch) or "random"
    if value != "pretrain":
        return value
    run = pipe.run("pretrain", {"arch": arch, "seed": 0, **prof["pretrain"]})
    tags = run.data.tags
    return f"models:/{tags[tag.REGISTERED_MODEL]}/{tags[tag.CHAMPION_VERSION]}"


def run_chain(project: str, args: ChainOptions) -> Pipeline:
    """Run (or reuse) every stage of the chain for ``args``; returns the pipeline with the
    run of each stage."""
    prof = PROFILES[args.profile]
    arch = args.arch or prof["main"]["arch"]
    t0 = time.time()
    exp = pipeline_experiment(args.task)
    with mlflow.start_run(run_name=f"pipeline-{arch}", experiment_id=exp) as run:
        mlflow.set_tags({tag.STAGE: "main", tag.PROFILE: args.profile})
        os.environ[PIPELINE_ENV] = run.info.run_id  # the stages leave the UI hint to main
        pipe = Pipeline(
            project, exp, run.info.run_id, current_git_commit(project), force=args.force
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
                **prepare_test_params(args),
            },
        )
        manifest = str(Path(param(prep, "out")) / "manifest.csv")
        pipe.run("eda", {"manifest": manifest})
        common = {"manifest": manifest, "arch": arch, "task": args.task}
        init = {"init": chain_init(pipe, args, arch)}
        search = pipe.run("search", {**common, **prof["search"], **init})
        train = pipe.run(
            "train", {**common, **prof["train"], **init, "params_from": search.info.run_id}
        )
        model_uri = f"models:/{train.data.tags.get(tag.REGISTERED_MODEL)}@champion"
        analysed = {"model_uri": model_uri, "manifest": manifest}
        pipe.run("evaluate", {**analysed, **prof["evaluate"]})
        pipe.run("layers", {**analysed, **prof["layers"]})
        filt = pipe.run("filters", {**analysed, **prof["filters"]})
        vis = pipe.run(
            "visualize",
            {"model_uri": model_uri, "filters_run": filt.info.run_id, **prof["visualize"]},
        )
        pipe.run("sanity", {**analysed, "fv_run": vis.info.run_id, **prof["sanity"]})
        mlflow.set_tags({tag.MODEL_URI: model_uri, tag.TRAIN_RUN: train.info.run_id})
        links = {
            s: run_link(r) + (" (reused)" if used else "") for s, (r, used) in pipe.stages.items()
        }
        describe(pipeline_description(links, model_uri, args.profile))
        report = build_report(
            f"isic_tracking pipeline: {arch} on {args.task}",
            [chain_runs(run.info.run_id)],
            summary=[f"profile {args.profile}, data {args.dataset}, model {model_uri}."],
            links={"pipeline run": run_url(exp, run.info.run_id)},
        )
        path = publish(report, "main")
        _report(pipe, model_uri, time.time() - t0)
        log.info(f"report           : {path}")
    return pipe


def pipeline_experiment(task: str | None, stage: str = "main", name: str | None = None) -> str:
    """The experiment of a pipeline run (``main``'s, or a ``thesis`` study's): experiment
    ``name`` when given and the user chose none, else :func:`experiment_id` of ``task``,
    ignoring the run ``mlflow run`` made for this process. A launcher run elsewhere
    (``mlflow run .`` puts it in Default) is left pointing at the pipeline run, which starts
    in that experiment."""
    launcher = os.environ.pop("MLFLOW_RUN_ID", None)
    chosen = os.environ.get("MLFLOW_EXPERIMENT_NAME") or (
        os.environ.get("MLFLOW_EXPERIMENT_ID", "0") != "0"
    )
    exp = ensure_experiment(name) if name and not chosen else experiment_id(task)
    if launcher is None:
        return exp
    if get_run(launcher).info.experiment_id == exp:
        os.environ["MLFLOW_RUN_ID"] = launcher  # the pipeline run is the launcher's
        return exp
    client = MlflowClient()
    client.set_tag(launcher, tag.STAGE, f"{stage}-launcher")
    describe(
        f"Launcher of the `{stage}` pipeline, whose runs are in experiment "
        f"[{client.get_experiment(exp).name}]({experiment_url(exp)}) "
        "(choose one with `mlflow run . --experiment-name`).",
        launcher,
    )
    return exp


def _report(pipe: Pipeline, model_uri: str, seconds: float) -> None:
    uri = mlflow.get_tracking_uri()
    log.info(f"\n=== isic_tracking pipeline finished in {seconds:.0f} s ===")
    log.info(f"registered model : {model_uri}")
    for stage, (run_id, reused) in pipe.stages.items():
        log.info(f"  {stage:<10} run {run_id}{'  (reused)' if reused else ''}")
    then = "   (then the links below)" if ui_base(uri) == LOCAL_UI else ""
    log.info(f"see it all with  : {ui_command(uri)}{then}")
    log.info(f"its runs         : {experiment_url(pipe.experiment_id, uri)}")
    log.info(f"pipeline run     : {run_url(pipe.experiment_id, pipe.parent_run_id, uri)}")
