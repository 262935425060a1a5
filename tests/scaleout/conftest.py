"""Every search test runs on one torch thread, on the tiny search manifest."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """The shared one-thread fixture, for every module here."""


@pytest.fixture(scope="session")
def manifest(search_manifest: str) -> str:
    return search_manifest
