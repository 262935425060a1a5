"""Where the synthetic painter put the lesion and each artifact: one bit-packed mask per image.

``make_synthetic`` writes ``<layout>/masks/<image_id>.png``, a uint8 grayscale PNG of the
image's size whose bit ``k`` is set where concept ``MASK_CONCEPTS[k]`` was painted (bit 0 the
lesion, bits 1-6 the artifacts in the order of ``ARTIFACTS``). The masks are the painters' own
(see :mod:`.artifacts`, :func:`.painting.render_with_masks`), recorded as truth like the artifact
labels, so a dissection of filters (Bau et al. 2017) can be checked against where the concepts
are. :func:`load_masks` reads them with the geometry of the evaluation transform.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from isic_tracking.data.synthetic.artifacts import ARTIFACTS
from isic_tracking.errors import IsicInputError

if TYPE_CHECKING:  # torch is imported where masks are read, not when synth writes them
    from torch import Tensor

#: The concepts of a mask, bit ``k`` = ``MASK_CONCEPTS[k]``.
MASK_CONCEPTS: tuple[str, ...] = ("lesion", *ARTIFACTS)


def pack_masks(masks: Mapping[str, np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """uint8 ``shape`` image whose bit ``k`` is ``masks[MASK_CONCEPTS[k]]`` (absent: unset)."""
    unknown = sorted(set(masks) - set(MASK_CONCEPTS))
    if unknown:
        raise IsicInputError(f"unknown mask concepts {unknown}; known: {list(MASK_CONCEPTS)}")
    out = np.zeros(shape, dtype=np.uint8)
    for bit, name in enumerate(MASK_CONCEPTS):
        if name in masks:
            out |= np.asarray(masks[name], dtype=bool).astype(np.uint8) << bit
    return out


def unpack_masks(packed: np.ndarray) -> np.ndarray:
    """bool ``[len(MASK_CONCEPTS), H, W]`` from a packed ``[H, W]`` uint8 mask."""
    bits = np.arange(len(MASK_CONCEPTS), dtype=np.uint8)[:, None, None]
    return ((np.asarray(packed, dtype=np.uint8)[None] >> bits) & 1).astype(bool)


def write_mask(path: Path, masks: Mapping[str, np.ndarray], shape: tuple[int, int]) -> None:
    """One packed PNG (lossless: the bits survive)."""
    Image.fromarray(pack_masks(masks, shape), mode="L").save(path)


def load_masks(paths: Sequence[str], image_size: int) -> Tensor:
    """bool ``[N, len(MASK_CONCEPTS), image_size, image_size]``: each packed mask file resized
    (nearest) and centre-cropped like the evaluation transform resizes and crops its image, so
    mask pixels line up with the model's input.

    Raises:
        IsicInputError: naming the first missing or unreadable file.
    """
    import torch
    from torchvision.transforms import InterpolationMode, v2

    geometry = v2.Compose(
        [
            v2.Resize(image_size, interpolation=InterpolationMode.NEAREST),
            v2.CenterCrop(image_size),
        ]
    )
    out = torch.zeros((len(paths), len(MASK_CONCEPTS), image_size, image_size), dtype=torch.bool)
    for i, path in enumerate(paths):
        try:
            packed = np.asarray(Image.open(path), dtype=np.uint8)
        except (OSError, ValueError) as e:
            raise IsicInputError(
                f"mask {path!r} cannot be read ({e}); re-create the set with `synth`"
            ) from e
        bits = torch.from_numpy(unpack_masks(packed).astype(np.uint8))
        out[i] = geometry(bits).bool()
    return out
