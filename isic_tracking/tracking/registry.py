"""Model Registry: register fold checkpoints, set the ``champion`` alias, pull models safely.

A registered version points at a fold run's ``checkpoint/`` artifact (safetensors weights +
config.json); :func:`load_model` rebuilds the architecture from the config, so pulling a
model never unpickles code.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from typing import Any

import mlflow
import pandas as pd
import torch
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from torch import nn

from isic_tracking.data.manifest import task_classes
from isic_tracking.errors import IsicInputError
from isic_tracking.models import create_model
from isic_tracking.tracking import tag
from isic_tracking.tracking.runs import download_artifacts, get_run, param
from isic_tracking.train.checkpoint import load_model_checkpoint

CHECKPOINT_DIR = "checkpoint"
CHAMPION = "champion"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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


def register_checkpoints(
    name: str,
    fold_runs: list[tuple[str, dict[str, float]]],
    monitor: str,
    mode: str = "max",
    train_run_id: str | None = None,
    champion: int | None = None,
    description: str | None = None,
) -> list[ModelVersion]:
    """Register each fold run's checkpoint as a version; alias ``champion`` on the best.

    Args:
        name: registered model name (created if needed).
        fold_runs: ``(fold_run_id, final metrics)`` per fold; the metrics become version tags.
        monitor: metric key that picks the champion.
        mode: ``max`` or ``min`` for ``monitor``.
        train_run_id: the parent training run, stored as a version tag.
        champion: index into ``fold_runs`` of the champion (chosen by the caller's policy);
            None: the best ``monitor``.
        description: the champion version's description (why it is champion).
    """
    client = MlflowClient()
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(
            name, description="isic_tracking k-fold training; one version per fold"
        )
    versions = []
    for run_id, metrics in fold_runs:
        run = get_run(run_id)
        source = f"{run.info.artifact_uri.rstrip('/')}/{CHECKPOINT_DIR}"
        tags = {k: f"{v:.6g}" for k, v in metrics.items()}
        tags.update({"fold": run.data.tags.get(tag.FOLD, ""), "train_run_id": train_run_id or ""})
        versions.append(client.create_model_version(name, source=source, run_id=run_id, tags=tags))

    def key(pair: tuple[ModelVersion, tuple[str, dict[str, float]]]) -> float:
        v = pair[1][1].get(monitor, float("nan"))
        v = float("-inf") if v != v else v
        return v if mode == "max" else -v

    if versions:
        if champion is None:
            best = max(zip(versions, fold_runs), key=key)[0]
        else:
            best = versions[champion]
        client.set_registered_model_alias(name, CHAMPION, best.version)
        if description:
            client.update_model_version(name, best.version, description=description)
    return versions


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
    ``runs:/<run_id>/<path>`` or ``pretrained:<arch>`` (ImageNet base from the local cache).

    Args:
        uri: where the model lives.
        device: where to put it (the model is returned in eval mode).
        allow_random: for ``pretrained:`` only: fall back to random init when no weights are
            cached (tests and demos without network).
    """
    device = torch.device(device)
    if uri.startswith("pretrained:"):
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
            model, config, uri, tags={"model.uri": uri, "model.name": f"{arch}-imagenet"}
        )
    name = version = None
    if m := re.fullmatch(r"models:/([^/@]+)(?:@([^/]+)|/([^/]+))", uri):
        name, alias, ver = m.groups()
        mv = _resolve_version(name, alias or ver)
        version, run_id = mv.version, mv.run_id
        rel = CHECKPOINT_DIR
    elif m := re.fullmatch(r"runs:/([0-9a-fA-F]+)(?:/(.+))?", uri):
        run_id, rel = m.group(1), (m.group(2) or CHECKPOINT_DIR).strip("/")
        get_run(run_id)
    else:
        raise IsicInputError(
            f"cannot resolve model URI {uri!r}; use models:/<name>@<alias>, models:/<name>/<version>, "
            "runs:/<run_id>/checkpoint or pretrained:<arch>"
        )
    with tempfile.TemporaryDirectory() as tmp:
        local = download_artifacts(run_id, rel, tmp)
        model, config = load_model_checkpoint(local, device)
    run = get_run(run_id)
    train_run_id = run.data.tags.get("mlflow.parentRunId", run_id)
    config.setdefault("classes", list(task_classes(config.get("task", "binary"))))
    config.setdefault("mean", list(IMAGENET_MEAN))
    config.setdefault("std", list(IMAGENET_STD))
    tags = {"model.uri": uri, "model.source_run_id": run_id, "model.train_run_id": train_run_id}
    if name:
        tags.update({"model.name": name, "model.version": str(version)})
    return LoadedModel(model, config, uri, name, version, train_run_id, run_id, tags)


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
