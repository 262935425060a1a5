"""Decoded once: the same tensors as the evaluation loader, every later pass without decoding."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from isic_tracking.data.dataset import ManifestDataset, make_loader
from isic_tracking.data.decoded import DecodedImages
from isic_tracking.data.manifest import read_manifest
from isic_tracking.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms


@pytest.fixture
def rows(binary_manifest: Path):
    return read_manifest(binary_manifest).head(21)


@pytest.fixture
def reads(monkeypatch) -> dict[int, int]:
    counts: dict[int, int] = {}
    real = ManifestDataset.__getitem__

    def counted(self, index):
        counts[index] = counts.get(index, 0) + 1
        return real(self, index)

    monkeypatch.setattr(ManifestDataset, "__getitem__", counted)
    return counts


def _reference(rows, size, mean, std):
    loader = make_loader(rows, build_transforms(size, train=False, mean=mean, std=std), 8)
    return torch.cat([x for x, _ in loader])


@pytest.mark.parametrize("mean,std", [(IMAGENET_MEAN, IMAGENET_STD), (None, None)])
def test_every_pass_gives_the_evaluation_loaders_images_and_decodes_once(rows, reads, mean, std):
    expected = _reference(rows, 40, mean, std)
    reads.clear()
    with DecodedImages(rows, 40, mean, std, batch_size=8) as images:
        assert len(images) == 3
        for _ in range(3):
            batches = list(images)
            x = torch.cat([b[0] for b in batches])
            torch.testing.assert_close(x, expected, atol=1e-5, rtol=1e-5)
            assert torch.cat([b[2] for b in batches]).tolist() == list(range(len(rows)))
            assert torch.cat([b[1] for b in batches]).tolist() == rows["label"].tolist()
        x5, y5, i5 = images.dataset[5]
        torch.testing.assert_close(x5, expected[5], atol=1e-5, rtol=1e-5)
        assert (y5, i5) == (int(rows["label"].iloc[5]), 5)
    assert sorted(reads) == list(range(len(rows)))
    assert set(reads.values()) == {1}


def test_random_access_before_any_pass_decodes_everything_once(rows, reads):
    with DecodedImages(rows, 32, batch_size=4) as images:
        first = images.dataset[20][0]
        again = images.dataset[20][0]
        list(images)
        torch.testing.assert_close(first, again)
    assert set(reads.values()) == {1} and len(reads) == len(rows)


def test_an_unfinished_first_pass_is_done_again_whole(rows, reads):
    with DecodedImages(rows, 32, batch_size=4) as images:
        next(iter(images))  # a consumer that stops early
        x = torch.cat([b[0] for b in images])
        torch.testing.assert_close(x, _reference(rows, 32, IMAGENET_MEAN, IMAGENET_STD))


def test_the_scratch_file_is_deleted_on_close(rows, tmp_path):
    with DecodedImages(rows, 32, batch_size=8, scratch=tmp_path) as images:
        list(images)
        assert images.path.stat().st_size == len(rows) * 3 * 32 * 32
        folder = images.path.parent
    assert not folder.exists() and list(tmp_path.iterdir()) == []
