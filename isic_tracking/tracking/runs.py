"""Runs, parameters, metrics and artifacts: the thin layer every entry point logs through.

Under ``mlflow run`` MLflow creates the run and passes ``MLFLOW_RUN_ID``; :func:`stage_run`
resumes it, so the same entry point works from ``mlflow run``, the CLI and tests.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from isic_tracking.errors import IsicInputError
from isic_tracking.tracking import tag

_MAX_PARAM_LEN = 6000


def experiment_id() -> str:
    """The experiment this process's runs go to: the active run's, ``MLFLOW_EXPERIMENT_ID``
    (set by ``mlflow run``), ``MLFLOW_EXPERIMENT_NAME`` (created if missing), else Default.

    The one lookup every stage uses, so a search, a resume and the pipeline's reuse of
    finished stages all look in the same experiment.
    """
    active = mlflow.active_run()
    if active is not None:
        return active.info.experiment_id
    if os.environ.get("MLFLOW_EXPERIMENT_ID"):
        return os.environ["MLFLOW_EXPERIMENT_ID"]
    name = os.environ.get("MLFLOW_EXPERIMENT_NAME")
    if name:
        exp = mlflow.get_experiment_by_name(name)
        return exp.experiment_id if exp else mlflow.create_experiment(name)
    exp = mlflow.get_experiment_by_name("Default")
    return exp.experiment_id if exp else "0"


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists and tuples become JSON strings."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        elif isinstance(v, (list, tuple)):
            out[key] = json.dumps(list(v))
        else:
            out[key] = v
    return out


def log_params(params: Mapping[str, Any]) -> None:
    """Log (flattened) params once; safe to call again on a resumed run.

    A key the run already has with another value (``mlflow run`` logs the raw MLproject
    value, e.g. ``manifest=''``, before the stage resolves it) is logged as
    ``resolved.<key>``; a resolved value that changes between calls is an error.
    """
    run = mlflow.active_run()
    existing = MlflowClient().get_run(run.info.run_id).data.params if run is not None else {}
    todo: dict[str, str] = {}
    for k, v in flatten(params).items():
        s = str(v)[:_MAX_PARAM_LEN]
        if existing.get(k, s) != s:
            k = f"resolved.{k}"
            if existing.get(k, s) != s:
                raise IsicInputError(
                    f"run {run.info.run_id} already has param {k}={existing[k]!r}, not {s!r}: "
                    "resume with the same settings, or start a new run"
                )
        if k not in existing:
            todo[k] = s
    if todo:
        mlflow.log_params(todo)


def param(run: Run, key: str, default: str | None = None) -> str | None:
    """A run's effective param: the resolved value when the stage resolved a default."""
    params = run.data.params
    return params.get(f"resolved.{key}", params.get(key, default))


@contextmanager
def stage_run(
    stage: str,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    run_name: str | None = None,
    run_id: str | None = None,
    nested: bool = False,
) -> Iterator[Run]:
    """Start (or resume) the run of one pipeline stage and tag it ``isic.stage=<stage>``.

    Args:
        stage: entry-point name (train, search, filters, ...).
        params: logged once, flattened; a resumed run must get the same values.
        tags: extra tags.
        run_name: shown in the UI (ignored when resuming).
        run_id: resume this run explicitly (otherwise ``MLFLOW_RUN_ID`` when set by ``mlflow run``).
        nested: start as a child of the active run.
    """
    kwargs: dict[str, Any] = {"nested": nested}
    if run_id is not None:
        kwargs["run_id"] = run_id
    elif run_name is not None and not os.environ.get("MLFLOW_RUN_ID"):
        kwargs["run_name"] = run_name
    with mlflow.start_run(**kwargs) as run:
        mlflow.set_tags({tag.STAGE: stage, **(tags or {})})
        if params:
            log_params(params)
        yield run


def log_metrics(metrics: Mapping[str, Any], step: int | None = None, prefix: str = "") -> None:
    """Log numeric metrics (non-numbers dropped; NaN kept: MLflow shows it, hiding it would lie)."""
    clean = {}
    for k, v in metrics.items():
        try:
            clean[f"{prefix}{k}"] = float(v)
        except (TypeError, ValueError):
            continue
    if clean:
        mlflow.log_metrics(clean, step=step)


