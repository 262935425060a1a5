"""The thesis study's options and report file (the whole study runs in
tests/e2e/test_thesis_e2e.py)."""

from __future__ import annotations

import pytest

from isic_tracking.errors import IsicInputError
from isic_tracking.profiles import PROFILES
from isic_tracking.tracking.thesis import ThesisOptions


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


def test_command_line_maps_onto_the_options() -> None:
    from entrypoints.thesis import build_parser

    args = build_parser().parse_args(["--archs", "smallcnn, vgg16", "--tasks", "binary"])
    opts = ThesisOptions(**vars(args))
    assert opts.grid() == [("smallcnn", "binary"), ("vgg16", "binary")]
    assert ThesisOptions(**vars(build_parser().parse_args([]))) == ThesisOptions()
