"""``main``: synth -> prepare -> eda -> search -> train (k-fold, registry) -> filters ->
visualize -> sanity, each stage a child run of one pipeline run; finished identical stages
are reused (``force=true`` reruns them)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import mlflow

from entrypoints._common import optional, run_main, str2bool
from isic_tracking.data.defaults import data_dir
from isic_tracking.profiles import PROFILES
from isic_tracking.tracking import param, tag
from isic_tracking.tracking.pipeline import Pipeline, current_git_commit
from isic_tracking.tracking.runs import experiment_id

PROJECT = str(Path(__file__).resolve().parents[1])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="main", description=__doc__)
    p.add_argument(
        "--dataset", default="synthetic", help="prepare's dataset (synthetic: made here)"
    )
    p.add_argument("--root", type=optional, default=None, help="data folder for real data")
    p.add_argument("--extra_malignant", type=optional, default=None)
    p.add_argument(
        "--arch", type=optional, default=None, help="model (default: the profile's, demo smallcnn)"
    )
    p.add_argument("--task", default="binary")
    p.add_argument("--weights", type=optional, default=None, help="local ImageNet weights file")
    p.add_argument("--profile", default="demo", choices=sorted(PROFILES))
    p.add_argument("--force", type=str2bool, default=False, help="rerun finished stages too")
    return p


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    prof = PROFILES[args.profile]
    args.arch = args.arch or prof["main"]["arch"]
    t0 = time.time()
    with mlflow.start_run(run_name=f"pipeline-{args.arch}") as run:
        mlflow.set_tags({tag.STAGE: "main", tag.PROFILE: args.profile})
        pipe = Pipeline(
            PROJECT,
            experiment_id(),
            run.info.run_id,
            current_git_commit(PROJECT),
            force=args.force,
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
        common = {"manifest": manifest, "arch": args.arch, "task": args.task}
        weights = {"weights": args.weights} if args.weights else {}
        search = pipe.run("search", {**common, **prof["search"], **weights})
        train = pipe.run(
            "train", {**common, **prof["train"], **weights, "params_from": search.info.run_id}
        )
        model_name = train.data.tags.get(tag.REGISTERED_MODEL)
        model_uri = f"models:/{model_name}@champion"
        filt = pipe.run(
            "filters",
            {
                "model_uri": model_uri,
                "manifest": manifest,
                **prof["filters"],
            },
        )
        vis = pipe.run(
            "visualize",
            {
                "model_uri": model_uri,
                "filters_run": filt.info.run_id,
                **prof["visualize"],
            },
        )
        pipe.run(
            "sanity",
            {
                "model_uri": model_uri,
                "fv_run": vis.info.run_id,
                "manifest": manifest,
                **prof["sanity"],
            },
        )
        mlflow.set_tags({tag.MODEL_URI: model_uri, tag.TRAIN_RUN: train.info.run_id})
        _report(pipe, model_uri, time.time() - t0)
    return 0


def _report(pipe: Pipeline, model_uri: str, seconds: float) -> None:
    uri = mlflow.get_tracking_uri()
    print(f"\n=== isic_tracking pipeline finished in {seconds:.0f} s ===")
    print(f"registered model : {model_uri}")
    for stage, (run_id, reused) in pipe.stages.items():
        print(f"  {stage:<10} run {run_id}{'  (reused)' if reused else ''}")
    ui = f"mlflow ui --backend-store-uri {uri}" if uri.startswith("sqlite") else f"open {uri}"
    print(f"see it all with  : {ui}   (then http://127.0.0.1:5000)")


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
