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


def test_per_task_takes_one_value_or_task_pairs() -> None:
    from isic_tracking.tracking.thesis import per_task

    assert per_task("isic2019", "binary") == per_task("isic2019", "multiclass") == "isic2019"
    spec = "binary=isic2020, multiclass=isic2019"
    assert (per_task(spec, "binary"), per_task(spec, "multiclass")) == ("isic2020", "isic2019")
    assert per_task("binary=/data/isic2019", "multiclass") is None
    assert per_task(None, "binary") is None and per_task("", "binary") is None
    assert per_task("/data/a=b", "binary") == "/data/a=b"  # no task name: one value
    with pytest.raises(IsicInputError, match="not task=value"):
        per_task("binary=isic2020,ternary=x", "binary")


def test_the_study_of_the_thesis_reaches_each_main_run() -> None:
    """Binary on ISIC 2020 + 2019 MEL tested on ISIC 2016, multiclass on ISIC 2019 with its
    held-out split; each architecture its own init."""
    from entrypoints.thesis import build_parser
    from isic_tracking.tracking.thesis import _main_params

    argv = ["--archs", "alexnet,vgg16", "--dataset", "binary=isic2020,multiclass=isic2019",
            "--root", "binary=/d/isic2020,multiclass=/d/isic2019",
            "--extra_malignant", "binary=/d/isic2019", "--test_dataset", "binary=isic2016-test",
            "--test_root", "binary=/d/isic2016", "--test_fraction", "0.2",
            "--init", "alexnet=models:/isic-pretrain-alexnet/1,vgg16=imagenet",
            "--profile", "full"]  # fmt: skip
    opts = ThesisOptions(**vars(build_parser().parse_args(argv)))
    grid = opts.grid()
    params = {(a, t): _main_params(opts, a, t) for a, t in grid}
    binary, multi = params["alexnet", "binary"], params["vgg16", "multiclass"]
    assert (binary["dataset"], binary["root"]) == ("isic2020", "/d/isic2020")
    assert binary["extra_malignant"] == "/d/isic2019"
    assert (binary["test_dataset"], binary["test_root"]) == ("isic2016-test", "/d/isic2016")
    assert (multi["dataset"], multi["root"]) == ("isic2019", "/d/isic2019")
    assert "extra_malignant" not in multi and multi["test_dataset"] == multi["test_root"] == ""
    assert {p["test_fraction"] for p in params.values()} == {"0.2"}
    assert binary["init"] == "models:/isic-pretrain-alexnet/1"
    assert params["vgg16", "binary"]["init"] == "imagenet" == multi["init"]
    # every parameter is one of main's (MLproject) or passed on as main's --flag
    from entrypoints.main import build_parser as main_parser

    flags = {a.dest for a in main_parser()._actions}
    assert all(set(p) <= flags for p in params.values())


def test_defaults_keep_todays_chain_and_a_task_without_a_dataset_is_an_error() -> None:
    from isic_tracking.tracking.thesis import _main_params

    params = _main_params(ThesisOptions(), "smallcnn", "multiclass")
    assert (params["dataset"], params["root"], params["init"]) == ("synthetic", "", "")
    assert params["test_dataset"] == params["test_fraction"] == ""  # the profile's fraction
    assert _main_params(ThesisOptions(weights="/w/x.pth"), "alexnet", "binary")["init"] == (
        "/w/x.pth"
    )
    assert _main_params(ThesisOptions(init="vgg16=imagenet"), "alexnet", "binary")["init"] == (
        "random"  # as main resolves an arch without a pair
    )
    with pytest.raises(IsicInputError, match="multiclass=<dataset>"):
        ThesisOptions(dataset="binary=isic2020").grid()
    with pytest.raises(IsicInputError, match="not task=value"):
        ThesisOptions(root="binary=/a,multi=/b").grid()
