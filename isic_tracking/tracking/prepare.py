"""The ``prepare`` stage run: read a layout, cache its images, log the manifest and counts."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow

from isic_tracking.data.prepare import Prepared, prepare_dataset
from isic_tracking.log import get_logger
from isic_tracking.tracking import tag
from isic_tracking.tracking.runs import log_dataframe, log_manifest_input, log_metrics, stage_run

log = get_logger(__name__)

#: The options of :func:`prepare_dataset` besides dataset, root and out.
_OPTIONS = ("task", "extra_malignant", "extra_dataset", "image_size", "max_bad_fraction", "workers",
            "test_dataset", "test_root", "test_fraction", "test_seed")  # fmt: skip


def run_prepare(params: Mapping[str, Any]) -> Prepared:
    """One ``prepare`` run with ``params`` (the stage's resolved CLI values, logged as given).

    Logs the prepared manifest as the run's dataset input, the reading and caching counters,
    the images per class and per source, the test set (``n_test``, ``n_test_class/<class>``,
    tag ``isic.test_set``: how it was made), and ``skipped.csv`` (every image left out).
    """
    out = str(params["out"])
    with stage_run("prepare", dict(params), run_name=f"prepare-{params['dataset']}"):
        prepared = prepare_dataset(
            params["dataset"],
            params["root"],
            out,
            **{k: params[k] for k in _OPTIONS if k in params},
        )
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
        log.info(
            f"manifest: {prepared.manifest_path.resolve()} ({len(df)} images, "
            f"{prepared.cache.n_skipped} skipped -> {Path(out) / 'skipped.csv'}); "
            f"test set: {prepared.test_set.about}"
        )
    return prepared
