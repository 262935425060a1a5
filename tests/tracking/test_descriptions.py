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


def test_stage_description_names_settings_top_level_metrics_and_used_runs() -> None:
    from types import SimpleNamespace

    from isic_tracking.tracking.descriptions import stage_description

    data = SimpleNamespace(
        params={"resolved.manifest": "m.csv", "split": "val0", "quantile": "0.95"},
        metrics={"n_images": 20.0, "similarity/conv1": 0.3, **{f"z{i}": i for i in range(12)}}
        | {"similarity_mean": 0.25},
        tags={},
    )
    text = stage_description("sanity", data, {"model": "`models:/x@champion`"})
    first, _, metrics, _, used = text.split("\n")
    assert first == "**sanity** · `manifest=m.csv` · `split=val0`"
    assert metrics.startswith("`similarity_mean` 0.2500 · `n_images` 20.0000 · `z0`")
    assert "similarity/conv1" not in metrics
    assert metrics.count("`") == 2 * 8  # at most 8 metrics; the rest in the metrics tab
    assert used == "- model: `models:/x@champion`"


def test_train_description_has_the_headline_table() -> None:
    from isic_tracking.tracking.descriptions import train_description

    headline = {
        "cv_roc_auc_mean": 0.9,
        "cv_roc_auc_std": 0.05,
        "oof_roc_auc": 0.88,
        "test_roc_auc_mean": 0.8,
        "test_roc_auc_std": 0.01,
        "cv_f1_mean": 0.7,
        "cv_f1_std": 0.1,
    }
    text = train_description(
        arch="smallcnn",
        task="binary",
        n_folds=3,
        n_images=180,
        manifest="data/m.csv",
        monitor="best_val_loss",
        headline=headline,
        model="isic-binary-smallcnn",
        champion="4",
        used={"search run": "[`abc`](http://x)"},
    )
    assert text.startswith("**smallcnn** · binary · 3-fold cross-validation on 180 images")
    assert "| roc_auc | 0.9000 ± 0.0500 | 0.8800 | 0.8000 ± 0.0100 |" in text
    assert "| f1 | 0.7000 ± 0.1000 | – | – |" in text
    assert "`models:/isic-binary-smallcnn@champion` (version 4)" in text
    assert text.endswith("- search run: [`abc`](http://x)")


def test_search_fold_and_pipeline_descriptions() -> None:
    from isic_tracking.tracking.descriptions import (
        fold_description,
        pipeline_description,
        search_description,
    )

    search = search_description(
        study="s1",
        arch="smallcnn",
        task="binary",
        metric="val_loss",
        counts={"complete": 2, "pruned": 3, "fail": 1},
        best={"lr": 0.002, "epochs": 9},
        best_value=0.1,
        best_run="[`t`](u)",
        used={},
    )
    assert "Trials: 2 complete, 3 pruned, 1 fail." in search
    assert "Best: `lr=0.002`, `epochs=9` (val_loss 0.1000, trial run [`t`](u))" in search
    fold = fold_description(1, 3, "[`p`](u)", 7, {"best_val_loss": 0.2, "best_val_f1": 0.5})
    assert fold.startswith("**Fold 1** (2 of 3) of train run [`p`](u); best epoch 7")
    assert "`best_val_loss` 0.2000" in fold and "best_val_f1" not in fold
    main = pipeline_description({"train": "[`r`](u) (reused)"}, "models:/m@champion", "demo")
    assert main.splitlines()[-1] == "- train: [`r`](u) (reused)"


def test_a_version_has_one_test_section_the_latest() -> None:
    from isic_tracking.tracking.descriptions import (
        TEST_HEADING,
        evaluation_section,
        with_evaluation_section,
    )

    first = evaluation_section("60 images", ["`roc_auc` 0.9 [0.8, 0.95]"], "r1")
    assert first.startswith(f"{TEST_HEADING} (60 images; evaluate run `r1`)")
    assert "- `roc_auc` 0.9 [0.8, 0.95]" in first
    text = with_evaluation_section("**alexnet** · binary", first)
    assert text == f"**alexnet** · binary\n\n{first}"
    second = evaluation_section("61 images", ["`roc_auc` 0.7 [0.6, 0.8]"], "r2")
    again = with_evaluation_section(text, second)
    assert again == f"**alexnet** · binary\n\n{second}" and again.count(TEST_HEADING) == 1
    assert with_evaluation_section(None, first) == first == with_evaluation_section(first, first)
