"""The analysis stages' configs: built by add_config_args like TrainConfig, MLproject values."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from isic_tracking.config import add_config_args, config_from_args
from isic_tracking.errors import IsicInputError
from isic_tracking.stages.filters.config import FiltersConfig
from isic_tracking.stages.sanity.config import SanityConfig
from isic_tracking.stages.visualize.config import VisualizeConfig


def _parse(cls, argv):
    return config_from_args(cls, add_config_args(argparse.ArgumentParser(), cls).parse_args(argv))


@pytest.mark.parametrize("cls", [FiltersConfig, VisualizeConfig, SanityConfig])
def test_defaults_without_arguments(cls):
    assert _parse(cls, []) == cls()


def test_mlproject_values_floats_empty_strings_and_booleans():
    cfg = _parse(FiltersConfig, ["--top_n", "5.0", "--manifest", "", "--allow_random", "true"])
    assert cfg.top_n == 5 and cfg.manifest is None and cfg.allow_random is True
    vis = _parse(VisualizeConfig, ["--filters_run", "", "--steps", "200.0", "--image_size", "128"])
    assert vis.filters_run is None and vis.steps == 200 and vis.image_size == 128
    san = _parse(SanityConfig, ["--fv_run", "abc", "--reference_model_uri", "none"])
    assert san.fv_run == "abc" and san.reference_model_uri is None
    assert list(dataclasses.asdict(san))[:3] == ["model_uri", "fv_run", "manifest"]


def test_choices_are_checked_on_the_command_line_and_in_yaml(tmp_path: Path, capsys):
    with pytest.raises(SystemExit):
        _parse(SanityConfig, ["--metric", "euclid"])
    assert "invalid choice: 'euclid'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parse(SanityConfig, ["--regularization", "none"])  # the twins' preset, not a choice
    yaml = tmp_path / "sanity.yaml"
    yaml.write_text("pooling: median\nn_images: 4\n")
    with pytest.raises(IsicInputError, match="pooling='median' is not one of mean, max, flatten"):
        _parse(SanityConfig, ["--config", str(yaml)])
    yaml.write_text("n_images: 4\n")
    assert _parse(SanityConfig, ["--config", str(yaml), "--n_images", "6"]).n_images == 6


def test_sanity_bootstrap_settings_are_checked():
    cfg = _parse(SanityConfig, ["--n_boot", "500", "--interval", "0.9"])
    assert cfg.n_boot == 500 and cfg.interval == 0.9
    with pytest.raises(IsicInputError, match="n_boot=0: at least 1 bootstrap replicate"):
        _parse(SanityConfig, ["--n_boot", "0"])
    with pytest.raises(IsicInputError, match=r"interval=95.0: a level in \(0, 1\)"):
        _parse(SanityConfig, ["--interval", "95"])


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("ablate_k", 6, "ablate_k=6: between 0"),  # more than top_n=5
        ("ablate_k", -1, "ablate_k=-1"),
        ("ablate_draws", 0, "ablate_draws=0"),
        ("dissect_quantile", 1.0, "dissect_quantile=1.0"),
        ("dissect_min_iou", 1.5, "dissect_min_iou=1.5"),
    ],
)
def test_filters_probe_settings_are_checked(field: str, value, match: str):
    with pytest.raises(IsicInputError, match=match):
        FiltersConfig(**{field: value})
    assert FiltersConfig(ablate_k=0, ablate_draws=0).ablate_k == 0  # off: no draws needed


def test_every_analysis_stage_shares_one_base_and_one_field_helper() -> None:
    """filters, visualize, sanity, layers and evaluate take the model the same way; a field
    with choices refuses another value with the allowed ones, from YAML as from the CLI."""
    import dataclasses

    import pytest

    from isic_tracking.config import DEFAULT_MODEL_URI, AnalysisSettings, setting
    from isic_tracking.errors import IsicInputError
    from isic_tracking.stages.evaluate.config import EvaluateConfig
    from isic_tracking.stages.filters.config import FiltersConfig
    from isic_tracking.stages.layers.config import LayersConfig
    from isic_tracking.stages.sanity.config import SanityConfig
    from isic_tracking.stages.visualize.config import VisualizeConfig

    for cls in (FiltersConfig, VisualizeConfig, SanityConfig, LayersConfig, EvaluateConfig):
        assert issubclass(cls, AnalysisSettings)
        assert cls().model_uri == DEFAULT_MODEL_URI
        assert [f.name for f in dataclasses.fields(cls)][0] == "model_uri"
    field = setting("a", "help", choices=("a", "b"))
    assert field.metadata == {"help": "help", "result": True, "choices": ["a", "b"]}
    with pytest.raises(IsicInputError, match="attribution='shap' is not one of conductance"):
        FiltersConfig(attribution="shap")
