"""Model Registry: register fold models, set the ``champion`` alias, pull models safely.

A registered version points at a fold's LoggedModel (``models:/<model_id>``, a pickle-free
pyfunc, see :mod:`isic_tracking.tracking.pyfunc`), so MLflow's own tools load and serve it.
:func:`load_model` is the way to the ``nn.Module`` itself (named layers, for hooks): it reads
the same model's ``model.safetensors`` + ``config.json`` and rebuilds the architecture, so
pulling a model never unpickles code. Versions registered before that point at a bare
``checkpoint/`` folder of the fold run, and checkpoints of older versions lack ``classes``,
``mean`` and ``std`` in their config; both still load, with a one-time warning, until
2027-06-30 (:mod:`isic_tracking.deprecation`).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mlflow
import pandas as pd
import torch
from mlflow.entities import LoggedModel
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from torch import nn

from isic_tracking.data.manifest import task_classes
from isic_tracking.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from isic_tracking.deprecation import warn_legacy
from isic_tracking.errors import IsicInputError
from isic_tracking.log import get_logger
from isic_tracking.models import create_model
from isic_tracking.tracking import tag
from isic_tracking.tracking.descriptions import (
    model_description,
    version_description,
    with_evaluation_section,
)
from isic_tracking.tracking.pyfunc import (
    DATA_DIR,
    DATASET_CONTEXT,
    MODEL_NAME,
    download_checkpoint,
    run_logged_model,
)
from isic_tracking.tracking.runs import MODEL_TASK_TAG, download_artifacts, get_run, param
from isic_tracking.train.checkpoint import load_model_checkpoint

log = get_logger(__name__)

INIT_FIELDS = ("kind", "source", "sha256")
CHECKPOINT_DIR = DATA_DIR  # the bare run artifact of versions registered before pyfunc models
CHAMPION = "champion"


@dataclass
class LoadedModel:
    """A model pulled from the registry, a run or the ImageNet base."""

    model: nn.Module
    config: dict[str, Any]
    uri: str
    name: str | None = None
    version: str | None = None
    train_run_id: str | None = None
    source_run_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    model_id: str | None = None  # the MLflow LoggedModel (None: pretrained or old-style)


def _champion_index(values: list[float], mode: str) -> int:
    """Position of the best monitored value (NaN never wins)."""
    sign = 1.0 if mode == "max" else -1.0
    return max(
        range(len(values)),
        key=lambda i: sign * values[i] if values[i] == values[i] else float("-inf"),
    )


def _register_fold(name: str, run_id: str, tags: dict[str, str]) -> ModelVersion:
    """A version from the fold's LoggedModel, or (fold runs logged by older versions, read
    until 2027-06-30, with a one-time warning) its bare checkpoint."""
    logged = run_logged_model(run_id)
    if logged is not None:
        return mlflow.register_model(logged.model_uri, name, tags=tags)
    warn_legacy(
        log,
        "register:bare-checkpoint",
        f"fold run {run_id} has no logged model: registering its bare {CHECKPOINT_DIR}/ "
        "folder, which only isic_tracking's load_model reads (retrain for a model MLflow can "
        "serve)",
    )
    source = f"{get_run(run_id).info.artifact_uri.rstrip('/')}/{CHECKPOINT_DIR}"
    return MlflowClient().create_model_version(name, source=source, run_id=run_id, tags=tags)


def register_checkpoints(
    name: str,
    fold_runs: list[tuple[str, dict[str, float]]],
    monitor: str,
    mode: str = "max",
    train_run_id: str | None = None,
    champion: int | None = None,
    why: str | None = None,
) -> list[ModelVersion]:
    """Register each fold's logged model as a version; alias ``champion`` on the best.

    Versions carry a markdown description (arch, task, fold, monitored metric, why it is or
    is not champion, training run, data digest) and a few tags (fold, training run, monitored
    metric and value, data digest); the fold's metrics live on its LoggedModel.

    Args:
        name: registered model name (created if needed).
        fold_runs: ``(fold_run_id, final metrics)`` per fold.
        monitor: metric key that picks the champion.
        mode: ``max`` or ``min`` for ``monitor``.
        train_run_id: the parent training run.
        champion: index into ``fold_runs`` of the champion, chosen by the caller's policy
            (:mod:`isic_tracking.train.champion`); None: the best ``monitor``.
        why: why it is champion (the policy's explanation), for its description.
    """
    if not fold_runs:
        return []
    client = MlflowClient()
    train = get_run(train_run_id) if train_run_id else None
    digest = train.data.tags.get(tag.dataset_digest(DATASET_CONTEXT), "") if train else ""
    arch = (param(train, "arch") if train else None) or ""
    task = (param(train, "task") if train else None) or ""
    init = {k: (param(train, f"init.{k}") if train else None) or "" for k in INIT_FIELDS}
    about = model_description(name, arch, task, monitor, mode)
    try:
        client.get_registered_model(name)
        client.update_registered_model(name, description=about)
    except MlflowException:
        client.create_registered_model(name, description=about)
    folds = [get_run(run_id).data.tags.get(tag.FOLD, "") for run_id, _ in fold_runs]
    values = [float(m.get(monitor, float("nan"))) for _, m in fold_runs]
    versions = []
    for (run_id, _), fold, value in zip(fold_runs, folds, values):
        tags = {
            tag.FOLD: fold,
            tag.TRAIN_RUN: train_run_id or "",
            tag.MONITOR: monitor,
            tag.MONITOR_VALUE: f"{value:.6g}",
            tag.dataset_digest(DATASET_CONTEXT): digest,
        }
        if init["kind"]:  # unknown for train runs logged before the init was recorded
            tags.update(
                {
                    tag.INIT_KIND: init["kind"],
                    tag.INIT_SOURCE: init["source"],
                    tag.INIT_SHA256: init["sha256"],
                }
            )
        versions.append(_register_fold(name, run_id, tags))
    best = _champion_index(values, mode) if champion is None else champion
    client.set_registered_model_alias(name, CHAMPION, versions[best].version)
    for i, ((run_id, _), mv) in enumerate(zip(fold_runs, versions)):
        text = version_description(
            arch=arch,
            task=task,
            fold=folds[i],
            monitor=monitor,
            mode=mode,
            value=values[i],
            champion=(versions[best].version, folds[best], values[best]) if i != best else None,
            n_folds=len(versions),
            train_run_id=train_run_id,
            fold_run_id=run_id,
            digest=digest,
            source=mv.source,
            why=why if i == best else None,
            init=init_line(init),
        )
        client.update_model_version(name, mv.version, description=text)
    return versions


def init_line(init: dict[str, str]) -> str:
    """The init of a train run's params (``init.kind`` ...) as one line ("unknown" for runs
    logged before the init was recorded)."""
    if not init.get("kind"):
        return "unknown (trained before the init was recorded)"
    sha = f" (sha256 `{init['sha256'][:12]}…`)" if init.get("sha256") else ""
    return f"{init['kind']}: `{init['source']}`{sha}"


def _registered_names() -> list[str]:
    return sorted(m.name for m in MlflowClient().search_registered_models(max_results=1000))


def _resolve_version(name: str, ref: str) -> ModelVersion:
    client = MlflowClient()
    try:
        model = client.get_registered_model(name)
    except MlflowException:
        names = _registered_names()
        raise IsicInputError(
            f"no registered model {name!r} on {mlflow.get_tracking_uri()}; registered models: "
            f"{', '.join(names) or '(none: run the train stage first)'}"
        ) from None
    versions = sorted(
        (int(v.version) for v in client.search_model_versions(f"name='{name}'")), reverse=True
    )
    aliases = sorted(getattr(model, "aliases", {}) or {})
    try:
        if ref.isdigit():
            return client.get_model_version(name, ref)
        return client.get_model_version_by_alias(name, ref)
    except MlflowException:
        raise IsicInputError(
            f"model {name!r} has no {'version' if ref.isdigit() else 'alias'} {ref!r}; "
            f"versions: {versions or 'none'}; aliases: {aliases or 'none'}"
        ) from None


def _pretrained(arch: str, device: torch.device, allow_random: bool, classes: int) -> nn.Module:
    try:
        return create_model(arch, classes, pretrained=True)
    except IsicInputError:
        if not allow_random:
            raise
        return create_model(arch, classes, pretrained=False)


def load_model(
    uri: str, device: str | torch.device = "cpu", allow_random: bool = False
) -> LoadedModel:
    """Rebuild a torch model from ``models:/name@alias``, ``models:/name/version``,
    ``models:/<logged model id>``, ``runs:/<run_id>/checkpoint`` (the fold run's logged model,
    or a ``checkpoint/`` folder of the run) or ``pretrained:<arch>`` (ImageNet base from the
    local cache). Reads only ``model.safetensors`` + ``config.json``: nothing is unpickled.

    Args:
        uri: where the model lives.
        device: where to put it (the model is returned in eval mode).
        allow_random: for ``pretrained:`` only: fall back to random init when no weights are
            cached (tests and demos without network).
    """
    device = torch.device(device)
    if uri.startswith("pretrained:"):
        return _pretrained_model(uri, device, allow_random)
    for pattern, resolve in _SCHEMES:
        if m := re.fullmatch(pattern, uri):
            return _materialize(resolve(m), uri, device)
    raise IsicInputError(
        f"cannot resolve model URI {uri!r}; use models:/<name>@<alias>, models:/<name>/<version>, "
        "models:/<logged model id>, runs:/<run_id>/checkpoint or pretrained:<arch>"
    )


@dataclass(frozen=True)
class _Source:
    """Where a model URI's checkpoint lives: a logged model, or a folder ``rel`` of a run."""

    run_id: str
    logged: LoggedModel | None
    rel: str = CHECKPOINT_DIR
    name: str | None = None
    version: str | None = None
    model_id: str | None = None


