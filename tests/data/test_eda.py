from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from isic_tracking.data.eda import eda_figures
from isic_tracking.data.manifest import MULTICLASS_CLASSES, normalize_manifest


def binary_manifest(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    label = (np.arange(n) % 5 == 0).astype(int)
    return normalize_manifest(
        pd.DataFrame(
            {
                "image_id": [f"ISIC_{i:07d}" for i in range(n)],
                "path": [f"/x/{i}.jpg" for i in range(n)],
                "label": label,
                "label_name": np.where(label == 1, "malignant", "benign"),
                "split": np.where(np.arange(n) < n - 5, "train", "test"),
                "source": np.where(np.arange(n) % 7 == 0, "isic2019", "isic2020"),
                "is_external": np.arange(n) % 7 == 0,
                "patient_id": [f"IP_{i // 3}" for i in range(n)],
                "sex": rng.choice(["male", "female"], n),
                "age": rng.choice([30.0, 45.0, 60.0, 75.0], n),
                "site": rng.choice(["torso", "head/neck", "lower extremity"], n),
                "width": rng.choice([6000, 1024, 640], n),
                "height": rng.choice([4000, 768, 480], n),
            }
        )
    )


def tick_labels(fig: Figure) -> set[str]:
    ax = fig.axes[0]
    return {t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()}


def test_all_figures_for_a_complete_binary_manifest():
    figs = eda_figures(binary_manifest())
    assert set(figs) == {
        "class_frequency",
        "age_by_class",
        "sex_by_class",
        "site_by_class",
        "image_sizes",
        "sources",
    }
    for name, fig in figs.items():
        assert isinstance(fig, Figure), name
        assert fig.axes and fig.axes[0].has_data(), name
    assert {"benign", "malignant"} <= tick_labels(figs["class_frequency"])
    assert {"torso", "head/neck"} <= tick_labels(figs["site_by_class"])


def test_multiclass_frequency_shows_all_eight_classes():
    df = binary_manifest(16)
    names = ["MEL", "NV", "NV", "BCC"] * 4
    df["label_name"] = names
    df["label"] = [MULTICLASS_CLASSES.index(x) for x in names]
    figs = eda_figures(df)
    assert "multiclass_frequency" in figs
    ax = figs["multiclass_frequency"].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(MULTICLASS_CLASSES)
    heights = [p.get_height() for p in ax.patches]
    assert heights == [4, 8, 4, 0, 0, 0, 0, 0]
    assert "multiclass_frequency" not in eda_figures(binary_manifest())


def test_missing_metadata_never_crashes():
    df = binary_manifest()
    df["age"] = np.nan
    df.loc[:10, "sex"] = pd.NA
    df = df.drop(columns=["site", "width", "height"])
    figs = eda_figures(df)
    assert "age_by_class" not in figs and "site_by_class" not in figs
    assert "image_sizes" not in figs
    assert "unknown" in tick_labels(figs["sex_by_class"])
    # all metadata empty: still the class frequency
    bare = normalize_manifest(binary_manifest()[["image_id", "path", "label", "label_name"]])
    assert "class_frequency" in eda_figures(bare)
    assert eda_figures(binary_manifest().iloc[:0]) == {}
