"""Dataclass configs: defaults in code, optional YAML file, CLI overrides; logged once as params.

``add_config_args`` turns a dataclass into argparse options (same names as the MLproject
parameters), ``config_from_args`` applies YAML first and explicit CLI values on top.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml

from isic_tracking.deprecation import LEGACY_UNTIL
from isic_tracking.errors import IsicInputError
from isic_tracking.log import get_logger

log = get_logger(__name__)
C = TypeVar("C")
_NONE = ("", "none", "None", "null")
#: when the deprecated old names of renamed fields (a config's ``renamed``) stop being read
RENAMED_UNTIL = LEGACY_UNTIL


def parse_bool(v: str | bool) -> bool:
    if isinstance(v, bool):
        return v
    if v.lower() in ("1", "true", "yes", "y", "on"):
        return True
    if v.lower() in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {v!r}")


def env_flag(environ: Mapping[str, str], name: str, default: bool = True) -> bool:
    """A yes/no environment variable, read like a boolean flag (:func:`parse_bool`); unset or
    empty means ``default``. Any other word is an error naming the variable, not a silent
    default: a user who typed ``ISIC_KEEP_FREED_MEMORY=disable`` learns it did nothing."""
    value = environ.get(name, "").strip()
    if not value:
        return default
    try:
        return parse_bool(value)
    except argparse.ArgumentTypeError:
        raise IsicInputError(
            f"{name}={environ[name]!r} is not a yes/no value: use 1/0, true/false, yes/no "
            f"or on/off, or unset it (default: {'on' if default else 'off'})"
        ) from None


def parse_int(v: str) -> int:
    """'5' or '5.0' (MLproject float parameters) -> 5; '5.5' is an error."""
    f = float(v)
    if f != int(f):
        raise argparse.ArgumentTypeError(f"not an integer: {v!r}")
    return int(f)


def _arg_type(tp: Any) -> Any:
    """argparse type for a field annotation; Optional[X] accepts '' / 'none' as None."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)][0]
        base = _arg_type(inner)
        return lambda s: None if s in _NONE else base(s)
    if tp is bool:
        return parse_bool
    if tp is int:
        return parse_int
    if tp in (float, str):
        return tp
    return str


def _with_default(help: str, default: Any) -> str:
    """The help text with its default appended, unless the text already says it."""
    if "(default" in help:
        return help
    return f"{help} (default: {default!r})".strip()


def add_config_args(parser: argparse.ArgumentParser, cls: type) -> argparse.ArgumentParser:
    """One ``--<field>`` option per dataclass field (default: not given, so YAML can fill it)."""
    hints = typing.get_type_hints(cls)
    help_text = getattr(cls, "field_help", {})
    for f in fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        parser.add_argument(
            f"--{f.name}",
            type=_arg_type(hints[f.name]),
            default=argparse.SUPPRESS,
            choices=f.metadata.get("choices"),
            help=_with_default(help_text.get(f.name, f.metadata.get("help", "")), default),
        )
    for old, new in getattr(cls, "renamed", {}).items():
        parser.add_argument(
            f"--{old}",
            type=_arg_type(hints[new]),
            default=argparse.SUPPRESS,
            help=f"deprecated: the old name of --{new}, read until {RENAMED_UNTIL} (default: --{new})",
        )
    parser.add_argument("--config", default=None, help="YAML file of defaults (CLI wins)")
    return parser


def apply_renamed(cls: type, values: dict[str, Any], where: str = "") -> dict[str, Any]:
    """``values`` with each deprecated old key of ``cls.renamed`` (old name -> new name) moved
    to its new name, with a one-line warning naming the new key. The old name is read until
    :data:`RENAMED_UNTIL`. Both given: the same value (or the new one unset, as
    ``mlflow run`` passes an undeclared ``-P old=v`` after the declared new one) is fine,
    two different values are an error."""
    out = dict(values)
    for old, new in getattr(cls, "renamed", {}).items():
        if old not in out:
            continue
        value = out.pop(old)
        log.warning(
            f"{where}{old!r} is deprecated (read until {RENAMED_UNTIL}): use {new!r} instead"
        )
        if out.get(new) not in (None, value):
            raise IsicInputError(
                f"{where}{old}={value!r} and {new}={out[new]!r} disagree: give only {new}"
            )
        out[new] = value
    return out


