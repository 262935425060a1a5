"""The shared input checks, through a reader: empty CSVs, repeated ids, missing roots."""

from __future__ import annotations

import pytest

from isic_tracking.data.sources import (
    read_isic2020,
)
from isic_tracking.errors import IsicInputError
from tests.data.sources.helpers import (
    HEADER_2020,
    ROWS_2020,
    make_2020,
)


@pytest.mark.parametrize("content", ["", HEADER_2020 + "\n"], ids=["zero-bytes", "header-only"])
def test_empty_csv_is_an_error(tmp_path, content):
    (tmp_path / "jpeg" / "train").mkdir(parents=True)
    (tmp_path / "train.csv").write_text(content)
    with pytest.raises(IsicInputError, match=r"train\.csv (is empty|has no data rows)"):
        read_isic2020(tmp_path)


def test_duplicate_ids_in_csv_name_file_and_lines(tmp_path):
    make_2020(tmp_path, rows=[ROWS_2020[0], ROWS_2020[1], ROWS_2020[0]])
    with pytest.raises(
        IsicInputError, match=r"train\.csv: duplicate image_name 'ISIC_2637011' on lines \[2, 4\]"
    ):
        read_isic2020(tmp_path)


def test_root_that_does_not_exist_is_a_clear_error(tmp_path):
    with pytest.raises(IsicInputError, match="does not exist"):
        read_isic2020(tmp_path / "nope")
    with pytest.raises(IsicInputError, match="no ISIC 2020 layout"):
        read_isic2020(tmp_path)
