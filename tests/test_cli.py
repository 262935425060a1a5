"""Every stage's command line: ``--help`` is cheap (imports neither torch nor mlflow), every
option has help text and a default, and every ``--flag`` the code tells a user about exists."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENTRY_POINTS = sorted(
    p.stem for p in (ROOT / "entrypoints").glob("*.py") if not p.stem.startswith("_")
)
FLAG = re.compile(r"(?<![\w-])--([a-z][a-z0-9_-]*)")
#: flags of other programs that messages may quote (mlflow, torchrun, pip, pytest)
FOREIGN_CONTEXT = re.compile(r"\b(mlflow (server|ui|run|models)|torchrun|pip|pytest)\b")

_PROBE = """
import contextlib, io, json, runpy, sys
sys.argv = [{name!r}, "--help"]
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    try:
        runpy.run_module({module!r}, run_name="__main__")
    except SystemExit:
        pass
heavy = sorted(m for m in ("torch", "mlflow", "torchvision", "timm", "optuna") if m in sys.modules)
print(json.dumps({{"help": buf.getvalue(), "heavy": heavy}}))
"""


@cache
def help_of(name: str) -> dict:
    """``--help`` of one entry point, and which heavy modules printing it imported."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(name=name, module=f"entrypoints.{name}")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_help_imports_no_heavy_module(name: str) -> None:
    got = help_of(name)
    assert got["help"].startswith("usage:"), got["help"][:200]
    assert got["heavy"] == [], f"`{name} --help` imported {got['heavy']}: import them lazily"


def _options(help_text: str) -> list[tuple[str, str]]:
    """(flag, its help text) for each option of an argparse help page."""
    body = help_text.split("options:", 1)[-1]
    out: list[tuple[str, str]] = []
    for line in body.splitlines():
        m = re.match(r"^  (--[a-z][a-z0-9_-]*)", line)
        if m:
            out.append((m.group(1), line[m.end() :]))
        elif out and line.startswith("     "):
            out[-1] = (out[-1][0], out[-1][1] + " " + line.strip())
    return [(f, " ".join(h.split())) for f, h in out if f != "--help"]


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_every_option_has_help_and_one_default(name: str) -> None:
    for flag, text in _options(help_of(name)["help"]):
        assert re.search(r"[a-z]{3}", text.split("(default", 1)[0]), f"{name} {flag}: no help"
        assert text.count("(default") <= 1, f"{name} {flag}: default shown twice: {text}"
        assert "(default" in text or "required" in text, f"{name} {flag}: no default shown"


def _user_strings() -> list[tuple[str, int, str]]:
    """(file, line, text) of every string literal in the package and the entry points."""
    out = []
    for pkg in ("isic_tracking", "entrypoints"):
        for path in (ROOT / pkg).rglob("*.py"):
            tree = ast.parse(path.read_text())
            parts = set()  # an f-string is read whole: its pieces share one context
            for node in ast.walk(tree):
                if isinstance(node, ast.JoinedStr):
                    pieces = [v.value if isinstance(v, ast.Constant) else "{}" for v in node.values]
                    parts |= {id(v) for v in node.values}
                    out.append((str(path.relative_to(ROOT)), node.lineno, "".join(pieces)))
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and id(node) not in parts
                ):
                    out.append((str(path.relative_to(ROOT)), node.lineno, node.value))
    return out


def test_every_flag_named_in_a_message_exists() -> None:
    known = {flag for name in ENTRY_POINTS for flag, _ in _options(help_of(name)["help"])}
    known.add("--help")
    unknown = [
        f"{file}:{line}: --{flag}"
        for file, line, text in _user_strings()
        if not FOREIGN_CONTEXT.search(text)
        for flag in FLAG.findall(text)
        if f"--{flag}" not in known
    ]
    assert unknown == [], f"messages name flags no entry point has: {unknown}"