def config_from_args(cls: type[C], args: argparse.Namespace) -> C:
    """Build ``cls`` from YAML (``--config``) overridden by the CLI options that were given."""
    values: dict[str, Any] = {}
    if getattr(args, "config", None):
        path = Path(args.config)
        if not path.is_file():
            raise IsicInputError(f"config file {path} does not exist")
        loaded = apply_renamed(cls, yaml.safe_load(path.read_text()) or {}, where=f"{path}: ")
        unknown = set(loaded) - {f.name for f in fields(cls)}
        if unknown:
            raise IsicInputError(f"{path}: unknown keys {sorted(unknown)}")
        values.update(loaded)
    given = apply_renamed(cls, vars(args), where="command line: ")
    values.update({k: v for k, v in given.items() if k in {f.name for f in fields(cls)}})
    cfg = cls(**values)
    check_choices(cfg, where=f"{args.config}: " if getattr(args, "config", None) else "")
    return cfg


def check_choices(cfg: Any, where: str = "") -> None:
    """Every field declared with ``choices`` holds one of them: a YAML value gets the same
    one-line error argparse gives on the command line."""
    for f in fields(cfg):
        allowed = f.metadata.get("choices")
        if allowed is not None and getattr(cfg, f.name) not in allowed:
            raise IsicInputError(
                f"{where}{f.name}={getattr(cfg, f.name)!r} is not one of {', '.join(allowed)}"
            )


def config_hash(
    cfg: Any, exclude: tuple[str, ...] = (), renamed: typing.Mapping[str, str] | None = None
) -> str:
    """Short stable hash of a config's fields (minus ``exclude``): identifies 'the same run'.
    ``renamed`` (old name -> new name): those fields are hashed under their old names, so
    renaming a field does not change the hash (a study or run found by it stays found)."""
    old_name = {new: old for old, new in (renamed or {}).items()}
    d = {old_name.get(k, k): v for k, v in dataclasses.asdict(cfg).items() if k not in exclude}
    return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]


def setting(
    default: Any, help: str, *, result: bool = True, choices: Sequence[str] | None = None
) -> Any:
    """A config field, the one way every stage declares one: its default, its --help text,
    ``result=False`` when it steers the run without changing its result (left out of the "same
    run" hash and of the logged params), and ``choices`` when only those values are allowed
    (argparse checks the command line, :func:`check_choices` a YAML value, with the same
    one-line error)."""
    metadata: dict[str, Any] = {"help": help, "result": result}
    if choices is not None:
        metadata["choices"] = list(choices)
    return dataclasses.field(default=default, metadata=metadata)


MODEL_URI_HELP = (
    "models:/name@alias, models:/name/version, runs:/<id>/checkpoint or pretrained:<arch>"
)
ALLOW_RANDOM_HELP = (
    "pretrained:<arch> URIs only: random init when no weights are cached (demos, tests)"
)
DEFAULT_MODEL_URI = "models:/isic-binary-smallcnn@champion"  # what the demo registers


@dataclass
class AnalysisSettings:
    """What every stage that analyses a registered model shares, first on its command line:
    the model (filters, visualize, sanity, layers, evaluate)."""

    model_uri: str = setting(DEFAULT_MODEL_URI, MODEL_URI_HELP)


def non_result_fields(cls: type) -> tuple[str, ...]:
    """The fields of a config declared with ``result=False``."""
    return tuple(f.name for f in fields(cls) if not f.metadata.get("result", True))


RANDOM, IMAGENET = "random", "imagenet"
INIT_HELP = (
    "where the weights start: random | imagenet (the torch cache) | a weights file "
    "(.pth/.safetensors) | models:/<name>@<alias> (a model of ours, e.g. isic-pretrain-<arch>); "
    "default: `weights` if given, else imagenet if `pretrained`, else random"
)


def is_model_uri(value: str) -> bool:
    """A model of ours as an init (``models:/...`` or ``runs:/...``), not a file."""
    return value.startswith(("models:/", "runs:/"))


def requested_init(init: str | None, weights: str | None, pretrained: bool) -> str:
    """The init asked for, from ``init`` or the older ``weights`` / ``pretrained`` options:
    ``random``, ``imagenet``, ``models:/...`` or a file path."""
    if init and init not in ("none", ""):
        return init
    if weights:
        return str(weights)
    return IMAGENET if pretrained else RANDOM


def default_metric(task: str) -> str:
    """The validation metric that picks the best epoch / trial when none is given."""
    return "val_roc_auc" if task == "binary" else "val_balanced_accuracy"


