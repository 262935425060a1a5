"""Markdown descriptions of registered models and versions."""

from __future__ import annotations

from isic_tracking.serving import IMAGE_COLUMN, LABEL_COLUMN
from isic_tracking.tracking.descriptions import model_description, version_description


def _version(**kw) -> str:
    base = dict(
        arch="resnet18",
        task="binary",
        fold="2",
        monitor="val_roc_auc",
        mode="max",
        value=0.87654,
        champion=None,
        n_folds=3,
        train_run_id="trainrun123",
        fold_run_id="foldrun456",
        digest="abc123def456",
        source="models:/m-1",
    )
    base.update(kw)
    return version_description(**base)


def test_model_description_names_usage_and_champion_rule() -> None:
    """Task, arch, load/serve commands with the model name, columns; 'highest' for max."""
    text = model_description("isic-binary", "resnet18", "binary", "val_roc_auc", "max")
    assert text.startswith("**binary classifier**")
    assert "(resnet18)" in text and "one version per fold" in text
    assert "the highest `val_roc_auc`" in text
    assert 'mlflow.pyfunc.load_model("models:/isic-binary@champion")' in text
    assert 'mlflow models serve -m "models:/isic-binary@champion"' in text
    assert f"`{IMAGE_COLUMN}`" in text and f"`{LABEL_COLUMN}`" in text


def test_model_description_min_mode_and_missing_fields() -> None:
    """'lowest' for a min metric; empty task/arch fall back to generic words."""
    text = model_description("m", "", "", "val_loss", "min")
    assert "the lowest `val_loss`" in text and "highest" not in text
    assert text.startswith("**skin-lesion classifier**") and "(see versions)" in text


def test_champion_version_description() -> None:
    """The champion: header, metric rounded to 4 places, its reason, runs, digest, source."""
    text = _version()
    lines = text.splitlines()
    assert lines[0] == "**resnet18** · binary · fold 2"
    assert "- Monitored metric `val_roc_auc` (max): **0.8765**" in lines
    assert (
        "- **Champion**: the highest `val_roc_auc` of the 3 folds of training run `trainrun123`."
        in lines
    )
    assert "- Training run `trainrun123`, fold run `foldrun456`" in lines
    assert "- Training data digest `abc123def456`" in lines
    assert "- Source `models:/m-1`" in lines
    assert "Not champion" not in text


def test_non_champion_version_names_the_champion() -> None:
    """Not champion: the champion's version, fold and value; the plain rule is not claimed."""
    text = _version(monitor="val_loss", mode="min", value=0.5, champion=("4", "1", 0.25))
    assert (
        "- Not champion: version 4 (fold 1, `val_loss` 0.2500) is the champion of the 3 folds; "
        "its description says why." in text.splitlines()
    )
    assert "**Champion**" not in text and "(min): **0.5000**" in text


def test_champion_reason_from_the_selection_policy() -> None:
    """A policy's explanation replaces the plain rule, its leading 'Champion:' in bold."""
    why = "Champion: the smallest train/val gap among folds within 0.01 of the best."
    text = _version(why=why)
    assert (
        "- **Champion**: the smallest train/val gap among folds within 0.01 of the best."
        in text.splitlines()
    )
    assert "of the 3 folds of training run" not in text
    # the explanation is the champion's: a non-champion version keeps its own line
    other = _version(why=why, champion=("1", "0", 0.9))
    assert "smallest train/val gap" not in other and "Not champion: version 1" in other


def test_nan_values_and_unknown_digest() -> None:
    """NaN metrics print as NaN; no digest says unknown."""
    text = _version(value=float("nan"), champion=("1", "0", float("nan")), digest="")
    assert "**NaN**" in text and "`val_roc_auc` NaN)" in text
    assert "Training data digest `unknown`" in text
