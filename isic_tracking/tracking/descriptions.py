"""Markdown descriptions of registered models, their versions and of stage runs (what the
registry UI and a run's page show on top).

Pure string builders: the registry passes in what it knows; nothing here talks to MLflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from isic_tracking.serving import IMAGE_COLUMN, LABEL_COLUMN


def _value(v: float) -> str:
    return "NaN" if v != v else f"{v:.4f}"


def model_description(name: str, arch: str, task: str, monitor: str, mode: str) -> str:
    """The registered model's description: what it is, how versions are made, how to use it."""
    return "\n".join(
        [
            f"**{task or 'skin-lesion'} classifier** of dermoscopic images ({arch or 'see versions'}), "
            "trained by isic_tracking with k-fold cross-validation: **one version per fold**.",
            "",
            f"Alias `champion` = the fold with the {'highest' if mode == 'max' else 'lowest'} "
            f"`{monitor}` of the latest training run.",
            "",
            f'- Load: `mlflow.pyfunc.load_model("models:/{name}@champion")`, or '
            f'`isic_tracking.tracking.load_registered_model("models:/{name}@champion").model` '
            "for the torch module with its named layers.",
            f'- Serve: `mlflow models serve -m "models:/{name}@champion" --env-manager local '
            "-h 127.0.0.1 -p 5001`.",
            f"- Input: column `{IMAGE_COLUMN}` of encoded JPEG/PNG files (base64 over REST); the "
            "model resizes and normalizes itself.",
            f"- Output: `{LABEL_COLUMN}` (predicted class) and one probability column per class.",
            "- Weights: safetensors + config.json, loaded without pickle.",
        ]
    )


def version_description(
    *,
    arch: str,
    task: str,
    fold: str,
    monitor: str,
    mode: str,
    value: float,
    champion: tuple[str, str, float] | None,
    n_folds: int,
    train_run_id: str | None,
    fold_run_id: str,
    digest: str,
    source: str,
    why: str | None = None,
    init: str = "unknown",
) -> str:
    """One version's description.

    Args:
        champion: None when this version is the champion, else (version, fold, value) of it.
        why: the champion's explanation by the selection policy (replaces the plain rule).
        init: where the weights started (:func:`.registry.init_line`).
    """
    best = "highest" if mode == "max" else "lowest"
    if champion is None and why:
        why = why.replace("Champion:", "**Champion**:", 1)
    elif champion is None:
        why = (
            f"**Champion**: the {best} `{monitor}` of the {n_folds} folds of training run "
            f"`{train_run_id}`."
        )
    else:
        why = (
            f"Not champion: version {champion[0]} (fold {champion[1]}, `{monitor}` "
            f"{_value(champion[2])}) is the champion of the {n_folds} folds; its description "
            "says why."
        )
    return "\n".join(
        [
            f"**{arch}** · {task} · fold {fold}",
            "",
            f"- Initialized from {init}",
            f"- Monitored metric `{monitor}` ({mode}): **{_value(value)}**",
            f"- {why}",
            f"- Training run `{train_run_id}`, fold run `{fold_run_id}`",
            f"- Training data digest `{digest or 'unknown'}`",
            f"- Source `{source}`",
        ]
    )


#: the heading of a version's test-set section (replaced, not repeated, on a new evaluation)
TEST_HEADING = "**Test set**"


def evaluation_section(about: str, lines: list[str], run_id: str) -> str:
    """A registered version's test-set section: which images, the headline metrics with
    their intervals, the evaluate run that logged the rest (curves, confusion, tables)."""
    return "\n".join(
        [f"{TEST_HEADING} ({about}; evaluate run `{run_id}`)", "", *[f"- {x}" for x in lines]]
    )


def with_evaluation_section(description: str | None, section: str) -> str:
    """``description`` with ``section`` at its end, in place of an earlier test section."""
    head = (description or "").split(f"\n\n{TEST_HEADING}", 1)[0]
    head = "" if head.startswith(TEST_HEADING) else head
    return f"{head}\n\n{section}" if head else section


# --------------------------------------------------------------------------- stage runs
#: params a generic stage description names (what ran on what), in this order
_SHOWN_PARAMS = (
    "dataset",
    "root",
    "manifest",
    "task",
    "arch",
    "split",
    "layers",
    "channels",
    "top_n",
    "n_images",
    "metric",
    "steps",
    "engine",
)
#: at most this many metrics in a generic description (the rest: the run's metrics tab)
_MAX_METRICS = 8


def _links(used: Mapping[str, str]) -> list[str]:
    return [f"- {label}: {value}" for label, value in used.items()]


