"""Checkpoints: weights as safetensors + the JSON config that rebuilds the model.

Loading never unpickles code: weights go through safetensors, the config is JSON (the
resume state of an unfinished fold is :mod:`isic_tracking.train.resume`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model as _st_load_model
from safetensors.torch import save_model as _st_save_model
from torch import nn

from isic_tracking.errors import IsicInputError
from isic_tracking.models import create_model

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module under DDP / torch.compile wrappers."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def save_model_checkpoint(directory: str | Path, model: nn.Module, config: dict[str, Any]) -> Path:
    """Write ``model.safetensors`` and ``config.json`` (arch, num_outputs, classes, ...)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _st_save_model(unwrap(model), str(directory / WEIGHTS_FILE))
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True))
    return directory


def load_model_checkpoint(
    directory: str | Path, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the architecture from ``config.json`` and load the safetensors weights."""
    directory = Path(directory)
    cfg_path, w_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    if not cfg_path.is_file() or not w_path.is_file():
        raise IsicInputError(
            f"{directory} is not a model checkpoint: expected {CONFIG_FILE} and {WEIGHTS_FILE}"
        )
    config = json.loads(cfg_path.read_text())
    model = create_model(
        config["arch"], config["num_outputs"], pretrained=False, dropout=config.get("dropout", 0.1)
    )
    _st_load_model(model, str(w_path), device=str(device))
    return model.to(device).eval(), config
