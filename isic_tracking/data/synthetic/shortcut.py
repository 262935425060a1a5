"""The planted shortcut: one artifact made to co-occur with malignancy at a chosen rate.

Real dermoscopy sets have such confounders (rulers are more common on lesions a clinician
worried about). With ``Shortcut("ruler", 0.9)`` exactly ``round(0.9 * m)`` of the ``m``
malignant images of each layout (class MEL; in ISIC 2019 the binary readers' malignant class)
carry a ruler and no benign image does; every other image keeps the artifact the normal
assignment gave it (a benign image that would have had a ruler gets none, a malignant image
picked for the ruler loses its other artifact). A model trained on such a set can score well
by detecting rulers: the filter analyses should then find a ruler-selective filter, and
without the shortcut (the control: same seed, same ids, labels and lesions) none.

The choice of images comes from its own generator (``[seed, layout, SHORTCUT_STREAM]``), so
the rest of the plan and every lesion are identical with and without the shortcut; only the
artifacts differ. The result is in ``synthetic_truth.csv`` (the ``artifact`` of each image)
and summarized per layout in ``synthetic_shortcut.json``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from isic_tracking.data.synthetic.artifacts import ARTIFACTS
from isic_tracking.errors import IsicInputError

#: The lesion kind that counts as malignant (binary layouts draw MEL vs NV).
MALIGNANT_KIND = "MEL"
#: Third seed word of the shortcut's generator; the image generators use 1 + image key.
SHORTCUT_STREAM = 2**32 - 1


def _check_rate(rate: float) -> float:
    if not 0.0 <= float(rate) <= 1.0:
        raise IsicInputError(f"shortcut_rate={rate}: use a fraction in [0, 1]")
    return float(rate)


@dataclass(frozen=True)
class Shortcut:
    """Plant ``artifact`` on a ``rate`` fraction of the malignant images, on no benign one."""

    artifact: str
    rate: float

    def __post_init__(self) -> None:
        if self.artifact not in ARTIFACTS:
            raise IsicInputError(
                f"shortcut_artifact={self.artifact!r}: choose one of {list(ARTIFACTS)} or none"
            )
        _check_rate(self.rate)


def shortcut_from_options(artifact: str | None, rate: float) -> Shortcut | None:
    """The shortcut of the ``shortcut_artifact`` / ``shortcut_rate`` options; None when off.

    ``artifact`` None, "" or "none" turns it off (``rate`` is then only checked).
    """
    rate = _check_rate(rate)
    if artifact is None or str(artifact).lower() in ("", "none"):
        return None
    return Shortcut(str(artifact), rate)


def plant_shortcut(
    images: pd.DataFrame, shortcut: Shortcut, rng: np.random.Generator
) -> pd.DataFrame:
    """``images`` (a layout plan: kind, artifact, copy_of) with the shortcut planted.

    Byte copies (``copy_of`` set, the listed ISIC 2020 duplicates) take their original's new
    artifact, so a copy still equals its original.
    """
    images = images.copy()
    original = images["copy_of"].isna().to_numpy()
    artifact = images["artifact"].to_numpy(dtype=object).copy()
    malignant = np.flatnonzero(original & (images["kind"] == MALIGNANT_KIND).to_numpy())
    k = int(np.floor(shortcut.rate * len(malignant) + 0.5))
    chosen = np.zeros(len(images), dtype=bool)
    chosen[rng.choice(malignant, size=k, replace=False)] = True
    artifact[original & (artifact == shortcut.artifact)] = "none"
    artifact[chosen] = shortcut.artifact
    images["artifact"] = artifact
    by_id = dict(zip(images.loc[original, "image_id"], artifact[original]))
    copies = ~original
    images.loc[copies, "artifact"] = images.loc[copies, "copy_of"].map(by_id)
    return images


def shortcut_summary(images: pd.DataFrame, shortcut: Shortcut) -> dict[str, float | int | str]:
    """What was planted, counted over the unique images of a layout plan."""
    unique = images[images["copy_of"].isna()]
    malignant = unique["kind"] == MALIGNANT_KIND
    carries = unique["artifact"] == shortcut.artifact
    n_mal, n_ben = int(malignant.sum()), int((~malignant).sum())
    k_mal, k_ben = int((carries & malignant).sum()), int((carries & ~malignant).sum())
    return {
        "artifact": shortcut.artifact,
        "rate": float(shortcut.rate),
        "n_malignant": n_mal,
        "n_malignant_with_artifact": k_mal,
        "n_benign": n_ben,
        "n_benign_with_artifact": k_ben,
        "malignant_rate": k_mal / n_mal if n_mal else 0.0,
        "benign_rate": k_ben / n_ben if n_ben else 0.0,
    }