def _from_logged_id(m: re.Match) -> _Source:
    """``models:/m-<32 hex>``: a LoggedModel by id."""
    logged = _logged_model(m.group(1))
    return _Source(logged.source_run_id, logged, model_id=m.group(1))


def _from_registry(m: re.Match) -> _Source:
    """``models:/<name>@<alias>`` or ``models:/<name>/<version>``. A version registered by
    an older version (a bare checkpoint folder, no LoggedModel) loads until 2027-06-30, with a
    one-time warning."""
    name, alias, ver = m.groups()
    mv = _resolve_version(name, alias or ver)
    if not mv.source.startswith("models:/"):
        warn_legacy(
            log,
            "load:bare-checkpoint-version",
            f"{name} version {mv.version} is an old-style bare {CHECKPOINT_DIR}/ folder: it "
            "loads here, but mlflow.pyfunc and `mlflow models serve` need a version "
            "registered by a newer train run",
        )
        return _Source(mv.run_id, None, name=name, version=mv.version)
    model_id = mv.model_id or mv.source.removeprefix("models:/").strip("/")
    return _Source(mv.run_id, _logged_model(model_id), name=name, version=mv.version,
                   model_id=model_id)  # fmt: skip


def _from_run(m: re.Match) -> _Source:
    """``runs:/<run_id>[/<folder>]``: the fold run's logged model, or the folder the URI
    names when the run has both."""
    run_id, rel = m.group(1), (m.group(2) or CHECKPOINT_DIR).strip("/")
    get_run(run_id)
    logged = run_logged_model(run_id) if rel in (CHECKPOINT_DIR, MODEL_NAME) else None
    if logged is not None and _has_artifact(run_id, rel):
        logged = None  # a run with both: the folder the URI names
    return _Source(run_id, logged, rel, model_id=logged.model_id if logged else None)


