"""Per-image artifact labels of real ISIC images, read from the public Bissoto files and joined
onto a manifest as its ``artifact`` column (several artifacts per image: ``"hair|ruler"``).

Two files exist (DESIGN.md, "Public artifact labels"):

- Bissoto et al. 2020 (``debiasing-skin``, ``isic_bias.csv``): ``;``-separated, header
  ``image;dark_corner;hair;gel_border;gel_bubble;ruler;ink;patches;label;label_string``, 0/1
  annotations of 2,594 ISIC 2018 Task 1/2 images, ids like ``ISIC_0000000.png``;
- Bissoto et al. 2022 (``artifact-generalization-skin``, ``isic_inferred_wocarcinoma.csv``):
  ``,``-separated, the same columns plus ``vasc``, detector probabilities in [0, 1] for 20,599
  ISIC 2019 images; an image carries an artifact when its probability is >= ``threshold``.

The kind is told by the header's separator. ``label`` and ``label_string`` are not read (the
2022 file's ``label_string`` is wrong on every row). Names become the project's artifact names
(``NAME_MAP``: ``dark_corner`` -> ``dark_corners``, ``gel_bubble`` -> ``fluid``, ``patches``
-> ``sticker``; ``gel_border`` and ``vasc`` keep theirs). Ids are matched without extension
and without ``_downsampled``. A row with an empty id, a non-numeric value, a value outside the
kind's range or an id already seen is skipped and reported (file, line, column, value); a
missing column or an unreadable file is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from isic_tracking.data.sources.constants import DOWNSAMPLED_SUFFIX
from isic_tracking.errors import IsicInputError

#: Bissoto's column -> the project's artifact name (synthetic names where they exist).
NAME_MAP: dict[str, str] = {
    "dark_corner": "dark_corners",
    "hair": "hair",
    "gel_border": "gel_border",
    "gel_bubble": "fluid",
    "ruler": "ruler",
    "ink": "ink",
    "patches": "sticker",
    "vasc": "vasc",
}
ANNOTATED = "annotations"  # Bissoto 2020: ';', 0/1
INFERRED = "probabilities"  # Bissoto 2022: ',', [0, 1]
COLUMNS: dict[str, tuple[str, ...]] = {
    ANNOTATED: ("dark_corner", "hair", "gel_border", "gel_bubble", "ruler", "ink", "patches"),
    INFERRED: (
        "dark_corner",
        "hair",
        "gel_border",
        "gel_bubble",
        "ruler",
        "ink",
        "patches",
        "vasc",
    ),
}
NO_ARTIFACT = "none"
SKIP_COLUMNS = ("file", "line", "image", "column", "value", "reason")
#: How many unmatched ids a report names in words (all are in the tables).
EXAMPLES = 5


@dataclass
class ArtifactLabels:
    """A read label file: one row per image (``image_id`` + one bool column per artifact, in
    project names), its kind, threshold and the rows it skipped (``SKIP_COLUMNS``)."""

    path: Path
    kind: str
    threshold: float
    table: pd.DataFrame
    skipped: pd.DataFrame

    @property
    def artifacts(self) -> list[str]:
        return [c for c in self.table.columns if c != "image_id"]


def label_id(raw: str) -> str:
    """``ISIC_0000000.png`` / ``ISIC_0000000_downsampled`` -> ``ISIC_0000000``."""
    stem = str(raw).strip()
    for ext in (".png", ".jpg", ".jpeg"):
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
    return stem.removesuffix(DOWNSAMPLED_SUFFIX)


def detect_kind(path: Path) -> tuple[str, str]:
    """(kind, separator) from the header line: ``;`` -> annotations, ``,`` -> probabilities."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            header = f.readline()
    except OSError as e:
        raise IsicInputError(f"artifacts={path}: cannot read the file ({e})") from e
    if ";" in header:
        return ANNOTATED, ";"
    if "," in header:
        return INFERRED, ","
    raise IsicInputError(
        f"artifacts={path}: the header {header.strip()!r} is neither ';'- (Bissoto 2020) nor "
        "','-separated (Bissoto 2022); pass isic_bias.csv or isic_inferred_wocarcinoma.csv"
    )


def _check_threshold(threshold: float) -> float:
    if not 0.0 < float(threshold) <= 1.0:
        raise IsicInputError(f"artifact_threshold={threshold} must lie in (0, 1]")
    return float(threshold)


