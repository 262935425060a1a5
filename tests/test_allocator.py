"""Freed tensor memory kept for reuse: counted as the page faults of repeated large
allocations, in fresh processes (``mallopt`` cannot be undone within one)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from entrypoints._common import run_main
from isic_tracking.allocator import GLIBC_VARIABLES, OPT_OUT, why_not_kept
from isic_tracking.errors import IsicInputError

ROOT = Path(__file__).resolve().parents[1]
glibc_only = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="mallopt is glibc's",
)

#: five forward passes of a small conv net on a batch: feature maps of 51 MiB each, mapped
#: and zeroed anew (about 75,000 fresh pages per pass) when the allocator unmaps them on free
PROBE = """
import json, resource, torch
def probe(argv=None):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(16, 16, 3, padding=1))
    x = torch.randn(16, 3, 224, 224)
    with torch.no_grad():
        net(x)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(5):
            net(x)
    print(json.dumps({"faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
    return 0
"""


def _faults(code: str, **env: str) -> int:
    clean = {k: v for k, v in os.environ.items() if k not in (*GLIBC_VARIABLES, OPT_OUT)}
    out = subprocess.run(
        [sys.executable, "-c", PROBE + code],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["faults"]


@glibc_only
def test_every_entry_point_keeps_freed_memory_for_the_next_batch() -> None:
    via_run_main = "from entrypoints._common import run_main\nrun_main(probe)"
    kept = _faults(via_run_main)
    unmapped = _faults(via_run_main, **{OPT_OUT: "0"})
    assert unmapped > 5 * 50_000  # every feature map mapped and zeroed anew
    assert kept < unmapped / 10


@glibc_only
def test_without_it_the_allocator_is_untouched() -> None:
    plain = _faults("probe()")
    assert plain > 5 * 50_000


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({OPT_OUT: "0"}, f"{OPT_OUT}=0"),
        ({OPT_OUT: "off"}, f"{OPT_OUT}=off"),
        ({"MALLOC_MMAP_THRESHOLD_": "65536"}, "MALLOC_MMAP_THRESHOLD_ is set"),
        ({"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"}, "another allocator is preloaded"),
    ],
)
@glibc_only
def test_a_users_own_choice_wins(env: dict[str, str], reason: str) -> None:
    assert why_not_kept(env) == reason


@glibc_only
def test_it_applies_by_default() -> None:
    assert why_not_kept({}) is None
    assert why_not_kept({OPT_OUT: "1"}) is None


def test_a_switch_that_is_no_yes_or_no_is_an_error_naming_it() -> None:
    with pytest.raises(IsicInputError, match=f"{OPT_OUT}='disable' is not a yes/no value"):
        why_not_kept({OPT_OUT: "disable"})


def test_an_entry_point_reports_a_bad_switch_as_one_error_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv(OPT_OUT, "disable")
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    assert run_main(lambda argv: 0, []) == 2
    assert capsys.readouterr().err.startswith(f"error: {OPT_OUT}='disable' is not a yes/no")
