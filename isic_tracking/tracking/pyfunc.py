"""Log a fold's best checkpoint as an MLflow 3 logged model: ``python_function``, no pickle.

The model is ``mlflow.pyfunc.log_model(name=..., loader_module="isic_tracking.serving",
data_path=<checkpoint/>)``: its ``MLmodel`` names our loader module, its data folder holds
``model.safetensors`` + ``config.json`` (nothing a loader would unpickle), the package source
travels along as ``code/isic_tracking`` so ``mlflow models serve`` works without installing
it, and the signature and input example say what :mod:`isic_tracking.serving` accepts.
MLflow links the LoggedModel to the fold run and copies that run's metrics of the best epoch
(``step``) to it; :func:`log_fold_model` then logs the fold's final metrics to both, with the
training data set, so the model's page lists them and the data they were measured on.
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import DatasetInput, InputTag, LoggedModel
from mlflow.models import Model, ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, DataType, Schema
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT, MLFLOW_PARENT_RUN_ID
from PIL import Image
from torch import nn

import isic_tracking
from isic_tracking import serving
from isic_tracking.errors import IsicInputError
from isic_tracking.tracking import tag
from isic_tracking.train.checkpoint import save_model_checkpoint

MODEL_NAME = "model"  # the LoggedModel's name (``runs:/<fold run>/model`` in MLflow's terms)
DATA_DIR = "checkpoint"  # the MLflow model keeps the checkpoint at data/checkpoint/
LOADER_MODULE = serving.__name__
DATASET_CONTEXT = "training"
REQUIREMENTS = (
    "mlflow",
    "torch",
    "torchvision",
    "timm",
    "safetensors",
    "pillow",
    "numpy",
    "pandas",
)


def signature(classes: Sequence[str]) -> ModelSignature:
    """Input: a binary ``image`` column; output: ``label`` and one probability per class."""
    outputs = [ColSpec(DataType.string, serving.LABEL_COLUMN)]
    outputs += [ColSpec(DataType.double, c) for c in serving.output_columns(classes)[1:]]
    return ModelSignature(Schema([ColSpec(DataType.binary, serving.IMAGE_COLUMN)]), Schema(outputs))


def example_jpeg(size: int = 32) -> bytes:
    """A small deterministic JPEG (a colour gradient): the logged input example."""
    ramp = np.linspace(0, 255, size, dtype=np.uint8)
    rgb = np.stack(
        [
            np.tile(ramp, (size, 1)),
            np.tile(ramp[:, None], (1, size)),
            255 - ramp[None].repeat(size, 0),
        ],
        -1,
    )
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def pip_requirements(names: Iterable[str] = REQUIREMENTS) -> list[str]:
    """The serving environment, pinned to what trained the model (local ``+cpu`` tags dropped)."""
    reqs = []
    for name in names:
        try:
            reqs.append(f"{name}=={version(name).split('+')[0]}")
        except PackageNotFoundError:
            reqs.append(name)
    return reqs


def _training_dataset(parent_id: str | None) -> Any:
    """The training data set entity logged on the fold's parent run, or None."""
    if not parent_id:
        return None
    for inp in MlflowClient().get_run(parent_id).inputs.dataset_inputs:
        if any(t.key == MLFLOW_DATASET_CONTEXT and t.value == DATASET_CONTEXT for t in inp.tags):
            return inp.dataset
    return None


def log_fold_model(
    model: nn.Module, config: dict[str, Any], metrics: Mapping[str, float], step: int = 0
) -> ModelInfo:
    """Log the active fold run's checkpoint as a pyfunc LoggedModel; returns its ModelInfo.

    Args:
        model: the fold's best weights (on CPU).
        config: the checkpoint config (arch, num_outputs, task, classes, image_size, mean, std).
        metrics: the fold's final metrics (``best_*``, ``test_*``), logged here to the run and
            the model at step 0, with the training data set (not logged before: MLflow would
            copy them to the model without the data set, and twice is a unique-key error).
        step: the best epoch; MLflow links the run's metrics of that step to the model.
    """
    run = MlflowClient().get_run(mlflow.active_run().info.run_id)
    run_id, parent_id = run.info.run_id, run.data.tags.get(MLFLOW_PARENT_RUN_ID)
    dataset = _training_dataset(parent_id)
    if dataset is not None:  # the fold run shows the data set it was trained on, too
        MlflowClient().log_inputs(
            run_id, [DatasetInput(dataset, [InputTag(MLFLOW_DATASET_CONTEXT, DATASET_CONTEXT)])]
        )
    fold = run.data.tags.get(tag.FOLD, "")
    # log_model loads the model back to check the input example, which puts its temporary
    # code/ folder on sys.path for good: keep sys.path as it was
    with tempfile.TemporaryDirectory() as tmp, sys_path_kept():
        data = save_model_checkpoint(Path(tmp) / DATA_DIR, model, config)
        info = mlflow.pyfunc.log_model(
            name=MODEL_NAME,
            loader_module=LOADER_MODULE,
            data_path=str(data),
            code_paths=[str(Path(isic_tracking.__file__).parent)],
            pip_requirements=pip_requirements(),
            signature=signature(config["classes"]),
            input_example=pd.DataFrame({serving.IMAGE_COLUMN: [example_jpeg()]}),
            step=step,
            tags={tag.FOLD: fold, tag.TRAIN_RUN: parent_id or run_id},
            model_type="image-classifier",
        )
    values = {k: float(v) for k, v in metrics.items()}
    mlflow.log_metrics(values, step=0, model_id=info.model_id, dataset=dataset)
    return info


@contextlib.contextmanager
def sys_path_kept() -> Iterator[None]:
    """``sys.path`` as it was before the block: MLflow's pyfunc loader adds each loaded
    model's ``code/`` folder (often a temporary one) and never takes it out."""
    before = list(sys.path)
    try:
        yield
    finally:
        sys.path[:] = before


def run_logged_model(run_id: str, name: str = MODEL_NAME) -> LoggedModel | None:
    """The newest LoggedModel called ``name`` that run ``run_id`` produced, if any."""
    experiment = MlflowClient().get_run(run_id).info.experiment_id
    models = mlflow.search_logged_models(
        experiment_ids=[experiment],
        filter_string=f"source_run_id = '{run_id}' AND name = '{name}'",
        order_by=[{"field_name": "creation_timestamp", "ascending": False}],
        max_results=1,
        output_format="list",
    )
    return models[0] if models else None


def download_checkpoint(model: LoggedModel, dst: str | Path) -> Path:
    """Download only the checkpoint folder (weights + config) of one of our logged models."""
    base = model.artifact_location.rstrip("/")
    mlmodel = Model.load(mlflow.artifacts.download_artifacts(f"{base}/MLmodel", dst_path=str(dst)))
    conf = mlmodel.flavors.get("python_function", {})
    if conf.get("loader_module") != LOADER_MODULE or "data" not in conf:
        raise IsicInputError(
            f"logged model {model.model_id} is not an isic_tracking model (loader_module "
            f"{conf.get('loader_module')!r}, expected {LOADER_MODULE!r}); load it with "
            "mlflow.pyfunc.load_model instead"
        )
    return Path(mlflow.artifacts.download_artifacts(f"{base}/{conf['data']}", dst_path=str(dst)))
