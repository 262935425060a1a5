"""bench/colour_check.py on a tiny request: every set of pictures scored both ways (the
score itself is tested on planted inputs in tests/interpret/test_colour_check.py)."""

from __future__ import annotations

import re

from bench import colour_check as bench
from tests.helpers import checkpoint_run


def test_the_bench_scores_pictures_and_natural_images_both_ways(
    mlflow_tracking, binary_manifest, capsys
):
    argv = ["--model-uri", f"runs:/{checkpoint_run()}/checkpoint", "--manifest",
            str(binary_manifest), "--split", "all", "--size", "32", "--steps", "2",
            "--seeds", "0,1", "--threads", "1"]  # fmt: skip
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    rows = re.findall(r"^\| (.+?) \| (posterior|kl) \| (\d), (\d) of 2 \|", out, re.M)
    assert len(rows) == 8, out  # 4 sets of pictures x 2 scores
    assert {r[0] for r in rows} == {
        "`tuned`, imagenet colours",
        "`tuned`, data colours",
        "natural: lesion pixels",
        "natural: whole image",
    }
    assert "of split 'all'" in out and "32 px, 2 steps" in out
