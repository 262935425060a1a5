"""The pickle-free ``python_function`` loader module of every registered isic_tracking model.

Each fold's checkpoint is logged as an MLflow model whose ``MLmodel`` names this module as
``loader_module`` and whose data folder holds ``model.safetensors`` + ``config.json``.
``mlflow.pyfunc.load_model`` and ``mlflow models serve`` call :func:`_load_pyfunc`, which
rebuilds the architecture from the config and reads the weights with safetensors: nothing
is unpickled. This module does not import mlflow (only ``isic_tracking.tracking`` does).

Predict contract (also the model's signature):

- input: a DataFrame with one column ``image``, one encoded JPEG or PNG file per row
  (``bytes``; base64 strings are accepted too, which is how MLflow's REST server receives
  binary columns: ``{"dataframe_split": {"columns": ["image"], "data": [["<base64>"]]}}``).
- the model decodes, resizes, centre-crops and normalizes each image itself, with the eval
  transform and the ``image_size``/``mean``/``std`` of its ``config.json``;
- output: a DataFrame with one row per image: ``label`` (the predicted class name) and one
  column per class name holding its probability (binary: ``P(malignant)`` from the sigmoid,
  ``benign = 1 - P(malignant)``, label at ``P >= 0.5``; multiclass: softmax, label = argmax).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from isic_tracking.data.dataset import decode_image_bytes
from isic_tracking.data.manifest import task_classes
from isic_tracking.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms
from isic_tracking.errors import IsicInputError
from isic_tracking.train.checkpoint import load_model_checkpoint

IMAGE_COLUMN = "image"
LABEL_COLUMN = "label"


def output_columns(classes: Sequence[str]) -> list[str]:
    """Columns of :meth:`ImageClassifier.predict`: ``label`` then one per class."""
    if LABEL_COLUMN in classes:
        raise IsicInputError(f"a class may not be named {LABEL_COLUMN!r}: classes {classes}")
    return [LABEL_COLUMN, *classes]


def class_probabilities(logits: Tensor, task: str) -> Tensor:
    """``[N, C]`` float64 probabilities: binary ``[1 - p, p]`` with ``p = sigmoid``, else
    softmax (in float64 so that each row sums to 1 to the last digit the output shows)."""
    if task == "binary":
        p = torch.sigmoid(logits.reshape(-1).double())
        return torch.stack([1 - p, p], dim=1)
    return torch.softmax(logits.double(), dim=1)


def predicted_index(probs: Tensor, task: str) -> Tensor:
    """Hard labels as in training: ``P(malignant) >= 0.5`` (binary), argmax (multiclass)."""
    if task == "binary":
        return (probs[:, 1] >= 0.5).long()
    return probs.argmax(dim=1)


def _as_bytes(value: Any, row: int) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.ndim == 1:
        return value.tobytes()
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=False)
        except (binascii.Error, ValueError) as err:
            raise IsicInputError(
                f"row {row} of column {IMAGE_COLUMN!r}: bad base64 ({err})"
            ) from err
    raise IsicInputError(
        f"row {row} of column {IMAGE_COLUMN!r} is a {type(value).__name__}; send the encoded "
        "JPEG/PNG file as bytes (or base64 text over REST)"
    )


def decode_column(values: Sequence[Any]) -> list[Tensor]:
    """uint8 ``[3, H, W]`` tensors from a column of encoded images (bytes or base64 text)."""
    images = []
    for row, value in enumerate(values):
        try:
            images.append(decode_image_bytes(_as_bytes(value, row)))
        except (OSError, ValueError, SyntaxError) as err:
            raise IsicInputError(
                f"row {row} of column {IMAGE_COLUMN!r} is not a readable JPEG/PNG file: {err}"
            ) from err
    return images


def _image_column(model_input: Any) -> Sequence[Any]:
    if isinstance(model_input, pd.DataFrame):
        if IMAGE_COLUMN not in model_input.columns:
            raise IsicInputError(
                f"input has columns {list(model_input.columns)}; expected a column "
                f"{IMAGE_COLUMN!r} of encoded JPEG/PNG files"
            )
        return model_input[IMAGE_COLUMN].tolist()
    if isinstance(model_input, dict) and IMAGE_COLUMN in model_input:
        return list(model_input[IMAGE_COLUMN])
    if isinstance(model_input, (list, tuple)):
        return list(model_input)
    raise IsicInputError(
        f"cannot read images from a {type(model_input).__name__}; pass a DataFrame with a "
        f"column {IMAGE_COLUMN!r} of encoded JPEG/PNG files"
    )


class ImageClassifier:
    """A trained classifier behind MLflow's pyfunc ``predict``, fed with encoded images.

    Args:
        model: the torch model (eval mode).
        config: its checkpoint config (``task``, ``classes``, ``image_size``, ``mean``, ``std``).
        batch_size (int, default 32): images per forward pass.
    """

    def __init__(self, model: nn.Module, config: dict[str, Any], batch_size: int = 32) -> None:
        self.model = model.eval()
        self.config = config
        self.task = config.get("task", "binary")
        self.classes = [str(c) for c in config.get("classes") or task_classes(self.task)]
        self.columns = output_columns(self.classes)
        self.batch_size = batch_size
        self.transform = build_transforms(
            int(config["image_size"]),
            train=False,
            mean=config.get("mean", IMAGENET_MEAN),
            std=config.get("std", IMAGENET_STD),
        )

    def probabilities(self, images: Sequence[Tensor]) -> Tensor:
        """``[N, C]`` class probabilities of decoded uint8 ``[3, H, W]`` images."""
        device = next(self.model.parameters()).device
        out = []
        with torch.inference_mode():
            for i in range(0, len(images), self.batch_size):
                x = torch.stack([self.transform(im) for im in images[i : i + self.batch_size]])
                out.append(class_probabilities(self.model(x.to(device)), self.task).cpu())
        return torch.cat(out) if out else torch.zeros(0, len(self.classes), dtype=torch.float64)

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """One row per input image: ``label`` and the probability of each class."""
        probs = self.probabilities(decode_column(_image_column(model_input)))
        labels = [self.classes[i] for i in predicted_index(probs, self.task).tolist()]
        table = pd.DataFrame(probs.numpy(), columns=self.classes)
        table.insert(0, LABEL_COLUMN, labels)
        return table


def _load_pyfunc(data_path: str) -> ImageClassifier:
    """MLflow's entry point: rebuild the model from ``data_path`` (safetensors + config.json)."""
    model, config = load_model_checkpoint(Path(data_path), "cpu")
    return ImageClassifier(model, config)
