"""Process-wide state a test must leave as it found it.

Every test runs in one process with the others, so a test (or a benchmark helper it calls)
that leaves a stub module in ``sys.modules``, an extra ``sys.path`` entry, another working
directory or torch's grad mode or default dtype changed breaks tests that run after it, far
from the cause: an empty ``IPython`` stub once made every matplotlib figure fail. The autouse
fixture in ``conftest.py`` takes a :func:`snapshot` before each test and fails the test whose
:func:`leaks` are not empty.
"""

from __future__ import annotations

import os
import sys
import types
from dataclasses import dataclass


@dataclass(frozen=True)
class Snapshot:
    """What :func:`leaks` compares: the module objects by name, ``sys.path``, the working
    directory, and torch's grad mode and default dtype (``None`` before torch is imported)."""

    modules: dict[str, int]
    path: tuple[str, ...]
    cwd: str
    torch_state: tuple[bool, str] | None


def _torch_state() -> tuple[bool, str] | None:
    torch = sys.modules.get("torch")
    if torch is None or not hasattr(torch, "get_default_dtype"):
        return None
    return torch.is_grad_enabled(), str(torch.get_default_dtype())


def snapshot() -> Snapshot:
    """The process-wide state now."""
    modules = {name: id(mod) for name, mod in list(sys.modules.items())}
    return Snapshot(modules, tuple(sys.path), os.getcwd(), _torch_state())


def is_stub(module: object) -> bool:
    """A module object made by hand (``types.ModuleType(...)``) rather than imported: no
    import spec, no file, not built in, not a private (underscore) name. Real modules have a
    spec; namespace and frozen ones too."""
    if not isinstance(module, types.ModuleType):
        return False
    name = getattr(module, "__name__", "")
    return (
        not name.startswith("_")  # C-made helper modules (Cython's _cython_3_2_5) have no spec
        and getattr(module, "__spec__", None) is None
        and getattr(module, "__file__", None) is None
        and name not in sys.builtin_module_names
        and name != "__main__"
    )


def leaks(before: Snapshot) -> list[str]:
    """One line per piece of state that differs from ``before`` in a way that harms later
    tests: a stub package added, or a stub swapped in for a module, ``sys.path`` entries added, the working directory
    or torch's grad mode / default dtype changed. Real modules a test imported are fine."""
    found = []
    modules = dict(sys.modules)
    for name, module in modules.items():
        if before.modules.get(name) == id(module) or not is_stub(module):
            continue
        # Extension modules make spec-less submodules of their own (cv2.utils.fs): a stub
        # counts when it replaced a module or its top-level package is a stub too.
        replaced = name in before.modules
        if replaced or is_stub(modules.get(name.split(".")[0])):
            found.append(f"stub module left in sys.modules: {name!r} (restore or delete it)")
    added = [p for p in sys.path if p not in before.path]
    if added:
        found.append(f"sys.path entries left behind: {added}")
    if os.getcwd() != before.cwd:
        found.append(f"working directory changed: {before.cwd} -> {os.getcwd()}")
    now = _torch_state()
    if before.torch_state is not None and now != before.torch_state:
        found.append(f"torch (grad enabled, default dtype) changed: {before.torch_state} -> {now}")
    return found
