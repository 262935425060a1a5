"""Runs, parameters, metrics and artifacts: the thin layer every entry point logs through.

Under ``mlflow run`` MLflow creates the run and passes ``MLFLOW_RUN_ID``; :func:`stage_run`
resumes it, so the same entry point works from ``mlflow run``, the CLI and tests.
"""

from __future__ import annotations

import json
import os
import re
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
from mlflow.tracking.context.registry import resolve_tags
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NOTE

from isic_tracking.config import env_flag
from isic_tracking.errors import IsicInputError
from isic_tracking.tracking import tag
from isic_tracking.tracking.descriptions import stage_description
from isic_tracking.tracking.links import announce, run_link
from isic_tracking.train.tasks import TASKS

_MAX_PARAM_LEN = 6000
#: tag of an analysed model (registry.load_model) and so of its analysis runs: its task
MODEL_TASK_TAG = tag.MODEL_TASK


DEFAULT_TASK = "binary"
#: MLflow 3.x's experiment tag that picks the UI's view of an experiment; this value opens
#: it in the model-training (runs) view, not the GenAI one (traces, assistant)
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
TRAINING_KIND = "custom_model_development"


def experiment_name(task: str | None = None) -> str:
    """The experiment of a task's runs: ``isic-binary``, ``isic-multiclass``."""
    return f"isic-{task or DEFAULT_TASK}"


def ensure_experiment(name: str) -> str:
    """The id of experiment ``name``, created (tagged for the training view) if missing."""
    client = MlflowClient()
    exp = client.get_experiment_by_name(name)
    if exp is None:
        try:
            return client.create_experiment(name, tags={EXPERIMENT_KIND_TAG: TRAINING_KIND})
        except MlflowException:  # another process created it first
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
    if EXPERIMENT_KIND_TAG not in exp.tags and exp.lifecycle_stage == "active":
        client.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, TRAINING_KIND)
    return exp.experiment_id


def experiment_id(task: str | None = None) -> str:
    """The experiment this process's runs go to, the one lookup every stage uses (so a
    search, a resume and the pipeline's reuse of finished stages look in the same place):

    1. the active run's, else the run ``mlflow run`` made for this process (``MLFLOW_RUN_ID``);
    2. ``MLFLOW_EXPERIMENT_NAME`` (``--experiment``), created if missing;
    3. ``MLFLOW_EXPERIMENT_ID`` unless it is Default (``0``, what ``mlflow run`` passes when
       no experiment was chosen);
    4. the task's experiment (:func:`experiment_name`), created if missing.

    Experiments made here open in the MLflow UI's model-training view
    (:data:`EXPERIMENT_KIND_TAG`).
    """
    active = mlflow.active_run()
    if active is not None:
        return active.info.experiment_id
    if os.environ.get("MLFLOW_RUN_ID"):
        return get_run(os.environ["MLFLOW_RUN_ID"]).info.experiment_id
    if os.environ.get("MLFLOW_EXPERIMENT_NAME"):
        return ensure_experiment(os.environ["MLFLOW_EXPERIMENT_NAME"])
    if os.environ.get("MLFLOW_EXPERIMENT_ID", "0") != "0":
        return os.environ["MLFLOW_EXPERIMENT_ID"]
    return ensure_experiment(experiment_name(task))


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


def task_of(params: Mapping[str, Any] | None, tags: Mapping[str, str] | None) -> str | None:
    """The task a stage works on: its ``task`` param, else its model's (tag ``model.task``,
    or the name ``models:/isic-<task>-...``); None when neither says."""
    params, tags = params or {}, tags or {}
    if params.get("task") in TASKS:
        return str(params["task"])
    if tags.get(MODEL_TASK_TAG) in TASKS:
        return tags[MODEL_TASK_TAG]
    uri = str(params.get("model_uri") or tags.get(tag.MODEL) or "")
    m = re.match(r"models:/isic-([a-z]+)-", uri)
    return m.group(1) if m and m.group(1) in TASKS else None


def context_tags(**tags: str) -> dict[str, str]:
    """MLflow's source/user/git tags of this process (what ``mlflow.start_run`` adds), for
    runs created with ``MlflowClient.create_run``; ``tags`` win."""
    return resolve_tags(dict(tags))


def describe(text: str, run_id: str | None = None) -> None:
    """Set a run's description (markdown, shown on top of its page in the UI)."""
    run_id = run_id or mlflow.active_run().info.run_id
    MlflowClient().set_tag(run_id, MLFLOW_RUN_NOTE, text)


