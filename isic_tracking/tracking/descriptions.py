"""Markdown descriptions of registered models and their versions (what the registry UI shows).

Pure string builders: the registry passes in what it knows; nothing here talks to MLflow.
"""

from __future__ import annotations

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
) -> str:
    """One version's description.

    Args:
        champion: None when this version is the champion, else (version, fold, value) of it.
        why: the champion's explanation by the selection policy (replaces the plain rule).
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
            f"- Monitored metric `{monitor}` ({mode}): **{_value(value)}**",
            f"- {why}",
            f"- Training run `{train_run_id}`, fold run `{fold_run_id}`",
            f"- Training data digest `{digest or 'unknown'}`",
            f"- Source `{source}`",
        ]
    )