#: URI pattern -> where its checkpoint lives; ``pretrained:`` is built, not downloaded
_SCHEMES: tuple[tuple[str, Callable[[re.Match], _Source]], ...] = (
    (r"models:/(m-[0-9a-f]{32})", _from_logged_id),
    (r"models:/([^/@]+)(?:@([^/]+)|/([^/]+))", _from_registry),
    (r"runs:/([0-9a-fA-F]+)(?:/(.+))?", _from_run),
)


def _materialize(src: _Source, uri: str, device: torch.device) -> LoadedModel:
    """Download ``src``'s checkpoint, rebuild the model and say where it came from."""
    with tempfile.TemporaryDirectory() as tmp:
        if src.logged is not None:
            local = download_checkpoint(src.logged, tmp)
        else:
            local = download_artifacts(src.run_id, src.rel, tmp)
        model, config = load_model_checkpoint(local, device)
    run = get_run(src.run_id)
    train_run_id = run.data.tags.get("mlflow.parentRunId", src.run_id)
    _complete_older_config(config, uri)
    tags = {
        tag.MODEL: uri, tag.MODEL_SOURCE_RUN: src.run_id, tag.MODEL_TRAIN_RUN: train_run_id,
        MODEL_TASK_TAG: str(config.get("task", "")),
    }  # fmt: skip
    if src.name:
        tags.update({tag.MODEL_NAME: src.name, tag.MODEL_VERSION: str(src.version)})
    if src.model_id:
        tags[tag.MODEL_ID] = src.model_id
    return LoadedModel(
        model, config, uri, src.name, src.version, train_run_id, src.run_id, tags, src.model_id
    )


