"""The scale rehearsal's own pieces: the ISIC-2020-shaped listing `prepare` reads, the
stratified subsets, and the growth table that says linear / flat."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bench.scale_rehearsal import (
    StageCost,
    growth,
    markdown,
    stratified_subset,
    write_listing,
)
from isic_tracking.data.sources.isic2020 import read_isic2020


def test_the_listing_is_an_isic2020_layout_with_its_malignant_rate(tmp_path: Path):
    root = write_listing(tmp_path / "isic2020", 300, (64, 48))
    result = read_isic2020(root)
    rows = result.manifest
    assert (
        result.report.empty and len(rows) == 300 and rows["label"].sum() == round(300 * 584 / 33126)
    )
    assert rows["patient_id"].nunique() < 300  # several images per patient, as in ISIC 2020
    assert len(list((root / "jpeg" / "train").glob("*.jpg"))) == 300


def test_subsets_keep_the_class_mix_and_at_least_two_per_class():
    manifest = pd.DataFrame({
        "image_id": [f"i{k}" for k in range(1000)], "split": ["train"] * 900 + ["test"] * 100,
        "label": [1 if k % 50 == 0 else 0 for k in range(1000)],
    })  # fmt: skip
    sub = stratified_subset(manifest, 100)
    assert len(sub) == 100 and set(sub["image_id"]) <= set(manifest["image_id"][:900])
    assert sub["label"].sum() == 2  # 18 of 900 malignant -> 2 of 100
    assert stratified_subset(manifest, 20)["label"].sum() == 2  # never fewer than 2


def _cost(stage: str, n: int, cpu: float, peak: float) -> StageCost:
    return StageCost(stage, "resnet50", n, cpu, cpu, peak, n, n, 1, 0)


def test_growth_separates_the_fixed_part_and_tells_linear_from_worse():
    costs = [_cost("filters", n, 60 + 0.2 * n, 4000) for n in (100, 200, 400)]
    costs += [_cost("layers", n, 10 + 0.001 * n * n, 2000 + n) for n in (100, 200, 400)]
    table = growth(costs).set_index("stage")
    assert table.loc["filters", "marginal_ratio"] == pytest.approx(1.0)
    assert table.loc["filters", "fixed_cpu_s"] == pytest.approx(60.0)
    assert table.loc["filters", "peak_memory_ratio"] == 1.0
    assert table.loc["layers", "marginal_ratio"] == pytest.approx(2.0)  # quadratic: 0.3 -> 0.6
    assert table.loc["layers", "peak_memory_ratio"] == pytest.approx(2400 / 2100, abs=0.01)
    assert markdown(table.reset_index()).splitlines()[0].startswith("| stage | arch | images")
