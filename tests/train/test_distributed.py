"""torch.distributed helpers: a no-op in one process, real in a (one-rank) gloo group."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from isic_tracking.train.distributed import broadcast, init_distributed, is_distributed, rank


def test_single_process_needs_no_group(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert init_distributed(torch.device("cpu")) is False
    assert not is_distributed() and rank() == 0
    obj = {"parent": "run-1", "done": [0, 2]}
    assert broadcast(obj) is obj


def test_inside_a_gloo_group(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")  # loopback only
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'rendezvous'}", world_size=1, rank=0
    )
    try:
        assert is_distributed() and rank() == 0
        assert init_distributed(torch.device("cpu")) is True  # already joined
        assert broadcast({"parent": "run-1"}) == {"parent": "run-1"}
    finally:
        dist.destroy_process_group()
    assert not is_distributed()
