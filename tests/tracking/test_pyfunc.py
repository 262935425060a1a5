"""Registered versions are pickle-free pyfunc LoggedModels that MLflow's tools load, and the
project's loader reads the same model (real sqlite store, real torch models)."""

from __future__ import annotations

import base64
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient

from isic_tracking.data.dataset import decode_image_file
from isic_tracking.data.manifest import read_manifest
from isic_tracking.data.transforms import IMAGENET_MEAN, build_transforms
from isic_tracking.errors import IsicInputError
from isic_tracking.models import create_model
from isic_tracking.tracking import (
    load_registered_model,
    log_manifest_input,
    register_checkpoints,
    tag,
)
from isic_tracking.tracking.pyfunc import log_fold_model
from isic_tracking.train.checkpoint import load_model_checkpoint
from tests.helpers import checkpoint_run

# mlflow.pyfunc.load_model puts the model's code/ on sys.path
pytestmark = pytest.mark.usefixtures("pyfunc_code_path_kept")

ARCH = "timm:test_resnet"
NAME = "isic-binary-test"
CLASSES = ["benign", "malignant"]


@dataclass
class Registered:
    train_run_id: str
    fold_run_ids: list[str]
    digest: str
    manifest: pd.DataFrame


def _config(model: torch.nn.Module) -> dict:
    return dict(
        model.isic_config,
        task="binary",
        classes=CLASSES,
        image_size=48,
        mean=[0.485, 0.456, 0.406],
        std=[0.229, 0.224, 0.225],
    )


@pytest.fixture
def registered(mlflow_tracking: str, binary_manifest: Path) -> Registered:
    """A train run with two fold runs, each with a random-init model logged by
    :func:`log_fold_model`, registered as ``NAME`` (fold 1 has the better AUC)."""
    df = read_manifest(binary_manifest)
    folds = []
    with mlflow.start_run() as parent:
        mlflow.set_tags({tag.STAGE: "train"})
        mlflow.log_params({"arch": ARCH, "task": "binary"})
        digest = log_manifest_input(df, name="prepared-binary", context="training")
        for k, auc in enumerate([0.61, 0.74]):
            with mlflow.start_run(nested=True) as fold:
                mlflow.set_tags({tag.STAGE: "train-fold", tag.FOLD: str(k)})
                torch.manual_seed(k)
                model = create_model(ARCH, 1)
                final = {"best_val_roc_auc": auc, "best_val_loss": 0.6, "best_epoch": 0.0}
                log_fold_model(model, _config(model), final, step=0)
                folds.append((fold.info.run_id, final))
        register_checkpoints(NAME, folds, "best_val_roc_auc", "max", parent.info.run_id)
    return Registered(parent.info.run_id, [f for f, _ in folds], digest, df)


def _jpegs(df: pd.DataFrame, n: int = 5) -> tuple[list[str], list[bytes]]:
    paths = df["path"].head(n).tolist()
    return paths, [Path(p).read_bytes() for p in paths]


def _project_probabilities(uri: str, paths: list[str]) -> torch.Tensor:
    """P(malignant) from the project's loader and eval transforms (the training pipeline)."""
    loaded = load_registered_model(uri)
    cfg = loaded.config
    tf = build_transforms(cfg["image_size"], train=False, mean=cfg["mean"], std=cfg["std"])
    x = torch.stack([tf(decode_image_file(p)) for p in paths])
    with torch.no_grad():
        return torch.sigmoid(loaded.model(x).squeeze(1)).double()


def test_pyfunc_predict_equals_the_project_loader(registered: Registered) -> None:
    uri = f"models:/{NAME}@champion"
    paths, images = _jpegs(registered.manifest)
    out = mlflow.pyfunc.load_model(uri).predict(pd.DataFrame({"image": images}))
    assert list(out.columns) == ["label", *CLASSES] and len(out) == len(images)
    expected = _project_probabilities(uri, paths)
    assert torch.allclose(torch.tensor(out["malignant"].to_numpy()), expected, atol=1e-5)
    assert torch.allclose(torch.tensor(out["benign"].to_numpy()), 1 - expected, atol=1e-5)
    assert out["label"].tolist() == [CLASSES[int(p >= 0.5)] for p in out["malignant"]]
    # base64 text, as MLflow's REST server receives a binary column, gives the same numbers
    text = [base64.b64encode(b).decode("ascii") for b in images]
    again = mlflow.pyfunc.load_model(uri).predict(pd.DataFrame({"image": text}))
    pd.testing.assert_frame_equal(again, out, atol=1e-6)


