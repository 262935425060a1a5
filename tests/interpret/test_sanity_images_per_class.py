"""sanity adapts to a split with fewer images of a class than asked (the multiclass demo)."""

from __future__ import annotations

import pandas as pd
import pytest

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.inputs import images_per_class, sample_per_class


def table(counts: dict[str, int]) -> pd.DataFrame:
    return pd.DataFrame({"label_name": [c for c, n in counts.items() for _ in range(n)]})


def test_uses_the_smallest_class_when_it_has_fewer_than_asked() -> None:
    df = table({"MEL": 14, "NV": 20, "DF": 5, "AK": 7})
    n = images_per_class(df, 12, ["MEL", "NV", "DF", "AK"])
    assert n == 5
    sample = sample_per_class(df, n, ["MEL", "NV", "DF", "AK"])
    assert sample["label_name"].value_counts().to_dict() == {"MEL": 5, "NV": 5, "DF": 5, "AK": 5}


def test_keeps_the_asked_number_when_every_class_has_it() -> None:
    assert (
        images_per_class(table({"benign": 40, "malignant": 15}), 12, ["benign", "malignant"]) == 12
    )


def test_a_class_too_small_for_pairs_still_fails_clearly() -> None:
    df = table({"MEL": 10, "DF": 1})
    n = images_per_class(df, 12, ["MEL", "DF"])
    with pytest.raises(IsicInputError, match="class 'DF' has 1"):
        sample_per_class(df, n, ["MEL", "DF"])
