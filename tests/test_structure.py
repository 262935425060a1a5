"""The package's shape: short functions, thin entry points, no import cycle, MLflow only at
the edges, no issue numbers in the code, and every module with logic exercised by a test that
imports it. A module holds one concept, whatever its length; a function does one job, in at
most :data:`MAX_FUNCTION_LINES` lines of code (its docstring not counted)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("isic_tracking", "entrypoints")
MAX_FUNCTION_LINES = 80
MAX_ENTRYPOINT_LINES = 80
#: the scale-out machinery is an edge too: it elects parent runs through MLflow tags
MLFLOW_ALLOWED = ("isic_tracking/tracking/", "isic_tracking/scaleout/", "entrypoints/")
#: the science, which reads without the scale-out machinery (workers, storages, liveness)
SCIENCE = (
    "isic_tracking/data/",
    "isic_tracking/models/",
    "isic_tracking/train/",
    "isic_tracking/interpret/",
)
#: a stage's runner is its MLflow side (isic_tracking/stages/<stage>/runner.py); a stage whose
#: logging has several parts keeps each in a ``runner_<part>.py`` beside it
STAGE_RUNNER = re.compile(r"isic_tracking/stages/[a-z_]+/runner(_[a-z_]+)?\.py")


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the two packages."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(path: Path, *, top_level_only: bool) -> set[str]:
    """Modules imported by a file (absolute names); function-level imports only if asked."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pkg import mod` imports the submodule; `from pkg import name` the package
            subs = {f"{node.module}.{a.name}" for a in node.names}
            found |= {s for s in subs if s in MODULES}
            if not subs <= MODULES.keys():
                found.add(node.module)
    return found


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def _code_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function from ``def`` to its end, less its docstring."""
    n = node.end_lineno - node.lineno + 1  # type: ignore[operator]
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        if isinstance(first.value.value, str):
            n -= first.end_lineno - first.lineno + 1  # type: ignore[operator]
    return n


@pytest.mark.parametrize("name", sorted(m for m in MODULES if m.startswith("isic_tracking")))
def test_every_function_is_short(name: str) -> None:
    tree = ast.parse(MODULES[name].read_text())
    long = [
        f"{node.name} ({_code_lines(node)} lines)"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and _code_lines(node) > MAX_FUNCTION_LINES
    ]
    assert not long, f"{MODULES[name].relative_to(ROOT)}: cut {long} at their seams"


def test_function_length_counts_code_not_docstring() -> None:
    source = 'def f():\n    """Doc\n    more."""\n    x = 1\n    return x\n'
    node = ast.parse(source).body[0]
    assert isinstance(node, ast.FunctionDef) and _code_lines(node) == 3


@pytest.mark.parametrize("name", sorted(MODULES))
def test_code_cites_no_issue_number(name: str) -> None:
    """A reader of the code has no issue tracker: docstrings and comments say what and why."""
    hits = re.findall(r"\bissue #?\d+", MODULES[name].read_text(), flags=re.IGNORECASE)
    assert not hits, f"{MODULES[name].relative_to(ROOT)} cites {hits}: say what and why instead"


@pytest.mark.parametrize(
    "name",
    sorted(m for m in MODULES if m.startswith("entrypoints.") and not m.split(".")[-1][0] == "_"),
)
def test_entry_point_is_thin(name: str) -> None:
    n = _lines(MODULES[name])
    assert n <= MAX_ENTRYPOINT_LINES, (
        f"{MODULES[name].relative_to(ROOT)} has {n} lines: move the logic into a runner"
    )


def test_no_import_cycle() -> None:
    """Module-level imports between the project's modules form no cycle."""
    graph = {
        name: {m for m in _imports(path, top_level_only=True) if m in MODULES and m != name}
        for name, path in MODULES.items()
    }
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_only_tracking_and_entrypoints_import_mlflow() -> None:
    """The science code takes tensors, models and DataFrames: testable without a tracker;
    MLflow lives in tracking/, scaleout/ (parent-run election), the stage runners
    (``stages/<stage>/runner.py`` and its parts ``stages/<stage>/runner_<part>.py``) and the
    entry points."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in MODULES.values()
        if not str(path.relative_to(ROOT)).startswith(MLFLOW_ALLOWED)
        and not STAGE_RUNNER.fullmatch(str(path.relative_to(ROOT)))
        and any(
            m == "mlflow" or m.startswith("mlflow.") for m in _imports(path, top_level_only=False)
        )
    ]
    assert offenders == [], (
        f"mlflow imported outside tracking/, scaleout/ and entrypoints/: {offenders}"
    )


def test_the_science_does_not_import_the_scaleout_machinery() -> None:
    """data/, models/, train/ and interpret/ read without the scale-out machinery: a stage's
    runner hands it in (e.g. ``SearchObjective(..., scratch=owned_scratch)``)."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in MODULES.values()
        if str(path.relative_to(ROOT)).startswith(SCIENCE)
        and any(
            m.startswith("isic_tracking.scaleout") for m in _imports(path, top_level_only=False)
        )
    ]
    assert offenders == [], f"the science imports isic_tracking.scaleout: {offenders}"


def _has_logic(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    return any(
        isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) for n in tree.body
    )


def test_every_module_with_logic_is_imported_by_a_test() -> None:
    """Tests mirror the package: each module that defines functions or classes has its
    mirrored test file (``isic_tracking/a/b.py`` -> ``tests/a/test_b.py``), or a test module
    importing it directly or running it by name (``python -m entrypoints.x``)."""
    tested: set[str] = set()
    for path in (ROOT / "tests").rglob("*.py"):
        tested |= _imports(path, top_level_only=False)
        # an entry point run as `python -m entrypoints.x` is named in a string
        tree = ast.parse(path.read_text())
        tested |= {
            n.value
            for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str)
        }

    def mirrored(name: str) -> bool:  # isic_tracking/a/b.py -> tests/a/test_b.py
        parts = name.split(".")
        sub = parts[1:-1] if parts[0] == "isic_tracking" else parts[:-1]
        return (ROOT / "tests" / Path(*sub, f"test_{parts[-1]}.py")).is_file()

    untested = sorted(
        name
        for name, path in MODULES.items()
        if path.name != "__init__.py"
        and _has_logic(path)
        and name not in tested
        and not mirrored(name)
    )
    assert untested == [], f"modules no test imports: {untested}"
