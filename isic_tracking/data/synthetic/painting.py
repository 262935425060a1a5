"""One synthetic dermoscopy image: skin, a lesion of the given class, noise and an artifact."""

from __future__ import annotations

import numpy as np

from isic_tracking.data.synthetic.artifacts import ARTIFACT_FNS
from isic_tracking.data.synthetic.geometry import canvas, interp
from isic_tracking.data.synthetic.lesions import LESIONS

#: Skin colours (RGB in [0, 1]); each patient (ISIC 2020) or image keeps one.
SKIN_TONES = np.array(
    [
        [0.89, 0.71, 0.63],
        [0.85, 0.63, 0.55],
        [0.80, 0.58, 0.48],
        [0.93, 0.78, 0.71],
        [0.74, 0.53, 0.43],
    ],
    dtype=np.float32,
)


def render_image(
    rng: np.random.Generator,
    kind: str,
    height: int,
    width: int,
    tone: np.ndarray | None = None,
    artifact: str = "none",
) -> np.ndarray:
    """One synthetic dermoscopy image as uint8 (height, width, 3); see :func:`render_with_masks`."""
    return render_with_masks(rng, kind, height, width, tone, artifact)[0]


def render_with_masks(
    rng: np.random.Generator,
    kind: str,
    height: int,
    width: int,
    tone: np.ndarray | None = None,
    artifact: str = "none",
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One synthetic dermoscopy image as uint8 (height, width, 3) and where its concepts are.

    The masks are the painters' own: ``"lesion"`` where the lesion's alpha is above one half,
    and the artifact's name (when one is painted) where its painter drew. Drawing them takes no
    random number, so the image is the one :func:`render_image` paints from the same generator.

    Args:
        rng: the image's own generator (all randomness comes from it).
        kind: an ISIC 2019 class (``MULTICLASS_CLASSES``); binary sets use NV (benign) and MEL
            (malignant).
        height, width: size in pixels.
        tone: skin colour (RGB in [0, 1]); drawn from a palette when None.
        artifact: "none" or one of ``ARTIFACTS``.

    Returns:
        ``(image, {concept: bool [height, width]})``.
    """
    c = canvas(height, width)
    if tone is None:
        tone = SKIN_TONES[rng.integers(len(SKIN_TONES))]
    low = rng.normal(0, 0.035, (6, 6, 3)).astype(np.float32)
    smooth = np.tensordot(interp(height, 6), low, axes=(1, 0))  # (h, 6, 3)
    smooth = np.tensordot(interp(width, 6), smooth, axes=(1, 1)).transpose(1, 0, 2)  # (h, w, 3)
    skin = np.asarray(tone, np.float32) + smooth
    cx, cy = rng.normal(0, 0.08, 2)
    colour, alpha = LESIONS[kind](rng, c, cx, cy)
    a = alpha[..., None]
    img = skin + a * (colour - skin)
    img += 0.018 * rng.standard_normal((height, width, 1), dtype=np.float32)  # sensor noise
    masks = {"lesion": alpha > 0.5}
    if artifact != "none":
        img, masks[artifact] = ARTIFACT_FNS[artifact](rng, c, img)
    img = np.clip(img * 255 + 0.5, 0, 255, out=img)
    return img.astype(np.uint8), masks
