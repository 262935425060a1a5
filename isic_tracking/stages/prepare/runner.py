"""The ``prepare`` stage run: read a layout, cache its images, log the manifest and counts."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow

from isic_tracking.data.artifact_labels import EXAMPLES
from isic_tracking.data.prepare import Prepared, prepare_dataset
from isic_tracking.log import get_logger
from isic_tracking.tracking import tag
from isic_tracking.tracking.runs import log_dataframe, log_manifest_input, log_metrics, stage_run

log = get_logger(__name__)

#: The options of :func:`prepare_dataset` besides dataset, root and out.
_OPTIONS = ("task", "extra_malignant", "extra_dataset", "image_size", "max_bad_fraction", "workers",
            "test_dataset", "test_root", "test_fraction", "test_seed", "dedupe", "artifacts",
            "artifact_threshold")  # fmt: skip
#: Dropped rows named one by one in the terminal; the rest are in the logged table.
_SHOW = 10


def run_prepare(params: Mapping[str, Any]) -> Prepared:
    """One ``prepare`` run with ``params`` (the stage's resolved CLI values, logged as given).

    Logs the prepared manifest as the run's dataset input, the reading and caching counters,
    the images per class and per source, the test set (``n_test``, ``n_test_class/<class>``,
    tag ``isic.test_set``: how it was made), and ``skipped.csv`` (every image left out).
    """
    out = str(params["out"])
    with stage_run("prepare", dict(params), run_name=f"prepare-{params['dataset']}"):
        options = {k: params[k] for k in _OPTIONS if k in params}
        prepared = prepare_dataset(params["dataset"], params["root"], out, **options)
        df = prepared.cache.manifest
        log_manifest_input(
            df, name=params["dataset"], context="prepared", source=str(prepared.manifest_path)
        )
        log_metrics(prepared.counts())
        log_metrics({f"n_class/{k}": v for k, v in df["label_name"].value_counts().items()})
        log_metrics({f"n_source/{k}": v for k, v in df["source"].value_counts().items()})
        test = df[df["split"] == "test"]
        log_metrics({"n_test": len(test)})
        log_metrics({f"n_test_class/{k}": v for k, v in test["label_name"].value_counts().items()})
        mlflow.set_tags(
            {tag.TEST_SET: prepared.test_set.about, tag.TEST_KIND: prepared.test_set.kind}
        )
        log_dataframe(prepared.skip_report(), "skipped.csv")
        _log_leakage(prepared)
        _log_artifacts(prepared)
        n_dropped = len(prepared.leakage.dropped) if prepared.leakage else 0
        log.info(
            f"manifest: {prepared.manifest_path.resolve()} ({len(df)} images, "
            f"{prepared.cache.n_skipped} unreadable, {n_dropped} dropped as duplicates -> "
            f"{Path(out) / 'skipped.csv'}); test set: {prepared.test_set.about}"
        )
    return prepared


def _log_leakage(prepared: Prepared) -> None:
    """The duplicate pairs and dropped rows as tables, and in words in the terminal."""
    leak = prepared.leakage
    if leak is None:
        return
    log_dataframe(leak.pairs, "leakage/pairs.csv")
    log_dataframe(leak.dropped, "leakage/dropped.csv")
    c = leak.counts()
    log.info(
        f"leakage check: {c['leakage_pairs']} duplicate pair(s) ({c['leakage_exact']} exact, "
        f"{c['leakage_near']} near; {c['leakage_cross_split']} across splits, "
        f"{c['leakage_cross_source']} across sources) -> artifact leakage/pairs.csv"
    )
    for r in leak.dropped.head(_SHOW).itertuples(index=False):
        log.info(f"dropped {r.image_id} ({r.split}, {r.source}): {r.reason} (dedupe={leak.dedupe})")
    if len(leak.dropped) > _SHOW:
        log.info(f"... {len(leak.dropped) - _SHOW} more dropped: artifact leakage/dropped.csv")
    if leak.planted is not None:
        p = leak.planted
        log.info(
            f"planted near-duplicates: {p.n_found} of {p.n_planted} found, "
            f"{p.n_false_alarms} false alarm(s)"
        )


def _log_artifacts(prepared: Prepared) -> None:
    """The joined artifact labels: prevalence, unmatched ids and skipped rows, as tables and
    in words (counts and a few examples)."""
    join, labels = prepared.artifacts, prepared.labels
    if join is None or labels is None:
        return
    log_dataframe(join.prevalence, "artifacts/prevalence.csv")
    log_dataframe(join.unmatched(), "artifacts/unmatched.csv")
    log_dataframe(labels.skipped, "artifacts/skipped_rows.csv")
    log.info(
        f"artifact labels ({labels.kind}, {labels.path.name}"
        + (f", threshold {labels.threshold:g}" if labels.kind == "probabilities" else "")
        + f"): {join.n_labelled} images labelled; "
        + ", ".join(f"{r.artifact} {r.fraction:.1%}" for r in join.prevalence.itertuples())
    )
    for side, ids, what in (
        ("file_only", join.file_only, "ids in the file but not in the data"),
        ("data_only", join.data_only, "images of the data not in the file (no artifact group)"),
    ):
        if ids:
            more = f", ... ({side} in artifacts/unmatched.csv)" if len(ids) > EXAMPLES else ""
            log.info(f"{len(ids)} {what}: {', '.join(ids[:EXAMPLES])}{more}")
    for r in labels.skipped.head(EXAMPLES).itertuples(index=False):
        log.info(f"skipped {r.file} line {r.line} ({r.image}): {r.column}={r.value!r} {r.reason}")
    if len(labels.skipped) > EXAMPLES:
        log.info(f"... {len(labels.skipped)} rows skipped in all: artifacts/skipped_rows.csv")
