"""The thesis study's options and report file (the whole study runs in
tests/e2e/test_thesis_e2e.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from isic_tracking.errors import IsicInputError
from isic_tracking.profiles import PROFILES
from isic_tracking.tracking.thesis import ThesisOptions, report_path, write_report


def test_grid_is_task_major_with_the_profiles_archs() -> None:
    opts = ThesisOptions(profile="tiny")
    archs = PROFILES["tiny"]["thesis"]["archs"]
    assert opts.grid() == [(a, t) for t in ("binary", "multiclass") for a in archs]
    assert ThesisOptions(archs=("vgg16",), tasks=("multiclass",)).grid() == [
        ("vgg16", "multiclass")
    ]
    assert PROFILES["full"]["thesis"]["archs"] == ["alexnet", "vgg16", "resnet50"]


def test_bad_grid_is_an_error() -> None:
    with pytest.raises(IsicInputError, match="task"):
        ThesisOptions(tasks=("ternary",)).grid()
    with pytest.raises(IsicInputError, match="--tasks"):
        ThesisOptions(tasks=()).grid()


def test_report_goes_beside_the_sqlite_store(mlflow_tracking: str, tmp_path: Path) -> None:
    db = Path(mlflow_tracking.removeprefix("sqlite:///"))
    assert report_path(ThesisOptions(), "r1") == db.parent / "reports/thesis-r1/report.html"
    assert report_path(ThesisOptions(report_dir=str(tmp_path / "x")), "r1") == (
        tmp_path / "x/reports/thesis-r1/report.html"
    )


def test_write_report_replaces_whole(tmp_path: Path) -> None:
    path = tmp_path / "a" / "report.html"
    write_report("<p>one</p>", path)
    write_report("<p>two</p>", path)
    assert path.read_text() == "<p>two</p>"
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.html"]  # no temp left


def test_command_line_maps_onto_the_options() -> None:
    from entrypoints.thesis import build_parser

    args = build_parser().parse_args(["--archs", "smallcnn, vgg16", "--tasks", "binary"])
    opts = ThesisOptions(**vars(args))
    assert opts.grid() == [("smallcnn", "binary"), ("vgg16", "binary")]
    assert ThesisOptions(**vars(build_parser().parse_args([]))) == ThesisOptions()
