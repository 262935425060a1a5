"""The three dependency lists (pyproject, conda.yaml, python_env.yaml) and MLproject agree."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _names(reqs: list[str]) -> dict[str, str]:
    out = {}
    for r in reqs:
        name = re.split(r"[<>=!~ \[]", r, maxsplit=1)[0].lower().replace("_", "-")
        out[name] = r.replace(" ", "")
    return out


def pyproject_deps() -> dict[str, str]:
    return _names(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])


def test_conda_yaml_matches_pyproject() -> None:
    conda = yaml.safe_load((ROOT / "conda.yaml").read_text())
    pip = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    assert _names(pip) == pyproject_deps()


def test_python_env_matches_pyproject() -> None:
    env = yaml.safe_load((ROOT / "python_env.yaml").read_text())
    assert _names(env["dependencies"]) == pyproject_deps()


def test_mlproject_entry_points_have_modules() -> None:
    project = yaml.safe_load((ROOT / "MLproject").read_text())
    assert project["conda_env"] == "conda.yaml"
    assert "main" in project["entry_points"]
    for name, ep in project["entry_points"].items():
        module = re.search(r"python -m entrypoints\.(\w+)", ep["command"]).group(1)
        assert (ROOT / "entrypoints" / f"{module}.py").is_file(), name
        for param in ep.get("parameters", {}):
            assert f"{{{param}}}" in ep["command"], f"{name}: parameter {param} unused"


def test_readme_commands_match_ci() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    for cmd in ('pip install -e ".[dev]"', "pytest"):
        assert cmd in readme and cmd in ci
