"""The `synth` stage: the shortcut flags reach the generator and its rates are logged."""

from __future__ import annotations

import json
import re
from pathlib import Path

import mlflow
import pytest

from entrypoints.synth import main

SMALL = ["--n_images", "16", "--image_size", "32", "--seed", "2"]


def _run():
    (run,) = mlflow.search_runs(output_format="list")
    return run


def test_shortcut_flags_plant_and_log_the_rates(mlflow_tracking: str, tmp_path: Path):
    out = tmp_path / "raw"
    argv = ["--out", str(out), *SMALL, "--shortcut_artifact", "fluid", "--shortcut_rate", "0.5"]
    assert main(argv) == 0
    run = _run()
    assert run.data.params["shortcut_artifact"] == "fluid"
    assert float(run.data.params["shortcut_rate"]) == 0.5
    for layout in ("isic2020", "isic2019", "isic2016"):
        planted = json.loads((out / layout / "synthetic_shortcut.json").read_text())
        assert planted["artifact"] == "fluid" and planted["n_benign_with_artifact"] == 0
        metrics = run.data.metrics
        assert metrics[f"shortcut_{layout}/malignant_rate"] == planted["malignant_rate"]
        assert metrics[f"shortcut_{layout}/benign_rate"] == 0.0
        assert abs(planted["malignant_rate"] - 0.5) <= 0.5 / planted["n_malignant"]


def test_default_run_plants_nothing(mlflow_tracking: str, tmp_path: Path):
    assert main(["--out", str(tmp_path / "raw"), *SMALL]) == 0
    run = _run()
    assert run.data.params["shortcut_artifact"] == "none"
    assert not [k for k in run.data.metrics if k.startswith("shortcut_")]
    assert not list((tmp_path / "raw").rglob("*.json"))


@pytest.mark.parametrize(
    "flags, match",
    [
        (["--shortcut_artifact", "mole"], "invalid choice: 'mole'"),
        (["--shortcut_rate", "1.5"], r"--shortcut_rate: 1.5 is not a fraction in \[0, 1\]"),
    ],
)
def test_bad_shortcut_flags_name_the_flag(tmp_path: Path, capsys, flags, match):
    with pytest.raises(SystemExit) as e:
        main(["--out", str(tmp_path / "raw"), *flags])
    assert e.value.code == 2
    assert re.search(match, capsys.readouterr().err)
