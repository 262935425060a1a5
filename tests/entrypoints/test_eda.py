"""The ``eda`` entry point: one run with the metadata figures and the manifest as input."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from entrypoints.eda import main
from isic_tracking.data.eda import eda_figures
from isic_tracking.data.manifest import read_manifest
from isic_tracking.tracking import tag
from isic_tracking.tracking.runs import manifest_digest


def test_eda_logs_figures_and_the_manifest_input(
    mlflow_tracking: str, binary_manifest: Path
) -> None:
    """Every figure of the manifest under figures/, the manifest as the eda dataset input."""
    assert main(["--manifest", str(binary_manifest)]) == 0
    (run,) = mlflow.search_runs(output_format="list")
    assert run.info.status == "FINISHED" and run.info.run_name == "eda"
    assert run.data.tags[tag.STAGE] == "eda"
    assert run.data.params["manifest"] == str(binary_manifest)
    df = read_manifest(binary_manifest)
    expected = {f"figures/{name}.png" for name in eda_figures(df)}
    assert "figures/class_frequency.png" in expected
    arts = MlflowClient().list_artifacts(run.info.run_id, "figures")
    assert {a.path for a in arts} == expected
    assert all(a.file_size and a.file_size > 0 for a in arts)
    (ds_input,) = run.inputs.dataset_inputs
    assert ds_input.dataset.name == "manifest"
    assert ds_input.dataset.digest == manifest_digest(df)
    assert ds_input.dataset.source and str(binary_manifest) in ds_input.dataset.source
    assert {t.key: t.value for t in ds_input.tags}["mlflow.data.context"] == "eda"
    assert run.data.tags[tag.dataset_digest("eda")] == manifest_digest(df)


def test_eda_missing_manifest_is_an_input_error(
    mlflow_tracking: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A manifest that does not exist: exit code 2, a one-line error, no run."""
    assert main(["--manifest", str(tmp_path / "nope.csv")]) == 2
    assert "error: manifest" in capsys.readouterr().err
    assert mlflow.search_runs(output_format="list") == []


def test_eda_of_a_multiclass_manifest_goes_to_isic_multiclass(
    mlflow_tracking: str, multiclass_manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No experiment chosen: the manifest's task picks it (8 labels: isic-multiclass)."""
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID")
    assert main(["--manifest", str(multiclass_manifest)]) == 0
    exp = MlflowClient().get_experiment_by_name("isic-multiclass")
    (run,) = MlflowClient().search_runs([exp.experiment_id])
    assert run.data.tags[tag.STAGE] == "eda"
    assert run.data.tags["mlflow.note.content"].startswith("**eda** · `manifest=")
