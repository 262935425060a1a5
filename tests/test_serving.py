"""The pyfunc loader module on its own: no MLflow, a real checkpoint folder, real images."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from isic_tracking import serving
from isic_tracking.data.transforms import build_transforms
from isic_tracking.errors import IsicInputError
from isic_tracking.models import create_model
from isic_tracking.train.checkpoint import save_model_checkpoint

CLASSES = ["MEL", "NV", "BCC"]


def _encoded(fmt: str, seed: int, size: tuple[int, int] = (40, 56)) -> tuple[bytes, np.ndarray]:
    rgb = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt)
    return buf.getvalue(), rgb


@pytest.fixture
def multiclass_dir(tmp_path):
    torch.manual_seed(0)
    model = create_model("timm:test_resnet", len(CLASSES))
    cfg = dict(model.isic_config, task="multiclass", classes=CLASSES, image_size=32)
    cfg.update(mean=[0.5, 0.4, 0.3], std=[0.2, 0.3, 0.25])
    return save_model_checkpoint(tmp_path / "checkpoint", model, cfg), model.eval(), cfg


def test_multiclass_softmax_from_png_bytes(multiclass_dir) -> None:
    path, model, cfg = multiclass_dir
    clf = serving._load_pyfunc(str(path))
    pngs = [_encoded("PNG", s) for s in range(3)]
    out = clf.predict(pd.DataFrame({"image": [b for b, _ in pngs]}))
    assert list(out.columns) == ["label", *CLASSES]
    tf = build_transforms(32, train=False, mean=cfg["mean"], std=cfg["std"])
    x = torch.stack([tf(torch.from_numpy(rgb).permute(2, 0, 1)) for _, rgb in pngs])
    with torch.no_grad():
        expected = torch.softmax(model(x), dim=1).double()
    assert torch.allclose(torch.tensor(out[CLASSES].to_numpy()), expected, atol=1e-5)
    assert out["label"].tolist() == [CLASSES[i] for i in expected.argmax(1).tolist()]
    assert np.allclose(out[CLASSES].sum(axis=1), 1.0)


def test_bad_inputs_name_the_row_and_what_to_send(multiclass_dir) -> None:
    clf = serving._load_pyfunc(str(multiclass_dir[0]))
    good, _ = _encoded("JPEG", 1)
    with pytest.raises(IsicInputError, match="row 1 of column 'image' is not a readable"):
        clf.predict(pd.DataFrame({"image": [good, b"not an image"]}))
    with pytest.raises(IsicInputError, match="row 0 .* is a int"):
        clf.predict(pd.DataFrame({"image": [3]}))
    with pytest.raises(IsicInputError, match="expected a column 'image'"):
        clf.predict(pd.DataFrame({"pixels": [good]}))
    with pytest.raises(IsicInputError, match="may not be named 'label'"):
        serving.output_columns(["label", "x"])


def test_loader_module_does_not_import_mlflow() -> None:
    code = "import sys, isic_tracking.serving; print('mlflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
