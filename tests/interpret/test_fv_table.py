"""tables/activations.csv: the visualize -> sanity contract, written and read by one module."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.fv_table import (
    COLUMNS,
    activations_frame,
    objective_name,
    parse_objective,
    read_activations,
    write_activations,
)


def _row(**kw) -> dict:
    row = dict(
        layer="features.10", channel=3, objective="channel(features.10, 3)",
        activation_reached=1.5, engine="isic", regularization="thesis", model="model",
        label="features.10:3", file="images/features.10/model_isic_thesis_ch0003.png",
        natural_max=1.2, natural_p99=1.0, fv_over_natural_max=1.25, fv_over_natural_p99=1.5,
        selectivity="malignant 62%",
    )  # fmt: skip
    return row | kw


def test_objective_names_round_trip():
    assert objective_name("features.10", 3) == "channel(features.10, 3)"
    assert objective_name("", 0) == "class_logit(0)"
    assert objective_name("logits", 0, -1.0) == "-class_logit(0)"
    assert parse_objective("channel(features.10, 3)") == (False, 1.0)
    assert parse_objective(" -class_logit(0)") == (True, -1.0)
    assert parse_objective("class_logit(2)") == (True, 1.0)
    assert parse_objective("") == (False, 1.0)


def test_write_then_read_keeps_columns_order_and_dtypes(tmp_path: Path):
    rows = [_row(), _row(layer="logits", channel=0, objective="-class_logit(0)", label="benign")]
    path = write_activations(rows, tmp_path / "tables" / "activations.csv")
    assert path.read_text().splitlines()[0] == ",".join(COLUMNS)
    table = read_activations(path)
    assert list(table.columns) == list(COLUMNS)
    assert table["channel"].dtype == "int64" and table["activation_reached"].dtype == "float64"
    assert table["layer"].tolist() == ["features.10", "logits"]
    assert table.to_dict("records") == activations_frame(rows).to_dict("records")


def test_writing_rows_without_a_schema_column_fails(tmp_path: Path):
    bad = _row()
    del bad["file"]
    with pytest.raises(ValueError, match="lack.*file"):
        write_activations([bad], tmp_path / "a.csv")


def test_an_older_table_with_the_required_columns_only_reads(tmp_path: Path):
    path = tmp_path / "old.csv"
    pd.DataFrame({"layer": ["conv1", None], "channel": [1, 2], "file": ["a.png", "b.png"]}).to_csv(
        path, index=False
    )
    table = read_activations(path)
    assert table["layer"].tolist() == ["conv1", ""]  # empty strings, not NaN
    assert "objective" not in table.columns  # absent columns stay absent


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "not a readable CSV table"),
        ("layer,file\nconv1,a.png\n", "lacks column(s) ['channel']"),
        ("layer,channel,file\nconv1,1,a.png\nconv1,x,b.png\n", "row 3 has channel='x'"),
        ("layer,channel,file\nconv1,1.5,a.png\n", "row 2 has channel="),
        (
            "layer,channel,file,activation_reached\nconv1,1,a.png,high\n",
            "row 2 has activation_reached='high'",
        ),
        (
            "layer,channel,file,natural_max\nconv1,1,a.png,1\nconv1,2,b.png,big\n",
            "row 3 has natural_max='big'",
        ),
    ],
)
def test_a_malformed_table_is_a_clear_error_naming_the_source(tmp_path: Path, text, message):
    path = tmp_path / "activations.csv"
    path.write_text(text)
    with pytest.raises(IsicInputError, match="visualize run abc") as err:
        read_activations(path, source="visualize run abc: tables/activations.csv")
    assert message in str(err.value)


def test_natural_columns_are_optional_and_read_back_as_floats(tmp_path: Path):
    """Rows without the natural-image comparison (a unit that is not live, an older caller)
    write empty cells; they read back as NaN floats and an empty selectivity."""
    row = _row()
    for c in ("natural_max", "natural_p99", "fv_over_natural_max", "fv_over_natural_p99"):
        del row[c]
    del row["selectivity"]
    path = write_activations([_row(), row], tmp_path / "a.csv")
    table = read_activations(path)
    assert table["fv_over_natural_max"].dtype == "float64"
    assert table["fv_over_natural_max"].iloc[0] == 1.25
    assert table["natural_max"].isna().tolist() == [False, True]
    assert table["selectivity"].tolist() == ["malignant 62%", ""]
    pd.testing.assert_frame_equal(table, activations_frame([_row(), row]), check_dtype=False)
