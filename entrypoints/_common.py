"""Shared entry-point plumbing: one help layout, user errors as one clear line and exit code 2.

Entry points import only this, argparse and their config dataclass at module level; the
runner (torch, MLflow) is imported inside ``_main``, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from isic_tracking import log
from isic_tracking.allocator import keep_freed_memory
from isic_tracking.config import add_config_args, config_from_args, parse_bool, parse_int
from isic_tracking.errors import IsicInputError


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the module docstring's line breaks and shows each option's default once."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            "(default" in text
            or action.default is argparse.SUPPRESS
            or action.required
            or not action.option_strings
            or action.nargs == 0  # --help, flags
        ):
            return text
        return f"{text} (default: %(default)r)".strip()


class _Experiment(argparse.Action):
    """``--experiment NAME``: sets ``MLFLOW_EXPERIMENT_NAME`` for this process and the stages
    it starts, so the stage's code needs no argument for it."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        if values:
            os.environ["MLFLOW_EXPERIMENT_NAME"] = str(values)


def parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """The ArgumentParser of one stage, with :class:`HelpFormatter` and ``--experiment``."""
    p = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=HelpFormatter)
    p.add_argument(
        "--experiment",
        action=_Experiment,
        default=argparse.SUPPRESS,
        metavar="NAME",
        help="MLflow experiment of the runs (default: $MLFLOW_EXPERIMENT_NAME, else the "
        "experiment of `mlflow run`, else isic-<task>, e.g. isic-binary)",
    )
    return p


@dataclass(frozen=True)
class ConfigStage:
    """A stage whose command line is one config dataclass and whose work is one runner
    (train, search, filters, visualize, sanity): ``--<field>`` per config field, YAML via
    ``--config``, then ``runner(config)``.

    Args:
        prog: the stage's name.
        doc: its description (the entry point's docstring).
        config: the config dataclass.
        runner: ``"module:function"``, imported only after parsing (``--help`` stays instant).
    """

    prog: str
    doc: str | None
    config: type
    runner: str

    def build_parser(self) -> argparse.ArgumentParser:
        return add_config_args(parser(self.prog, self.doc), self.config)

    def main(self, argv: Sequence[str] | None = None) -> int:
        return run_main(self._run, argv)

    def _run(self, argv: Sequence[str] | None) -> int:
        cfg = config_from_args(self.config, self.build_parser().parse_args(argv))
        module, name = self.runner.split(":")
        getattr(importlib.import_module(module), name)(cfg)
        return 0


def run_main(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Set up the stage messages (:func:`isic_tracking.log.setup`) and call ``main``; an
    :class:`IsicInputError` prints ``error: <message>`` and returns 2.

    Under ``mlflow run`` (``MLFLOW_RUN_ID`` set) any error is also recorded on the stage's run
    as tag ``isic.error``, so the ``main`` pipeline can name it in its one-line failure.
    Freed tensor memory is kept for the next batch (:mod:`isic_tracking.allocator`).
    """
    log.setup()
    run_id = os.environ.get("MLFLOW_RUN_ID")  # read now: mlflow.end_run() unsets it
    try:
        keep_freed_memory()
        return main(argv)
    except IsicInputError as err:
        _record_error(run_id, str(err))
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        _record_error(run_id, f"{type(err).__name__}: {err}")
        raise


def _record_error(run_id: str | None, message: str) -> None:
    if not run_id:
        return
    try:
        from mlflow.tracking import MlflowClient

        from isic_tracking.tracking import tag

        MlflowClient().set_tag(run_id, tag.ERROR, message[:4000])
    except Exception:  # the store itself may be what failed: the message is printed anyway
        pass


def add_init_args(p: argparse.ArgumentParser) -> None:
    """``--weights`` and ``--init`` of the pipelines (``main``, ``thesis``): where each
    architecture's weights start (:func:`isic_tracking.models.init.init_for_arch`)."""
    p.add_argument(
        "--weights",
        type=optional,
        default=None,
        help="local ImageNet weights: a file, a torch-cache folder or arch=path pairs (as --init)",
    )
    p.add_argument(
        "--init",
        type=optional,
        default=None,
        help="where each model's weights start: pretrain (the offline base of the pretrain "
        "stage, demo's default), imagenet (torch cache, full's default), random, a weights "
        "file, a folder in the torch-cache layout (each arch's torchvision file), models:/..., "
        "or arch=value pairs (e.g. alexnet=/w/alexnet.pth,vgg16=/w/vgg16.pth)",
    )


def add_test_set_args(p: argparse.ArgumentParser, each: str = "") -> None:
    """``--test_dataset``, ``--test_root`` and ``--test_fraction`` of the pipelines: the test
    set ``prepare`` makes before any fold (see :mod:`isic_tracking.data.testset`); ``each``
    is appended to the first two's help (thesis: per-task pairs)."""
    p.add_argument(
        "--test_dataset",
        type=optional,
        default=None,
        help=f"layout of a separate test set, e.g. isic2016-test (with --test_root){each}",
    )
    p.add_argument(
        "--test_root", type=optional, default=None, help=f"data folder of the test set{each}"
    )
    p.add_argument(
        "--test_fraction",
        type=optional_float,
        default=None,
        help="data without a test set (no test_dataset, no split=test rows): hold out this "
        "fraction of the training rows, stratified and grouped, before any fold; 0: none "
        "(default: the profile's, 0.15)",
    )


def str2bool(v: str | bool) -> bool:
    """argparse type for MLproject booleans ('true'/'false')."""
    return parse_bool(v)


def optional(v: str) -> str | None:
    """argparse type: '' and 'none' mean not given (MLproject cannot pass None)."""
    return None if v in ("", "none", "None", "null") else v


def optional_float(v: str) -> float | None:
    """argparse type: a float, or '' / 'none' for not given."""
    return None if optional(v) is None else float(v)


def count(v: str) -> int:
    """argparse type for integers; MLproject may pass them as '5.0'."""
    return parse_int(v)
