"""The init of a model on the MLflow side: fetch the weights of a ``models:/`` init once, and
load the base a fine-tuned model started from (:func:`isic_tracking.models.init.initial_model`)
for every before/after comparison."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import TypeVar

import torch
from safetensors.torch import save_file

from isic_tracking.config import FitSettings, is_model_uri
from isic_tracking.log import get_logger
from isic_tracking.models.init import Init, describe_init, init_from_record, initial_model
from isic_tracking.tracking import tag
from isic_tracking.tracking.registry import LoadedModel, load_model

log = get_logger(__name__)

S = TypeVar("S", bound=FitSettings)


def fetch_model_weights(uri: str, directory: str | Path) -> Path:
    """The weights of one of our models (``models:/...``) as a safetensors file under
    ``directory``, named after its version (fetched once; the same weights give the same
    file, so its sha256 identifies them)."""
    loaded = load_model(uri)
    key = loaded.model_id or (
        f"{loaded.name}-v{loaded.version}" if loaded.name else f"run-{loaded.source_run_id}"
    )
    path = Path(directory) / f"{key}.safetensors"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.contiguous() for k, v in loaded.model.state_dict().items()}
        tmp = path.with_suffix(".partial")
        save_file(state, str(tmp))
        tmp.replace(path)
    return path


def with_init_file(cfg: S, directory: str | Path) -> S:
    """``cfg`` with ``init_file`` set when its init is a model URI (fetched into
    ``directory``); unchanged otherwise."""
    requested = cfg.init_request()
    if not is_model_uri(requested):
        return cfg
    path = fetch_model_weights(requested, directory)
    log.info(f"init: {requested} -> {path}")
    return dataclasses.replace(cfg, init_file=str(path))


def init_of(cfg: FitSettings) -> Init:
    """The init record of a (resolved) config."""
    return describe_init(cfg.arch, cfg.init_request(), cfg.seed, cfg.init_file)


def load_base(loaded: LoadedModel, device: str | torch.device = "cpu") -> LoadedModel:
    """The model ``loaded`` was fine-tuned from, as a :class:`LoadedModel` with the same
    config and the base's description in ``tags["model.base"]``."""
    init = init_from_record(loaded.config.get("init"))
    with tempfile.TemporaryDirectory() as tmp:
        weights = None
        if init is not None and init.kind == "model":
            weights = str(fetch_model_weights(init.source, tmp))
        model = initial_model(loaded.config, weights).to(device)
    about = init.describe() if init else "unknown"
    tags = {tag.MODEL: f"base of {loaded.uri}", tag.MODEL_BASE: about}
    return LoadedModel(model, dict(loaded.config), f"base:{loaded.uri}", tags=tags)
