"""Old formats: one warning per kind, naming the removal date."""

from __future__ import annotations

import pytest

from isic_tracking.deprecation import LEGACY_UNTIL, forget_warnings, warn_legacy
from isic_tracking.log import get_logger


def test_each_kind_of_old_format_is_warned_about_once(caplog: pytest.LogCaptureFixture) -> None:
    log = get_logger("isic_tracking.test")
    with caplog.at_level("WARNING", logger="isic_tracking"):
        assert warn_legacy(log, "a", "old thing a found")
        assert not warn_legacy(log, "a", "old thing a found")
        assert warn_legacy(log, "b", "old thing b found")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        f"old thing a found (deprecated: read until {LEGACY_UNTIL})",
        f"old thing b found (deprecated: read until {LEGACY_UNTIL})",
    ]
    forget_warnings()
    assert warn_legacy(log, "a", "old thing a found")  # warned again after forgetting
