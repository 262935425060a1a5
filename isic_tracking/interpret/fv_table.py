"""``tables/activations.csv``: the contract between ``visualize`` (writes it) and ``sanity``.

One row per rendered picture. The schema (column names, in order, and dtypes) is
:data:`COLUMNS`; ``layer``, ``channel`` and ``file`` are required to read a table, the rest
are read when present (tables of older runs may lack them). ``objective`` is spelled by
:func:`objective_name` and read back by :func:`parse_objective`, nowhere else.

The natural-image columns (:data:`NATURAL_COLUMNS`) put the activation reached next
to the same objective over the analysed natural images: its maximum, its 99th percentile and
the two ratios (:mod:`.fv_natural`); a ratio is empty (NaN) where the unit is not live on
those images. ``selectivity`` is the filter's class selectivity from a ``filters`` run
(``malignant 62%``), empty when unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from isic_tracking.errors import IsicInputError

#: Where a visualize run logs the table (artifact path).
ARTIFACT = "tables/activations.csv"
#: The ``layer`` of class-logit pictures.
LOGITS_LAYER = "logits"
BASE_KEY = "base"  # the model key of the base's pictures (compare_pretrained)
#: Column -> dtype, in the order written.
COLUMNS: dict[str, str] = {
    "layer": "str",
    "channel": "int64",
    "objective": "str",
    "activation_reached": "float64",
    "engine": "str",
    "regularization": "str",
    "model": "str",
    "label": "str",
    "file": "str",
    "natural_max": "float64",
    "natural_p99": "float64",
    "fv_over_natural_max": "float64",
    "fv_over_natural_p99": "float64",
    "selectivity": "str",
}
#: Numeric columns a reader checks (a cell that is not a number is an error naming the row).
FLOAT_COLUMNS: tuple[str, ...] = tuple(c for c, t in COLUMNS.items() if t == "float64")
#: The columns that compare a picture with the natural images.
NATURAL_COLUMNS: tuple[str, ...] = (
    "natural_max", "natural_p99", "fv_over_natural_max", "fv_over_natural_p99",
)  # fmt: skip
#: Columns a row may leave out (filled empty): older callers and runs without natural images.
OPTIONAL: tuple[str, ...] = (*NATURAL_COLUMNS, "selectivity")
REQUIRED: tuple[str, ...] = ("layer", "channel", "file")
_LOGIT = "class_logit"


def objective_name(layer: str, channel: int, sign: float = 1.0) -> str:
    """``channel(layer, c)`` for a channel, ``class_logit(c)`` / ``-class_logit(c)`` for a logit
    (``layer`` empty or ``logits``)."""
    logit = layer in ("", LOGITS_LAYER)
    name = f"{_LOGIT}({channel})" if logit else f"channel({layer}, {channel})"
    return f"-{name}" if sign < 0 else name


def parse_objective(objective: str) -> tuple[bool, float]:
    """(is a class logit, sign) of an :func:`objective_name`; ``""`` is a positive channel."""
    text = objective.lstrip()
    return _LOGIT in text, -1.0 if text.startswith("-") else 1.0


def activations_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The rows as a table in the schema's column order and dtypes (a missing column fails,
    except the :data:`OPTIONAL` ones: NaN, or ``""`` for strings)."""
    table = pd.DataFrame(list(rows), columns=list(COLUMNS))
    for c in OPTIONAL:
        if COLUMNS[c] == "str":
            table[c] = table[c].fillna("")
    bad = [c for c in COLUMNS if table[c].isna().any() and COLUMNS[c] != "float64"]
    if bad:
        raise ValueError(f"activations table rows lack {bad}")
    return table.astype({c: (object if t == "str" else t) for c, t in COLUMNS.items()})


def write_activations(rows: Iterable[Mapping[str, Any]], path: str | Path) -> Path:
    """Write the rows to ``path`` as CSV (schema order); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    activations_frame(rows).to_csv(path, index=False)
    return path


def read_activations(path: str | Path, source: str | None = None) -> pd.DataFrame:
    """Read a table written by :func:`write_activations` (or an older run's).

    String columns come back as ``str`` with empty cells as ``""``, ``channel`` as int64,
    the float columns present (``activation_reached``, the natural columns) as float64;
    columns outside the schema are kept as read.

    Raises:
        IsicInputError: the file is empty or not CSV, lacks a required column, or a row's
            ``channel`` / a float column is not a number; the message names
            ``source`` (default: the path) and the row.
    """
    where = source or str(path)
    strings = [c for c, t in COLUMNS.items() if t == "str"]
    try:
        table = pd.read_csv(path, dtype={c: str for c in strings})
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise IsicInputError(f"{where} is not a readable CSV table ({err})") from None
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise IsicInputError(f"{where} lacks column(s) {missing}")
    for c in strings:
        if c in table.columns:
            table[c] = table[c].fillna("").astype(str)
    channel = pd.to_numeric(table["channel"], errors="coerce")
    _check_numbers(table["channel"], channel.isna() | (channel % 1 != 0), "channel", where)
    table["channel"] = channel.astype("int64")
    for c in FLOAT_COLUMNS:
        if c in table.columns:
            values = pd.to_numeric(table[c], errors="coerce")
            _check_numbers(table[c], values.isna() & table[c].notna(), c, where)
            table[c] = values.astype("float64")
    return table


def _check_numbers(values: pd.Series, bad: pd.Series, column: str, where: str) -> None:
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise IsicInputError(
            f"{where}: row {row + 2} has {column}={values.iloc[row]!r}, not a number "
            "(an integer for channel); rewrite the table or render it again with visualize"
        )