def stage_description(stage: str, data: Any, used: Mapping[str, str] | None = None) -> str:
    """A stage run's description from what it logged: which settings it ran with, its
    top-level metrics (a few, ``*_mean`` first; keys without ``/``), the runs and model it
    used.

    Args:
        stage: the entry point.
        data: the run's ``RunData`` (``params``, ``metrics``, ``tags`` mappings).
        used: label -> markdown (link) of what it used (model, training run, ...).
    """
    params = {k.removeprefix("resolved."): v for k, v in sorted(data.params.items())}
    shown = [f"`{k}={params[k]}`" for k in _SHOWN_PARAMS if params.get(k) not in (None, "")]
    lines = [f"**{stage}**" + (f" · {' · '.join(shown)}" if shown else "")]
    # summaries over layers / folds (``*_mean``) first, then the rest by name
    keys = sorted(
        (k for k in data.metrics if "/" not in k), key=lambda k: (not k.endswith("_mean"), k)
    )
    metrics = {k: data.metrics[k] for k in keys}
    if metrics:
        lines += [
            "",
            " · ".join(f"`{k}` {_value(v)}" for k, v in list(metrics.items())[:_MAX_METRICS]),
        ]
    if used:
        lines += ["", *_links(used)]
    return "\n".join(lines)


def _mean_std(metrics: Mapping[str, float], key: str) -> str:
    mean, std = metrics.get(f"{key}_mean"), metrics.get(f"{key}_std")
    return "–" if mean is None else f"{_value(mean)} ± {_value(std if std is not None else 0.0)}"


def train_description(
    *,
    arch: str,
    task: str,
    n_folds: int,
    n_images: int,
    manifest: str,
    monitor: str,
    headline: Mapping[str, float],
    model: str | None,
    champion: str | None,
    used: Mapping[str, str],
) -> str:
    """The train parent run's description: what was trained on what, the headline table
    (``cv_*`` mean ± std over folds, ``oof_*``, ``test_*`` mean ± std), the champion."""
    names = sorted(
        {k.split("_", 1)[1].removesuffix("_mean").removesuffix("_std") for k in headline}
    )
    rows = [
        "| metric | folds (mean ± std) | out-of-fold | test (mean ± std) |",
        "|---|---|---|---|",
    ]
    for n in names:
        oof = headline.get(f"oof_{n}")
        rows.append(
            f"| {n} | {_mean_std(headline, f'cv_{n}')} | "
            f"{'–' if oof is None else _value(oof)} | {_mean_std(headline, f'test_{n}')} |"
        )
    lines = [
        f"**{arch}** · {task} · {n_folds}-fold cross-validation on {n_images} images "
        f"(`{manifest}`); best epoch of each fold by `{monitor}`.",
        "",
        *rows,
        "",
        "Every metric of every fold: `tables/fold_metrics.csv`; test set: "
        "`tables/test_metrics.csv`; the folds are the nested runs.",
    ]
    if model:
        lines += ["", f"- Registered: `models:/{model}@champion` (version {champion})"]
    lines += _links(used)
    return "\n".join(lines)


def fold_description(
    fold: int, n_folds: int, parent: str, best_epoch: int, final: Mapping[str, float]
) -> str:
    """A fold run's description: which fold of which train run, its best epoch's numbers."""
    shown = [k for k in final if k.startswith(("best_val_", "test_")) and k.endswith(_FOLD_KEYS)]
    numbers = " · ".join(f"`{k}` {_value(final[k])}" for k in shown)
    return "\n".join(
        [
            f"**Fold {fold}** ({fold + 1} of {n_folds}) of train run {parent}; best epoch "
            f"{best_epoch} (its weights: the logged model `model`, a registry version).",
            "",
            numbers,
            "",
            "Per-epoch curves: the metrics tab; `tables/history.csv`, `tables/predictions.csv`.",
        ]
    )


_FOLD_KEYS = ("roc_auc", "balanced_accuracy", "loss")


def search_description(
    *,
    study: str,
    arch: str,
    task: str,
    metric: str,
    counts: Mapping[str, int],
    best: Mapping[str, Any],
    best_value: float | None,
    best_run: str | None,
    used: Mapping[str, str],
) -> str:
    """The search parent run's description: the study, its counts, the best trial."""
    tried = ", ".join(f"{counts.get(k, 0)} {k}" for k in ("complete", "pruned", "fail"))
    lines = [
        f"**Optuna study** `{study}` · {arch} · {task} · objective `{metric}`",
        "",
        f"Trials: {tried}.",
    ]
    if best:
        shown = ", ".join(f"`{k}={v}`" for k, v in best.items())
        value = "–" if best_value is None else _value(best_value)
        lines += [
            "",
            f"Best: {shown} ({metric} {value}{f', trial run {best_run}' if best_run else ''}); "
            "tags `isic.best.*`, used by `train -P params_from=<this run>`.",
        ]
    lines += ["", "Every trial: `tables/trials.csv` and the nested runs.", *_links(used)]
    return "\n".join(lines)


def pipeline_description(stages: Mapping[str, str], model_uri: str, profile: str) -> str:
    """The ``main`` run's description: one line per stage with its run."""
    lines = [f"**isic_tracking pipeline** · profile `{profile}` · model `{model_uri}`", ""]
    lines += [f"- {stage}: {link}" for stage, link in stages.items()]
    return "\n".join(lines)
