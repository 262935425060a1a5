"""Entry-point plumbing: a user error is one line on stderr and exit code 2; messages print."""

from __future__ import annotations

import dataclasses
import logging
import os

from entrypoints._common import ConfigStage, count, optional, run_main, str2bool
from isic_tracking.errors import IsicInputError
from isic_tracking.log import get_logger


def test_user_error_is_one_line_and_exit_code_2(capsys):
    def main(argv):
        raise IsicInputError(f"layer {argv[0]!r} does not exist")

    assert run_main(main, ["x"]) == 2
    assert capsys.readouterr().err == "error: layer 'x' does not exist\n"
    assert run_main(lambda argv: 0, []) == 0


def test_run_main_sets_up_the_stage_messages():
    root = logging.getLogger("isic_tracking")
    saved = list(root.handlers), root.level, root.propagate
    root.handlers = [h for h in root.handlers if not getattr(h, "_isic", False)]
    try:
        run_main(lambda argv: 0, [])
        run_main(lambda argv: 0, [])
        assert sum(getattr(h, "_isic", False) for h in root.handlers) == 1  # once
        assert get_logger("entrypoints.filters").isEnabledFor(logging.INFO)
    finally:
        root.handlers, root.level, root.propagate = saved


def test_mlproject_argument_types():
    assert str2bool("true") is True and str2bool("false") is False
    assert optional("") is None and optional("none") is None and optional("abc") == "abc"
    assert count("5.0") == 5


@dataclasses.dataclass
class _Cfg:
    steps: int = dataclasses.field(default=3, metadata={"help": "how many steps"})
    name: str = dataclasses.field(default="a", metadata={"help": "a name"})


RECEIVED: list[_Cfg] = []


def _runner(cfg: _Cfg) -> None:
    RECEIVED.append(cfg)


def test_config_stage_parses_into_the_config_and_calls_its_runner(tmp_path, capsys):
    stage = ConfigStage("demo", "A demo stage.", _Cfg, f"{__name__}:_runner")
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("steps: 7\nname: from-yaml\n")
    RECEIVED.clear()
    assert stage.main(["--config", str(yaml_file), "--name", "cli"]) == 0
    assert RECEIVED == [_Cfg(steps=7, name="cli")]  # YAML, then the CLI on top
    help_text = stage.build_parser().format_help()
    assert "how many steps (default: 3)" in help_text and help_text.startswith("usage: demo")


def test_experiment_flag_sets_the_experiment_name_for_every_stage(monkeypatch):
    """``--experiment`` of any stage (the shared parser) sets MLFLOW_EXPERIMENT_NAME, which
    :func:`isic_tracking.tracking.runs.experiment_id` and the stages it starts read; the
    stage's own arguments are unchanged."""
    from entrypoints import main as main_ep
    from isic_tracking.tracking.chain import ChainOptions

    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "before")  # restored after the test
    args = main_ep.build_parser().parse_args(["--experiment", "my-study", "--task", "binary"])
    assert ChainOptions(**vars(args)).task == "binary"
    assert os.environ["MLFLOW_EXPERIMENT_NAME"] == "my-study"
    assert "--experiment NAME" in main_ep.build_parser().format_help()
