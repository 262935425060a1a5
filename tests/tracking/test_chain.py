"""tracking/chain.py: what ``main`` passes on reaches the chain, and every profile has the
settings of every stage the chain runs (the chain itself runs in tests/e2e)."""

from __future__ import annotations

import dataclasses

import pytest

from entrypoints.main import build_parser
from isic_tracking.profiles import PROFILES
from isic_tracking.tracking.chain import ChainOptions

STAGES = ("main", "synth", "prepare", "search", "train", "filters", "visualize", "sanity")


def test_main_options_are_the_chain_options_with_the_same_defaults() -> None:
    parsed = vars(build_parser().parse_args([]))
    assert parsed == dataclasses.asdict(ChainOptions())
    opts = ChainOptions(
        **vars(build_parser().parse_args(["--task", "multiclass", "--force", "true"]))
    )
    assert opts.task == "multiclass" and opts.force is True


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_profile_sets_every_stage_and_an_arch(profile: str) -> None:
    prof = PROFILES[profile]
    assert set(STAGES) <= set(prof), f"{profile} lacks {set(STAGES) - set(prof)}"
    assert prof["main"]["arch"]
