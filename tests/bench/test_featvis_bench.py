"""bench/featvis.py's measurement: activation tracked per step the same way for every engine,
time to an activation, and the whole bench on a tiny request (no timed assertions)."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from bench import featvis as bench
from bench.featvis_track import Tracker
from isic_tracking.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from isic_tracking.interpret.featvis import channel, evaluate, render
from isic_tracking.interpret.featvis.dreams import render_torch_dreams
from tests.interpret.featvis.conftest import make_tiny_cnn


def _lucent_installed() -> bool:
    try:
        from bench.featvis_lucent import import_lucent

        import_lucent()
        return True
    except SystemExit:
        return False


def _score(model, obj):
    return partial(evaluate, model, obj, mean=IMAGENET_MEAN, std=IMAGENET_STD)


def test_tracker_snapshots_our_render_and_times_an_activation():
    model, obj = make_tiny_cnn(), channel("6", [0, 1])
    tracker = Tracker(steps=6, every=2)
    tracker.begin()
    res = render(model, obj, size=32, steps=6, on_step=tracker, mean=IMAGENET_MEAN,
                 std=IMAGENET_STD)  # fmt: skip
    curve = tracker.curve(_score(model, obj))
    assert list(curve) == [2, 4, 6] and len(tracker.runs) == 1
    assert curve[6] == pytest.approx(float(res.activation.mean()), abs=1e-5)
    costs = [tracker.cost(s)[0] for s in (2, 4, 6)]
    assert costs == sorted(costs) and tracker.total()[0] == costs[-1]
    assert tracker.time_to(curve, curve[6]) <= costs[-1]
    assert tracker.time_to(curve, curve[6] + 1e3) is None


def test_tracker_sums_the_runs_of_an_engine_that_renders_one_channel_at_a_time():
    model, obj = make_tiny_cnn(), channel("6", [0, 1])
    tracker = Tracker(steps=4, every=2)
    tracker.begin()
    res = render_torch_dreams(model, "6", [0, 1], size=32, steps=4, on_step=tracker)
    assert len(tracker.runs) == 2 and all(sorted(r) == [2, 4] for r in tracker.runs)
    last = torch.cat([run[4][2] for run in tracker.runs])
    assert torch.equal(last, res.images)  # the last snapshot of each run is its final image
    cpu = tracker.cost(4)[0]
    assert cpu == pytest.approx(sum(r[4][0] - s[0] for r, s in zip(tracker.runs, tracker.starts)))
    assert tracker.curve(_score(model, obj))[4] == pytest.approx(
        float(evaluate(model, obj, res.images, IMAGENET_MEAN, IMAGENET_STD).mean())
    )


def test_the_bench_runs_every_engine_and_prints_the_tables(capsys):
    engines = "isic,isic_fp32,torch_dreams" + (",lucent" if _lucent_installed() else "")
    argv = ["--arch", "smallcnn", "--weights", "random", "--size", "32", "--steps", "4",
            "--channels", "2", "--repeats", "1", "--threads", "1", "--track-every", "2",
            "--engines", engines]  # fmt: skip
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    for name in engines.split(","):
        assert f"| {name} |" in out and f"{name}: 2:" in out
    assert "CPU s to torch_dreams's" in out
    assert "| isic | 4 |" in out and "| torch_dreams | 4 |" in out  # the steps column


def test_our_engine_may_run_longer_to_reach_an_anchor(capsys):
    """--isic-steps: our engines run that many steps, the anchors --steps."""
    argv = ["--arch", "smallcnn", "--weights", "random", "--size", "32", "--steps", "2",
            "--isic-steps", "4", "--channels", "1", "--repeats", "1", "--threads", "1",
            "--track-every", "2", "--engines", "isic,torch_dreams"]  # fmt: skip
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    assert "| isic | 4 |" in out and "| torch_dreams | 2 |" in out
    assert "isic: 2:" in out and ", 4:" in out.split("isic: ", 1)[1].split("\n")[0]
    assert "2 steps (ours 4)" in out
    with pytest.raises(SystemExit):
        bench.main([*argv[:-1], "isic,nope"])


@pytest.mark.skipif(not _lucent_installed(), reason="lucent not set up (bench/featvis_lucent.py)")
def test_lucent_renders_the_same_request_with_frozen_weights():
    from bench.featvis_lucent import render_lucent

    model = make_tiny_cnn()
    tracker = Tracker(steps=4, every=2)
    tracker.begin()
    images = render_lucent(model, "6", [0, 1], size=32, steps=4, on_step=tracker)
    assert images.shape == (2, 3, 32, 32) and 0 <= images.min() and images.max() <= 1
    assert sorted(tracker.runs[0]) == [2, 4] and torch.equal(tracker.runs[0][4][2], images)
    assert all(p.requires_grad and p.grad is None for p in model.parameters())
