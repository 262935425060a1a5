"""How many images per forward pass keep a batch's feature maps small enough to be reused.

Every stage keeps freed memory for the next batch (:mod:`isic_tracking.allocator`), but glibc
still hands back free memory above 2 GiB at the top of its heap. A VGG16 at 224 px makes
maps of 12.8 MB per image in its first block (64 x 224 x 224 floats): a batch of 64 is 822 MB
per map, the forward's heap peaks at 5.5 GB, several GB are given back after every batch and
faulted in again by the next (98 of 659 CPU s of ``layers`` on 448 images were system time).
A batch of 16 stays under the threshold: half the peak and 13 % less CPU time, with the same
results (docs/benchmarks.md, "layers on VGG16, traced"). A ResNet50 at 224 px (3.2 MB per
image at most) keeps its 64.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from isic_tracking.interpret.hooks import eval_mode

#: the largest single feature map of a batch, at most (bytes)
FEATURE_MAP_BUDGET = 256 * 2**20
#: the batch a stage uses when its maps are small
MAX_BATCH = 64


def largest_map_bytes(model: nn.Module, size: int, device: torch.device | str = "cpu") -> int:
    """Bytes of the largest output of any leaf module for one ``size`` x ``size`` image."""
    sizes: list[int] = []

    def note(_module: nn.Module, _inputs: object, out: object) -> None:
        if isinstance(out, Tensor):
            sizes.append(out.numel() * out.element_size())

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    handles = [m.register_forward_hook(note) for m in leaves]
    try:
        with torch.no_grad(), eval_mode(model):
            model(torch.zeros(1, 3, size, size, device=device))
    finally:
        for handle in handles:
            handle.remove()
    return max(sizes, default=0)


def fitted_batch(
    model: nn.Module,
    size: int,
    device: torch.device | str = "cpu",
    at_most: int = MAX_BATCH,
    budget: int = FEATURE_MAP_BUDGET,
) -> int:
    """The largest power of two, at most ``at_most``, whose batch keeps the model's largest
    feature map within ``budget`` bytes (1 when even one image does not)."""
    per_image = max(largest_map_bytes(model, size, device), 1)
    fits = max(1, min(at_most, budget // per_image))
    return 1 << (fits.bit_length() - 1)
