"""docs/architecture.md stays true: every module, package and file it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAP = ROOT / "docs" / "architecture.md"


def named_paths(text: str) -> list[str]:
    """Every `backticked` repository path (with a slash, no spaces or wildcards) in ``text``."""
    found = re.findall(r"`([A-Za-z0-9_./<>*-]+/[A-Za-z0-9_./<>*-]*)`", text)
    return [p for p in found if "<" not in p and "*" not in p and not p.startswith("models:")]


def test_the_map_names_only_paths_that_exist():
    paths = named_paths(MAP.read_text())
    assert len(paths) > 20  # the map names the packages and modules it describes
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert missing == [], f"docs/architecture.md names paths that do not exist: {missing}"


def test_every_stage_folder_and_package_is_on_the_map():
    text = MAP.read_text()
    packages = [p.parent for p in (ROOT / "isic_tracking").glob("*/__init__.py")]
    stages = [p.parent for p in (ROOT / "isic_tracking" / "stages").glob("*/__init__.py")]
    for folder in packages + stages:
        rel = f"{folder.relative_to(ROOT)}/"
        assert f"`{rel}`" in text, f"{rel} is not on the map"


def test_named_paths_are_found_and_placeholders_skipped():
    assert named_paths("`a/b.py` and `isic_tracking/stages/<stage>/` and `x`") == ["a/b.py"]