def log_figure(fig: Any, artifact_file: str) -> None:
    """Log a matplotlib figure as an image artifact and free it."""
    mlflow.log_figure(fig, artifact_file)
    try:
        import matplotlib.pyplot as plt

        plt.close(fig)
    except Exception:  # a Figure() not registered with pyplot
        pass


def log_dataframe(df: pd.DataFrame, artifact_file: str) -> None:
    """Log a table as a CSV artifact (not ``log_table``: its 5,000-character tag breaks at scale)."""
    path = Path(artifact_file)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / path.name
        df.to_csv(local, index=False)
        mlflow.log_artifact(
            str(local), artifact_path=str(path.parent) if str(path.parent) != "." else None
        )


def log_text(text: str, artifact_file: str) -> None:
    mlflow.log_text(text, artifact_file)


def log_dict(d: Mapping[str, Any], artifact_file: str) -> None:
    mlflow.log_dict(dict(d), artifact_file)


def log_image_files(paths: str | Path | Iterable[str | Path], artifact_dir: str) -> None:
    """Log a folder (recursively) or a list of files under ``artifact_dir``."""
    if isinstance(paths, (str, Path)) and Path(paths).is_dir():
        mlflow.log_artifacts(str(paths), artifact_path=artifact_dir)
        return
    for p in [paths] if isinstance(paths, (str, Path)) else paths:
        mlflow.log_artifact(str(p), artifact_path=artifact_dir)


def manifest_digest(df: pd.DataFrame) -> str:
    """Content digest of a manifest (ids, labels, splits): the same images give the same digest."""
    cols = [c for c in ("image_id", "label", "split", "fold") if c in df.columns]
    h = pd.util.hash_pandas_object(df[cols].astype(str), index=False)
    return f"{int(h.sum()) & 0xFFFFFFFFFFFF:012x}"


def log_manifest_input(df: pd.DataFrame, name: str, context: str, source: str | None = None) -> str:
    """Log the manifest as an MLflow dataset input with its digest; returns the digest."""
    digest = manifest_digest(df)
    table = df.drop(columns=[c for c in ("path", "orig_path") if c in df.columns])
    with warnings.catch_warnings():  # schema inference hints about int columns: not ours
        warnings.simplefilter("ignore", UserWarning)
        dataset = mlflow.data.from_pandas(
            table, source=source, targets="label", name=name, digest=digest
        )
        try:  # the schema is inferred here, lazily: inside the warnings filter
            mlflow.log_input(dataset, context=context)
        except MlflowException as err:
            # two workers logging the same new dataset at once (server on PostgreSQL/MySQL):
            # the later insert hits the unique key; the dataset exists now, so logging again
            # links it
            if not any(w in str(err).lower() for w in ("unique", "duplicate")):
                raise
            mlflow.log_input(dataset, context=context)
    mlflow.set_tag(tag.dataset_digest(context), digest)
    return digest


def get_run(run_id: str) -> Run:
    """The run, or an IsicInputError saying it does not exist on this tracking server."""
    try:
        return MlflowClient().get_run(run_id)
    except MlflowException as err:
        raise IsicInputError(
            f"run {run_id!r} does not exist on tracking server {mlflow.get_tracking_uri()}"
        ) from err


def get_stage_run(run_id: str, stage: str) -> Run:
    """The run ``run_id`` checked to be a run of ``stage`` (tag ``isic.stage``)."""
    run = get_run(run_id)
    actual = run.data.tags.get(tag.STAGE)
    if actual != stage:
        raise IsicInputError(
            f"run {run_id} is a {actual or 'non-isic'} run, not a {stage} run; "
            f"pass the id of a `{stage}` run (see the MLflow UI, tag {tag.STAGE}={stage})"
        )
    return run


def download_artifacts(run_id: str, path: str, dst: str | Path | None = None) -> Path:
    """Download a run's artifact (file or folder) and return the local path."""
    try:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=path, dst_path=str(dst) if dst else None
        )
    except (MlflowException, OSError) as err:
        raise IsicInputError(f"run {run_id} has no artifact {path!r}: {err}") from err
    return Path(local)


def child_runs(parent_run_id: str) -> list[Run]:
    """Direct children of a run (nested runs), oldest first."""
    parent = get_run(parent_run_id)
    runs = MlflowClient().search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
        max_results=10000,
    )
    return sorted(runs, key=lambda r: r.info.start_time)
