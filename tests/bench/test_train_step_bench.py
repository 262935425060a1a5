"""bench/train_step.py on a tiny model: every phase of a step measured, the two loops train
the same model (its weights move under both), and the report names both (no timed
assertions: only that the measurement is made and printed)."""

from __future__ import annotations

import pytest
import torch

from bench import train_step as bench
from isic_tracking.models import create_model
from isic_tracking.train.losses import make_criterion, make_optimizer


def test_both_loops_train_the_model_and_the_ratio_is_of_their_medians() -> None:
    torch.manual_seed(0)
    model = create_model("smallcnn", 1)
    crit = make_criterion("binary", [1, 1])
    opt = make_optimizer(model, lr=1e-2)
    batches = [(torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 0, 1])) for _ in range(2)]
    before = [p.detach().clone() for p in model.parameters()]
    bench.bare_epoch(model, batches, crit, opt, None)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    out = bench.overhead(model, batches, crit, opt, None, repeats=3)
    assert len(out["ratios"]) == 3 and out["bare_s"] > 0 and out["ours_s"] > 0
    assert min(out["ratios"]) <= round(out["ratio"], 3) <= max(out["ratios"])


def test_the_bench_prints_every_phase_and_the_ratio(capsys: pytest.CaptureFixture) -> None:
    bench.main(["--arch", "smallcnn", "--image-size", "32", "--batch-size", "2", "--steps",
                "2", "--batches", "1", "--repeats", "1", "--workers", "0"])  # fmt: skip
    out = capsys.readouterr().out
    for phase in (*bench.PHASES, "step"):
        assert f"| {phase} | " in out
    assert "bare / ours = " in out