def test_logged_models_carry_signature_metrics_and_dataset(registered: Registered) -> None:
    models = mlflow.search_logged_models(
        filter_string=f"source_run_id = '{registered.fold_run_ids[0]}'", output_format="list"
    ) + mlflow.search_logged_models(
        filter_string=f"source_run_id = '{registered.fold_run_ids[1]}'", output_format="list"
    )
    assert len(models) == 2  # one per fold
    for m, auc in zip(models, [0.61, 0.74]):
        linked = {x.key: x for x in m.metrics}
        assert linked["best_val_roc_auc"].value == pytest.approx(auc)
        assert linked["best_val_roc_auc"].dataset_digest == registered.digest
        assert m.tags[tag.TRAIN_RUN] == registered.train_run_id
        info = mlflow.models.get_model_info(m.model_uri)
        assert info.signature is not None
        assert info.signature.inputs.input_names() == ["image"]
        assert info.signature.outputs.input_names() == ["label", *CLASSES]
        conf = info.flavors["python_function"]
        assert conf["loader_module"] == "isic_tracking.serving" and "code" in conf
        reqs = Path(mlflow.artifacts.download_artifacts(f"{m.artifact_location}/requirements.txt"))
        pinned = dict(line.split("==") for line in reqs.read_text().split() if "==" in line)
        assert {"torch", "timm", "safetensors", "mlflow"} <= set(pinned)
    fold_run = MlflowClient().get_run(registered.fold_run_ids[0])
    assert [d.dataset.digest for d in fold_run.inputs.dataset_inputs] == [registered.digest]
    # the final metrics are logged once: to the run and the model together
    history = MlflowClient().get_metric_history(registered.fold_run_ids[0], "best_val_roc_auc")
    assert len(history) == 1
    # the registry alias resolves to a model_id source with a signature
    info = mlflow.models.get_model_info(f"models:/{NAME}@champion")
    assert info.signature is not None and info.model_id == models[1].model_id


def test_versions_have_descriptions_and_few_tags(registered: Registered) -> None:
    client = MlflowClient()
    champion = client.get_model_version_by_alias(NAME, "champion")
    other = client.get_model_version(NAME, "1")
    assert str(champion.version) == "2" and champion.source.startswith("models:/m-")
    for mv in (champion, other):
        assert set(mv.tags) == {
            tag.FOLD,
            tag.TRAIN_RUN,
            tag.MONITOR,
            tag.MONITOR_VALUE,
            tag.dataset_digest("training"),
        }
    assert champion.tags[tag.MONITOR_VALUE] == "0.74" and champion.tags[tag.FOLD] == "1"
    text = champion.description
    for part in (ARCH, "binary", "fold 1", "best_val_roc_auc", "0.7400", "Champion"):
        assert part in text
    assert registered.train_run_id in text and registered.digest in text
    assert "Not champion: version 2 (fold 1, " in other.description
    about = client.get_registered_model(NAME).description
    assert "mlflow models serve" in about and "one version per fold" in about


def test_project_loader_reads_the_logged_model_by_every_uri(registered: Registered) -> None:
    champion = load_registered_model(f"models:/{NAME}@champion")
    assert champion.model_id and champion.tags["model.model_id"] == champion.model_id
    assert champion.train_run_id == registered.train_run_id
    reference = create_model(ARCH, 1)  # named layers survive (hooks, feature visualization)
    assert [n for n, _ in champion.model.named_modules()] == [
        n for n, _ in reference.named_modules()
    ]
    state = champion.model.state_dict()
    for uri in (
        f"models:/{NAME}/2",
        f"models:/{champion.model_id}",
        f"runs:/{registered.fold_run_ids[1]}/checkpoint",
        f"runs:/{registered.fold_run_ids[1]}",
    ):
        other = load_registered_model(uri).model.state_dict()
        assert all(torch.equal(state[k], other[k]) for k in state), uri
    base = load_registered_model(f"pretrained:{ARCH}", allow_random=True)
    assert base.config["num_outputs"] == 1000 and base.model_id is None
    with pytest.raises(IsicInputError, match="no logged model"):
        load_registered_model("models:/m-" + "0" * 32)


