"""Fixtures of the data tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.data.synthetic.helpers import make_shared_set


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic set (N = 240 images, seed 0, 64 px), built once for the data tests."""
    return make_shared_set(tmp_path_factory.mktemp("synth"))
