"""Rows kept in blocks allocated ahead: order, block boundaries, the block size."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, TensorDataset

from isic_tracking.interpret.row_blocks import BLOCK_ROWS, RowBlocks, expected_rows


def test_rows_come_back_in_order_across_block_boundaries():
    """A batch that straddles two blocks, a batch larger than a block and a short last block
    all come out as the concatenation of what was added, in any dtype and row shape."""
    chunks = [torch.arange(12).reshape(3, 2, 2), torch.arange(12, 36).reshape(6, 2, 2)]
    for block_rows in (1, 2, 4, 5, 9, 100):
        table = RowBlocks(block_rows)
        for chunk in chunks:
            table.add(chunk)
        assert torch.equal(table.joined(), torch.cat(chunks))
        assert table.joined() is None and table.blocks == []  # let go once joined


def test_one_block_when_the_size_is_known():
    """With the image count as the block size, every batch lands in one block allocated at
    the first batch: no tensor per batch stays alive."""
    table = RowBlocks(10)
    for _ in range(5):
        table.add(torch.ones(2, 3))
    assert len(table.blocks) == 1 and table.blocks[0].shape == (10, 3)
    block = table.blocks[0]
    assert table.joined().data_ptr() == block.data_ptr()  # the full block itself, not a copy


def test_the_block_is_the_loaders_image_count():
    data = TensorDataset(torch.rand(10, 3, 8, 8))
    assert expected_rows(DataLoader(data, batch_size=4)) == 10
    assert expected_rows(iter([torch.rand(2, 3, 8, 8)])) == BLOCK_ROWS
