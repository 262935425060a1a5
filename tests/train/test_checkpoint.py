"""Model checkpoints: safetensors weights + config.json rebuild the same model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from isic_tracking.errors import IsicInputError
from isic_tracking.models import create_model
from isic_tracking.train.checkpoint import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    load_model_checkpoint,
    save_model_checkpoint,
    unwrap,
)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return create_model("timm:test_resnet", 3, pretrained=False, dropout=0.2)


def test_round_trip_predicts_the_same(tmp_path: Path) -> None:
    model = _model().eval()
    config = {**model.isic_config, "classes": ["a", "b", "c"], "image_size": 32}
    save_model_checkpoint(tmp_path / "ckpt", model, config)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]
    loaded, back = load_model_checkpoint(tmp_path / "ckpt")
    assert back == json.loads(json.dumps(config))
    assert not loaded.training
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_wrapped_model_is_saved_as_the_plain_one(tmp_path: Path) -> None:
    model = _model()
    wrapped = nn.DataParallel(model)  # a ``.module`` wrapper, like DDP
    assert unwrap(wrapped) is model and unwrap(model) is model
    save_model_checkpoint(tmp_path / "ckpt", wrapped, model.isic_config)
    loaded, _ = load_model_checkpoint(tmp_path / "ckpt")
    assert set(loaded.state_dict()) == set(model.state_dict())


def test_not_a_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text("{}")
    with pytest.raises(IsicInputError, match="is not a model checkpoint"):
        load_model_checkpoint(tmp_path)