@dataclass
class FitSettings:
    """How one model is fit: the settings ``train`` (every fold) and ``search`` (every trial)
    share, defined once so a trial trains exactly as a fold would."""

    #: deprecated old field names still read (old -> new; see :func:`apply_renamed`)
    renamed: ClassVar[dict[str, str]] = {}
    #: per-stage --help text for shared fields (same default, stage-specific wording)
    field_help: ClassVar[dict[str, str]] = {}

    manifest: str | None = setting(None, "manifest CSV (default: the bundled synthetic data)")
    arch: str = setting("alexnet", "torchvision name or timm model (timm:<name>)")
    task: str = setting("binary", "binary | multiclass")
    image_size: int = setting(96, "input size (crop) fed to the model")
    seed: int = setting(0, "seed of folds, init, shuffling and augmentation")
    device: str = setting("auto", "auto | cpu | cuda | cuda:N | mps", result=False)
    pretrained: bool = setting(False, "ImageNet weights from the torch cache")
    weights: str | None = setting(None, "local ImageNet state-dict file (implies pretrained)")
    dropout: float = setting(0.1, "dropout before the new head")
    freeze: str = setting(
        "none", "none | features | all_but_head | upto:<layer> (e.g. upto:features.4)"
    )
    init: str | None = setting(None, INIT_HELP)
    init_file: str | None = setting(
        None, "local weights file of a models:/ init (fetched by the stage itself)", result=False
    )
    class_weights: str = setting("inverse", "inverse | none | comma-separated weights")
    grouped: bool = setting(True, "group folds by patient_id / lesion_id (StratifiedGroupKFold)")
    min_best_epoch: int = setting(1, "first epoch that may be a fold's best checkpoint (champion)")
    best_decimals: int | None = setting(
        None, "compare the monitor at this many decimals, ties by val_loss (none: exact)"
    )
    patience: int = setting(10, "early-stopping patience in epochs")
    amp: str = setting(
        "auto",
        "auto | bf16 | fp16 | none (auto: bf16/fp16 on GPU, none on CPU)",
        choices=["auto", "bf16", "fp16", "none"],
    )
    channels_last: bool = setting(False, "channels_last memory format")
    compile: bool = setting(False, "torch.compile the model")
    workers: int = setting(0, "data-loader worker processes", result=False)
    augment: str = setting("perez", "perez | flips | none")
    max_batches: int | None = setting(None, "cap batches per epoch (smoke tests)")
    deterministic: bool = setting(True, "deterministic kernels (exact resume on CPU)")
    monitor: str | None = setting(None, "val metric for best epoch / early stopping / champion")

    def init_request(self) -> str:
        """The init asked for: ``random``, ``imagenet``, ``models:/...`` or a file."""
        return requested_init(self.init, self.weights, self.pretrained)

    def resolved_metric(self) -> str:
        """The validation metric asked for (``monitor``), else the task's default."""
        return self.monitor or default_metric(self.task)

    def fit_settings(self) -> dict[str, Any]:
        """The shared settings as keyword arguments (of a :class:`TrainConfig`)."""
        return {f.name: getattr(self, f.name) for f in fields(FitSettings)}


@dataclass
class TrainConfig(FitSettings):
    """Everything the ``train`` stage needs; stored with the run and every checkpoint."""

    folds: int = setting(3, "number of cross-validation folds")
    epochs: int = setting(4, "maximum epochs per fold")
    batch_size: int = setting(32, "training batch size (per process under torchrun)")
    lr: float = setting(1e-4, "Adam learning rate")
    params_from: str | None = setting(None, "search run id whose best lr/batch_size/epochs to use")
    register_as: str | None = setting(None, "registered model name (default isic-<task>-<arch>)")
    resume: str | None = setting(
        None, "train run id to resume (default: auto-detect same config)", result=False
    )
    fold: int | None = setting(
        None, "train only this fold (separate workers, same parent run)", result=False
    )
    test_manifest: str | None = setting(None, "held-out test manifest (default: split=test rows)")
    work_dir: str = setting("outputs/train", "local resume states", result=False)
    keep_resume_state: bool = setting(
        False, "keep the resume states after a fold has finished (debugging)", result=False
    )


#: fields that do not change the result: excluded from the "same run" hash
NON_RESULT_FIELDS = non_result_fields(TrainConfig)