@contextmanager
def stage_run(
    stage: str,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    run_name: str | None = None,
    run_id: str | None = None,
    nested: bool = False,
    task: str | None = None,
) -> Iterator[Run]:
    """Start (or resume) the run of one pipeline stage and tag it ``isic.stage=<stage>``.

    A new top-level run goes to :func:`experiment_id` of ``task`` (default: :func:`task_of`
    its params and tags). When the body has finished, a run without a description gets the
    generic one (:func:`~isic_tracking.tracking.descriptions.stage_description`) and a
    top-level run ends with its id and UI link on the terminal.

    Args:
        stage: entry-point name (train, search, filters, ...).
        params: logged once, flattened; a resumed run must get the same values.
        tags: extra tags.
        run_name: shown in the UI (ignored when resuming).
        run_id: resume this run explicitly (otherwise ``MLFLOW_RUN_ID`` when set by ``mlflow run``).
        nested: start as a child of the active run.
        task: binary | multiclass, the experiment's task.
    """
    kwargs: dict[str, Any] = {"nested": nested}
    if run_id is not None:
        kwargs["run_id"] = run_id
    elif not os.environ.get("MLFLOW_RUN_ID"):
        if run_name is not None:
            kwargs["run_name"] = run_name
        # nested: the parent's (MLflow would put a nested run in the default experiment)
        kwargs["experiment_id"] = experiment_id(task or task_of(params, tags))
    with monitored_run(**kwargs) as run:
        mlflow.set_tags({tag.STAGE: stage, **(tags or {})})
        if params:
            log_params(params)
        yield run
        done = MlflowClient().get_run(run.info.run_id)
        if MLFLOW_RUN_NOTE not in done.data.tags:
            describe(stage_description(stage, done.data, _used_runs(done)), run.info.run_id)
    if not nested:
        announce(stage, run)


#: seconds between two samples of MLflow's system metrics (CPU, memory, disk, network, GPU);
#: MLflow's own 10 s would leave a demo stage of 15 s with one point or none
SYSTEM_METRICS_INTERVAL_S = 2.0
_ENABLE_SYSTEM_METRICS = "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"
_SYSTEM_METRICS_INTERVAL = "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"


def system_metrics_wanted() -> bool:
    """Every stage run logs MLflow's system metrics (``system/cpu_utilization_percentage``,
    ``system/system_memory_usage_megabytes``, disk, network and, with the ``gpu`` extra on a
    CUDA machine, ``system/gpu_*``), so the UI shows whether a GPU waits for data; a user
    switches them off with ``MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING=false``."""
    return env_flag(os.environ, _ENABLE_SYSTEM_METRICS)


@contextmanager
def monitored_run(**kwargs: Any) -> Iterator[mlflow.ActiveRun]:
    """``mlflow.start_run(**kwargs)`` with the system metrics of :func:`system_metrics_wanted`
    sampled every :data:`SYSTEM_METRICS_INTERVAL_S`; a nested run (fold, trial) has none of
    its own: its parent's monitor covers it."""
    kwargs["log_system_metrics"] = system_metrics_wanted() and not kwargs.get("nested")
    with _sampling_interval():
        active = mlflow.start_run(**kwargs)
    with active as run:
        yield run


@contextmanager
def _sampling_interval() -> Iterator[None]:
    """:data:`SYSTEM_METRICS_INTERVAL_S` while MLflow builds the run's monitor (it reads the
    interval from the environment then); a value the user set wins, and the environment is
    left as it was."""
    if _SYSTEM_METRICS_INTERVAL in os.environ:
        yield
        return
    os.environ[_SYSTEM_METRICS_INTERVAL] = str(SYSTEM_METRICS_INTERVAL_S)
    try:
        yield
    finally:
        os.environ.pop(_SYSTEM_METRICS_INTERVAL, None)


def _used_runs(run: Run) -> dict[str, str]:
    """What the run says it used (model, training run, filters / visualize run): label ->
    markdown link or value."""
    t = run.data.tags
    used = {}
    for label, key in (
        ("training run", tag.MODEL_TRAIN_RUN),
        ("training run", tag.TRAIN_RUN),
        ("filters run", tag.FILTERS_RUN),
        ("feature-visualization run", tag.FV_RUN),
    ):
        if t.get(key) and label not in used:
            used[label] = _safe_link(t[key])
    if t.get(tag.MODEL):
        used["model"] = f"`{t[tag.MODEL]}`" + (
            f" (version {t[tag.MODEL_VERSION]})" if t.get(tag.MODEL_VERSION) else ""
        )
    return used


def _safe_link(run_id: str) -> str:
    try:
        return run_link(run_id)
    except MlflowException:
        return f"`{run_id}`"


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