def _complete_older_config(config: dict[str, Any], uri: str) -> None:
    """Checkpoints of older versions lack ``classes`` (the task's classes then) and ``mean`` /
    ``std`` (ImageNet's then): filled in, with a one-time warning; read until 2027-06-30."""
    missing = [k for k in ("classes", "mean", "std") if k not in config]
    if not missing:
        return
    warn_legacy(
        log,
        "load:older-checkpoint-config",
        f"{uri}: its checkpoint's config.json lacks {missing} (an older version's): the "
        "task's classes and ImageNet's mean/std are assumed; retrain to record them",
    )
    config.setdefault("classes", list(task_classes(config.get("task", "binary"))))
    config.setdefault("mean", list(IMAGENET_MEAN))
    config.setdefault("std", list(IMAGENET_STD))


def _pretrained_model(uri: str, device: torch.device, allow_random: bool) -> LoadedModel:
    """``pretrained:<arch>``: the ImageNet base from the local cache (1000 classes)."""
    arch = uri.split(":", 1)[1]
    model = _pretrained(arch, device, allow_random, 1000).to(device).eval()
    config = {
        "arch": arch,
        "num_outputs": 1000,
        "dropout": 0.0,
        "task": "imagenet",
        "classes": [str(i) for i in range(1000)],
        "image_size": 224,
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
    }
    return LoadedModel(
        model, config, uri, tags={tag.MODEL: uri, tag.MODEL_NAME: f"{arch}-imagenet"}
    )


def _logged_model(model_id: str) -> LoggedModel:
    try:
        return mlflow.get_logged_model(model_id)
    except MlflowException:
        raise IsicInputError(
            f"no logged model {model_id!r} on {mlflow.get_tracking_uri()} (deleted, or another "
            "tracking server?)"
        ) from None


def _has_artifact(run_id: str, path: str) -> bool:
    parent = path.rsplit("/", 1)[0] if "/" in path else None
    return any(f.path == path for f in MlflowClient().list_artifacts(run_id, parent))


def describe_version_test(name: str, version: str, section: str, run_id: str) -> None:
    """Put a test-set section (:func:`.descriptions.evaluation_section`) into a version's
    description, replacing an earlier one, and tag the version with the evaluate run."""
    client = MlflowClient()
    old = client.get_model_version(name, version).description
    client.update_model_version(name, version, description=with_evaluation_section(old, section))
    client.set_model_version_tag(name, version, tag.TEST_RUN, run_id)


#: The issue's name for :func:`load_model` (same function).
load_registered_model = load_model


def training_split(train_run_id: str) -> pd.DataFrame:
    """The fold of every image of a training run (``splits/folds.csv``: image_id, fold)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = download_artifacts(train_run_id, "splits/folds.csv", tmp)
        return pd.read_csv(path, dtype={"image_id": str})


def training_manifest(train_run_id: str) -> str:
    """The manifest path a training run read (its resolved ``manifest`` param)."""
    value = param(get_run(train_run_id), "manifest")
    if not value:
        raise IsicInputError(f"run {train_run_id} has no `manifest` param: not a train run")
    return value
