"""Per-image rows kept across a pass over many images, in blocks allocated ahead.

A stage that keeps a few numbers per image while a model runs over thousands of them (pooled
activations, reduced feature maps, class scores) must not keep them as one small tensor per
batch. With freed memory kept by the allocator (:mod:`isic_tracking.allocator`), every large
tensor comes from glibc's heap, and a small tensor allocated between two batches' feature maps
sits inside the space they freed: the next batch's maps no longer fit there and the heap grows
again. A ResNet50 pass over 4,000 images at 224 px with every conv layer rose to 7 GB for
1.3 GB of tables (filters). Copied into a block allocated once, each batch's own tensors are
freed at once and the heap is reused. (In ``layers``, whose per-image rows are far smaller,
the same discipline left the peak where it was: one batch's feature maps set it there;
docs/benchmarks.md, "layers on VGG16, traced".)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor

#: rows per block when the loader does not say how many images it holds
BLOCK_ROWS = 1024


@dataclass
class RowBlocks:
    """The rows of one ``[N, ...]`` table, copied batch by batch into blocks of
    ``block_rows`` rows (one block when that is the number of images), on the CPU."""

    block_rows: int = BLOCK_ROWS
    blocks: list[Tensor] = field(default_factory=list)
    rows: int = 0  # rows written into the last block

    def add(self, value: Tensor) -> None:
        """Append ``value``'s rows (any dtype; the first call fixes the row shape)."""
        start = 0
        while start < len(value):
            if not self.blocks or self.rows == len(self.blocks[-1]):
                size = (max(self.block_rows, len(value) - start), *value.shape[1:])
                self.blocks.append(torch.empty(size, dtype=value.dtype))
                self.rows = 0
            block = self.blocks[-1]
            take = min(len(block) - self.rows, len(value) - start)
            block[self.rows : self.rows + take] = value[start : start + take]
            self.rows += take
            start += take

    def joined(self) -> Tensor | None:
        """The rows written, as one tensor (None when nothing was); the blocks are let go."""
        if not self.blocks:
            return None
        last = self.blocks[-1][: self.rows]
        if len(self.blocks) > 1:
            table = torch.cat([*self.blocks[:-1], last])
        else:
            table = last if self.rows == len(self.blocks[-1]) else last.clone()
        self.blocks, self.rows = [], 0
        return table


def expected_rows(loader: Iterable) -> int:
    """How many images ``loader`` holds, as its data set says (:data:`BLOCK_ROWS` otherwise):
    the block size that makes one block per table."""
    try:
        return max(1, len(loader.dataset))  # type: ignore[attr-defined]
    except (AttributeError, TypeError):
        return BLOCK_ROWS
