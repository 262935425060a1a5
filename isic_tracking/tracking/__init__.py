"""The only place that talks to MLflow: runs, logging, registry, safe model pull."""

from isic_tracking.tracking.registry import (
    LoadedModel,
    load_model,
    register_checkpoints,
    training_manifest,
    training_split,
)
from isic_tracking.tracking.runs import (
    child_runs,
    download_artifacts,
    get_run,
    get_stage_run,
    log_dataframe,
    log_dict,
    log_figure,
    log_image_files,
    log_manifest_input,
    log_metrics,
    log_params,
    log_text,
    manifest_digest,
    stage_run,
)

__all__ = [
    "LoadedModel",
    "child_runs",
    "download_artifacts",
    "get_run",
    "get_stage_run",
    "load_model",
    "log_dataframe",
    "log_dict",
    "log_figure",
    "log_image_files",
    "log_manifest_input",
    "log_metrics",
    "log_params",
    "log_text",
    "manifest_digest",
    "register_checkpoints",
    "stage_run",
    "training_manifest",
    "training_split",
]