def test_old_style_version_still_loads_with_a_one_line_hint(
    mlflow_tracking: str, caplog: pytest.LogCaptureFixture
) -> None:
    run_id = checkpoint_run()  # a fold run of before: a bare checkpoint/ folder, no MLmodel
    with caplog.at_level("WARNING", logger="isic_tracking"):
        (mv,) = register_checkpoints("old-style", [(run_id, {"m": 0.5})], "m")
    assert mv.source.endswith("/checkpoint") and "no logged model" in caplog.text
    assert "deprecated: read until 2027-06-30" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="isic_tracking"):
        loaded = load_registered_model("models:/old-style@champion")
        again = load_registered_model("models:/old-style@champion")
    assert loaded.model_id is None and loaded.config["arch"] == "resnet18"
    assert again.config == loaded.config
    hints = [r.getMessage() for r in caplog.records]  # once, not per load
    assert len(hints) == 1 and "\n" not in hints[0] and "old-style" in hints[0]
    assert "mlflow models serve" in hints[0] and hints[0].endswith("read until 2027-06-30)")
    assert load_registered_model(f"runs:/{run_id}/checkpoint").model_id is None


def test_an_older_checkpoint_config_is_completed_with_a_one_time_warning(
    mlflow_tracking: str, caplog: pytest.LogCaptureFixture
) -> None:
    run_id = checkpoint_run(without=("classes", "mean", "std"))  # as older versions saved
    with caplog.at_level("WARNING", logger="isic_tracking"):
        loaded = load_registered_model(f"runs:/{run_id}/checkpoint")
        load_registered_model(f"runs:/{run_id}/checkpoint")
    assert loaded.config["classes"] == ["benign", "malignant"]  # the binary task's
    assert loaded.config["mean"] == list(IMAGENET_MEAN)
    hints = [r.getMessage() for r in caplog.records]
    assert len(hints) == 1 and "lacks ['classes', 'mean', 'std']" in hints[0]
    assert hints[0].endswith("(deprecated: read until 2027-06-30)")
    caplog.clear()
    with caplog.at_level("WARNING", logger="isic_tracking"):
        load_registered_model(f"runs:/{checkpoint_run()}/checkpoint")  # a current one
    assert not caplog.records


class _Planted:
    """Unpickling this object creates ``sentinel``: proof that someone unpickled it."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return (Path.touch, (self.sentinel,))


def test_no_pickle_is_ever_loaded_on_the_pull_path(registered: Registered, tmp_path: Path) -> None:
    assert os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] == "false"
    sentinel = tmp_path / "unpickled"
    payload = pickle.dumps(_Planted(sentinel))
    pickle.loads(payload)  # the plant is live: unpickling it leaves the sentinel
    assert sentinel.exists()
    sentinel.unlink()

    uri = f"models:/{NAME}@champion"
    stored = Path(urlparse(mlflow.models.get_model_info(uri).artifact_path).path)  # file: URI
    assert (stored / "MLmodel").is_file()
    local = Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path / "pulled")))
    data = Path(stored / "data" / "checkpoint")
    for folder in (stored, data, local, local / "data" / "checkpoint"):
        for name in ("python_model.pkl", "model.pkl", "pytorch_model.bin", "model.pth"):
            (folder / name).write_bytes(payload)

    _, images = _jpegs(registered.manifest, 2)
    frame = pd.DataFrame({"image": images})
    mlflow.pyfunc.load_model(uri).predict(frame)  # from the store
    mlflow.pyfunc.load_model(str(local)).predict(frame)  # from the downloaded folder
    load_registered_model(uri)
    load_registered_model(f"runs:/{registered.fold_run_ids[1]}/checkpoint")
    load_model_checkpoint(local / "data" / "checkpoint")
    assert not sentinel.exists()
