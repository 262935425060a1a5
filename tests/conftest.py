"""Shared fixtures: a real, temporary MLflow tracking store (sqlite + local artifacts)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import mlflow
import pytest

from tests.guard import leaks, snapshot

os.environ.setdefault("CI", "true")  # quiet progress bars
os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")


@pytest.fixture(autouse=True)
def _no_state_left_behind():
    """Fail the test that leaves a stub module, a ``sys.path`` entry, another working
    directory or a changed torch global behind (see :mod:`tests.guard`)."""
    before = snapshot()
    yield
    found = leaks(before)
    if found:
        pytest.fail("this test leaves process-wide state behind:\n" + "\n".join(found))


@pytest.fixture(autouse=True)
def _legacy_warnings_forgotten():
    """Each test sees the one-time warnings about old formats afresh."""
    from isic_tracking.deprecation import forget_warnings

    forget_warnings()


@pytest.fixture
def pyfunc_code_path_kept():
    """For tests that call ``mlflow.pyfunc.load_model``: MLflow puts each loaded model's
    ``code/`` folder on ``sys.path`` by design and never removes it; restore ``sys.path``."""
    from isic_tracking.tracking.pyfunc import sys_path_kept

    with sys_path_kept():
        yield


@pytest.fixture(scope="session")
def _mlflow_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, fully migrated MLflow sqlite database, made once (migrations take seconds)."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def mlflow_tracking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _mlflow_db_template: Path
) -> str:
    """A fresh sqlite tracking + registry store with artifacts under tmp_path; yields its URI."""
    db = tmp_path / "mlflow.db"
    shutil.copyfile(_mlflow_db_template, db)
    uri = f"sqlite:///{db}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    exp = mlflow.create_experiment("tests", artifact_location=(tmp_path / "artifacts").as_uri())
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", exp)
    mlflow.set_experiment(experiment_id=exp)
    yield uri
    while mlflow.active_run():
        mlflow.end_run()


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic data set in the official layouts, built once per test session."""
    from isic_tracking.data.synthetic import make_synthetic

    root = tmp_path_factory.mktemp("synthetic") / "raw"
    make_synthetic(root, n_images=96, seed=0, image_size=64)
    return root


@pytest.fixture(scope="session")
def binary_manifest(synthetic_root: Path) -> Path:
    """Prepared (cached) binary manifest of :func:`synthetic_root`; images at 64 px."""
    from isic_tracking.data.prepare import prepare_dataset

    out = synthetic_root.parent / "prepared-binary"
    return prepare_dataset(
        "synthetic", synthetic_root, out, task="binary", image_size=64
    ).manifest_path


@pytest.fixture(scope="session")
def multiclass_manifest(synthetic_root: Path) -> Path:
    """Prepared (cached) 8-class manifest of :func:`synthetic_root`."""
    from isic_tracking.data.prepare import prepare_dataset

    out = synthetic_root.parent / "prepared-multiclass"
    return prepare_dataset(
        "synthetic", synthetic_root, out, task="multiclass", image_size=64
    ).manifest_path


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's tests (2 shared cores: oversubscription is 10x slower)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def planted_sanity(binary_manifest: Path, one_torch_thread: None) -> tuple:
    """Planted inputs of the sanity verdicts: a random-init smallcnn, 12 natural images per
    class (the reference) and 6 held-out ones per class (natural "pictures"), at 64 px:
    ``(model, natural, natural classes, held-out, held-out classes)``."""
    import pandas as pd
    import torch

    from isic_tracking.data.manifest import read_manifest
    from isic_tracking.interpret.inputs import load_images
    from isic_tracking.models import create_model

    size = 64
    torch.manual_seed(0)
    model = create_model("smallcnn", 1).eval()
    df = read_manifest(binary_manifest)
    natural = pd.concat([p.sample(12, random_state=0) for _, p in df.groupby("label_name")])
    rest = df.drop(natural.index)
    held = pd.concat([p.sample(6, random_state=1) for _, p in rest.groupby("label_name")])
    cls = lambda d: torch.tensor(d["label"].to_numpy(dtype="int64"))  # noqa: E731
    return model, load_images(natural, size), cls(natural), load_images(held, size), cls(held)


@pytest.fixture(scope="session")
def search_manifest(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny prepared binary manifest for the search tests: 96 images at 32 px."""
    from isic_tracking.data.prepare import prepare_dataset
    from isic_tracking.data.synthetic import make_synthetic

    root = tmp_path_factory.mktemp("search-data")
    make_synthetic(root / "raw", n_images=96, seed=0, image_size=32)
    prepared = prepare_dataset(
        "synthetic", root / "raw", root / "prep", task="binary", image_size=32, workers=1
    )
    return str(prepared.manifest_path)