def read_artifact_labels(path: str | Path, threshold: float = 0.5) -> ArtifactLabels:
    """Read either Bissoto file (see module doc); ``threshold`` applies to probabilities.

    Raises:
        IsicInputError: unreadable file, unknown separator, missing columns (named, with the
            expected header), no usable row.
    """
    path, threshold = Path(path), _check_threshold(threshold)
    kind, sep = detect_kind(path)
    raw = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    raw.columns = [c.strip() for c in raw.columns]
    wanted = COLUMNS[kind]
    missing = [c for c in ("image", *wanted) if c not in raw.columns]
    if missing:
        raise IsicInputError(
            f"artifacts={path}: missing column(s) {missing}; a {kind} file has the header "
            f"{sep.join(('image', *wanted, 'label', 'label_string'))}"
        )
    rows, skipped, seen = [], [], set()
    for line, rec in zip(range(2, len(raw) + 2), raw.to_dict("records")):
        image, problem = label_id(rec["image"]), None
        values = []
        for col in wanted:
            value = str(rec[col]).strip()
            try:
                x = float(value)
            except ValueError:
                problem = (col, value, "not a number")
                break
            ok = x in (0.0, 1.0) if kind == ANNOTATED else 0.0 <= x <= 1.0
            if not ok or np.isnan(x):
                problem = (col, value, "not 0/1" if kind == ANNOTATED else "outside [0, 1]")
                break
            values.append(x >= threshold if kind == INFERRED else x == 1.0)
        if problem is None and not image:
            problem = ("image", "", "empty image id")
        if problem is None and image in seen:
            problem = ("image", rec["image"], "duplicate image id (first row kept)")
        if problem is not None:
            skipped.append((str(path), line, rec["image"], *problem))
            continue
        seen.add(image)
        rows.append((image, *values))
    if not rows:
        raise IsicInputError(f"artifacts={path}: no usable row (skipped: {len(skipped)})")
    table = pd.DataFrame(rows, columns=["image_id", *(NAME_MAP[c] for c in wanted)])
    return ArtifactLabels(path, kind, threshold, table, pd.DataFrame(skipped, columns=SKIP_COLUMNS))


@dataclass
class ArtifactJoin:
    """What joining labels onto a manifest found: ids only in the file, images without a
    label, and how often each artifact occurs among the labelled images."""

    n_labelled: int
    file_only: list[str]
    data_only: list[str]
    prevalence: pd.DataFrame  # artifact, n_images, fraction (of the labelled images)

    def counts(self, skipped_rows: int) -> dict[str, float]:
        out: dict[str, float] = {
            "artifacts_labelled": self.n_labelled,
            "artifacts_file_only": len(self.file_only),
            "artifacts_data_only": len(self.data_only),
            "artifacts_skipped_rows": skipped_rows,
        }
        for r in self.prevalence.itertuples(index=False):
            out[f"artifact_prevalence/{r.artifact}"] = r.fraction
            out[f"n_artifact/{r.artifact}"] = r.n_images
        return out

    def unmatched(self) -> pd.DataFrame:
        """``image_id, side`` (``file_only`` / ``data_only``) of every unmatched id."""
        return pd.DataFrame(
            [(i, "file_only") for i in self.file_only] + [(i, "data_only") for i in self.data_only],
            columns=["image_id", "side"],
        )


def join_artifacts(
    manifest: pd.DataFrame, labels: ArtifactLabels
) -> tuple[pd.DataFrame, ArtifactJoin]:
    """Set the manifest's ``artifact`` column from ``labels``.

    Each labelled image gets its artifacts joined by ``|`` (``membership`` in
    :mod:`isic_tracking.interpret.filters` counts it in each group), or ``none``; an image the
    file does not list gets an empty value (in no group). An ``artifact`` column already there
    (synthetic truth) is replaced.

    Returns:
        (the manifest with ``artifact``, an :class:`ArtifactJoin`).
    """
    table = labels.table.set_index("image_id")
    names = labels.artifacts
    flags = table[names].to_numpy(dtype=bool)
    joined = pd.Series(
        ["|".join(n for n, f in zip(names, row) if f) or NO_ARTIFACT for row in flags],
        index=table.index,
    )
    ids = manifest["image_id"].astype(str).map(label_id)
    out = manifest.copy()
    out["artifact"] = ids.map(joined).astype("string")
    labelled = ids.isin(table.index)
    data_ids = set(ids)
    hits = table.loc[ids[labelled], names]
    n = int(labelled.sum())
    prevalence = pd.DataFrame(
        {
            "artifact": names,
            "n_images": [int(hits[c].sum()) for c in names],
            "fraction": [float(hits[c].mean()) if n else float("nan") for c in names],
        }
    )
    join = ArtifactJoin(
        n_labelled=n,
        file_only=sorted(i for i in table.index if i not in data_ids),
        data_only=sorted(manifest.loc[~labelled.to_numpy(), "image_id"].astype(str)),
        prevalence=prevalence,
    )
    return out, join
