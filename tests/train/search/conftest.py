"""Fixtures of the search tests: one torch thread, a tiny prepared synthetic manifest."""

from __future__ import annotations

import pytest
import torch

from isic_tracking.data.prepare import prepare_dataset
from isic_tracking.data.synthetic import make_synthetic


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """2 shared cores: one torch thread per process avoids oversubscription (10x faster)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("search-data")
    make_synthetic(root / "raw", n_images=96, seed=0, image_size=32)
    return str(
        prepare_dataset(
            "synthetic", root / "raw", root / "prep", task="binary", image_size=32, workers=1
        ).manifest_path
    )
