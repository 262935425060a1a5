"""The guard against process-wide state left behind by a test (tests/guard.py)."""

from __future__ import annotations

import os
import sys
import types

import pytest
import torch

from tests.guard import is_stub, leaks, snapshot


def test_a_planted_stub_module_is_caught_and_named():
    before = snapshot()
    stub = types.ModuleType("IPython")
    sys.modules["IPython_guard_probe"] = stub
    try:
        found = leaks(before)
    finally:
        del sys.modules["IPython_guard_probe"]
    assert len(found) == 1 and "'IPython_guard_probe'" in found[0]
    assert leaks(before) == []


def test_a_stub_swapped_in_for_a_real_module_is_caught():
    before = snapshot()
    real = sys.modules["json"]
    sys.modules["json"] = types.ModuleType("json")
    try:
        found = leaks(before)
    finally:
        sys.modules["json"] = real
    assert any("'json'" in line for line in found)


def test_real_imports_are_not_leaks():
    before = snapshot()
    import colorsys  # noqa: F401  (a real module, possibly imported for the first time)

    assert not is_stub(sys.modules["colorsys"]) and not is_stub(sys)
    assert leaks(before) == []


def test_sys_path_cwd_and_torch_globals_are_caught(tmp_path):
    before = snapshot()
    sys.path.insert(0, str(tmp_path))
    cwd = os.getcwd()
    os.chdir(tmp_path)
    torch.set_default_dtype(torch.float64)
    try:
        found = leaks(before)
    finally:
        torch.set_default_dtype(torch.float32)
        os.chdir(cwd)
        sys.path.remove(str(tmp_path))
    assert len(found) == 3, found
    assert "sys.path" in found[0] and "working directory" in found[1] and "torch" in found[2]


def test_the_lucent_helper_leaves_no_ipython_stub_behind():
    """bench/featvis_lucent.py once left an empty IPython in sys.modules when lucent was not
    set up, and every matplotlib figure made after it failed."""
    from bench.featvis_lucent import import_lucent

    before = snapshot()
    try:
        import_lucent()
    except SystemExit:
        pass  # lucent not set up for the bench here: the path this test is about
    assert leaks(before) == []
    if "IPython" in sys.modules:
        assert not is_stub(sys.modules["IPython"])
    import matplotlib.pyplot as plt

    fig = plt.figure()  # matplotlib reads IPython.version_info where IPython is imported
    plt.close(fig)


@pytest.mark.parametrize("name", ["sys", "builtins"])
def test_built_in_modules_are_not_stubs(name):
    assert not is_stub(sys.modules[name])
