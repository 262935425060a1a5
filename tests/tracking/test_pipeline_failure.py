"""A failed stage ends the pipeline with one line naming the stage, its run and its error."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from entrypoints._common import run_main
from isic_tracking.errors import IsicInputError
from isic_tracking.tracking import tag
from isic_tracking.tracking.pipeline import Pipeline, StageFailed

ROOT = Path(__file__).resolve().parents[2]
FAILING = (
    "from entrypoints._common import run_main\n"
    "from isic_tracking.errors import IsicInputError\n"
    "def bad(argv):\n"
    "    raise IsicInputError('too few natural images in split val0: class DF has 3')\n"
    "raise SystemExit(run_main(bad))\n"
)


def _project(tmp_path: Path) -> Path:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "fail.py").write_text(FAILING)
    (proj / "MLproject").write_text(
        "name: failing\nentry_points:\n  sanity:\n    command: python fail.py\n"
    )
    return proj


def test_failed_stage_raises_one_line_with_stage_run_and_error(
    mlflow_tracking: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    exp = os.environ["MLFLOW_EXPERIMENT_ID"]
    with mlflow.start_run() as parent:
        pipe = Pipeline(str(_project(tmp_path)), exp, parent.info.run_id, None)
        with pytest.raises(StageFailed) as info:
            pipe.run("sanity", {})
    run_id = pipe.stages["sanity"][0]
    message = str(info.value)
    assert "\n" not in message
    assert message == (
        f"stage 'sanity' failed (run {run_id}): "
        "too few natural images in split val0: class DF has 3"
    )
    assert isinstance(info.value, IsicInputError)  # run_main prints it as one `error:` line
    assert MlflowClient().get_run(run_id).info.status == "FAILED"


def test_run_main_records_the_error_on_the_stage_run(
    mlflow_tracking: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    run = MlflowClient().create_run(os.environ["MLFLOW_EXPERIMENT_ID"])
    monkeypatch.setenv("MLFLOW_RUN_ID", run.info.run_id)

    def bad(argv):
        raise IsicInputError("n_images=0 must be >= 2")

    assert run_main(bad, []) == 2
    assert capsys.readouterr().err == "error: n_images=0 must be >= 2\n"

    def crash(argv):
        with mlflow.start_run():  # ending the run unsets MLFLOW_RUN_ID, as in every stage
            raise ZeroDivisionError("division by zero")

    with pytest.raises(ZeroDivisionError):
        run_main(crash, [])
    tags = MlflowClient().get_run(run.info.run_id).data.tags
    assert tags[tag.ERROR] == "ZeroDivisionError: division by zero"
