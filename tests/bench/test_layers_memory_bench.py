"""bench/layers_memory.py on a tiny model: every phase timed, the heap read at every batch of
every pass (one pass of both models, then a reset and a re-randomization pass per layer), and
the stage's functions restored after (no timed assertions)."""

from __future__ import annotations

import re

import pytest

import isic_tracking.stages.layers.compute as compute
from bench import layers_memory as bench


def test_every_phase_and_every_batch_of_every_pass_is_reported(
    capsys: pytest.CaptureFixture,
) -> None:
    originals = {name: getattr(compute, name) for name in bench.PHASES}
    bench.main(["--arch", "smallcnn", "--images", "20", "--batch_size", "8",
                "--image_size", "32", "--layers", "first,last"])  # fmt: skip
    out = capsys.readouterr().out
    for phase in ("one_pass", "swap_scores", "probe", "drop"):
        assert re.search(rf"^\| {phase} \| [\d.]+ \|", out, re.M)
    passes = re.findall(r"^pass \d+: \[([\d, ]+)\]$", out, re.M)
    assert len(passes) == 1 + 2 * 2  # both models once, then reset + re-randomize per layer
    for heap in passes:  # 3 batches of 20 images and the end; the maximum never falls
        sizes = [int(v) for v in heap.split(",")]
        assert len(sizes) == 4 and sizes == sorted(sizes) and sizes[0] > 0
    assert {name: getattr(compute, name) for name in bench.PHASES} == originals
