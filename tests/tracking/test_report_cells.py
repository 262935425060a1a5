"""The report's data section from a real prepare run's tags, metrics and leakage tables: the
test set and the counts as lines, a long pairs table cut to its first rows with a note saying
how many there are, and a run without a leakage check shown without tables."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import pandas as pd

from isic_tracking.tracking import log_dataframe, tag
from isic_tracking.tracking.report_cells import FILLS, SECTIONS, SHOWN_ROWS, Reader


def _prepare_run(n_pairs: int) -> str:
    with mlflow.start_run(run_name="prepare") as run:
        mlflow.set_tags({tag.STAGE: "prepare", tag.TEST_SET: "36 images of isic2016-test"})
        mlflow.log_metrics({"n_images": 240, "n_test": 36, "leakage_pairs": n_pairs,
                            "leakage_dropped": min(n_pairs, 3)})  # fmt: skip
        if n_pairs:
            pairs = pd.DataFrame({"id_a": [f"a{i}" for i in range(n_pairs)],
                                  "id_b": [f"b{i}" for i in range(n_pairs)],
                                  "distance": 2, "kind": "near"})  # fmt: skip
            log_dataframe(pairs, "leakage/pairs.csv")
            log_dataframe(pairs.head(3).rename(columns={"id_a": "image_id"}), "leakage/dropped.csv")
    return run.info.run_id


def test_the_data_section_shows_the_test_set_the_counts_and_the_pairs(mlflow_tracking) -> None:
    assert [s for s, _, _ in SECTIONS][0] == "data" and FILLS["data"][0] == "prepare"
    fill = FILLS["data"][1]
    with tempfile.TemporaryDirectory() as tmp:
        tables, figures, lines = fill(
            mlflow.get_run(_prepare_run(SHOWN_ROWS + 7)), Reader(Path(tmp))
        )
        assert lines[0] == "test set: 36 images of isic2016-test"
        assert f"leakage_pairs: {SHOWN_ROWS + 7}" in lines and "leakage_dropped: 3" in lines
        pairs, dropped = tables
        assert (
            len(pairs.frame) == SHOWN_ROWS
            and pairs.note == f"first {SHOWN_ROWS} of {SHOWN_ROWS + 7} rows"
        )
        assert list(dropped.frame["image_id"]) == ["a0", "a1", "a2"] and dropped.note == "3 rows"
        assert not figures
        tables, _, lines = fill(mlflow.get_run(_prepare_run(0)), Reader(Path(tmp)))
        assert not tables and "leakage_pairs: 0" in lines
