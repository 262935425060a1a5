"""Old formats still read, each until one removal date, with one warning per process.

Runs, checkpoints and registered versions made by older versions of this project keep
loading, so a user's earlier results stay usable; each reader of such an old format calls
:func:`warn_legacy` when it meets one, which says once (per kind of old format) what was
found, that it is read only until :data:`LEGACY_UNTIL`, and what to do instead.
"""

from __future__ import annotations

import logging

#: after this date the readers of old formats (and old option names) may be removed
LEGACY_UNTIL = "2027-06-30"

_warned: set[str] = set()


def warn_legacy(log: logging.Logger, key: str, message: str) -> bool:
    """Log ``message`` once per process for ``key`` (one kind of old format), as one line
    ending with the removal date. Returns whether it was logged now."""
    if key in _warned:
        return False
    _warned.add(key)
    log.warning(f"{message} (deprecated: read until {LEGACY_UNTIL})")
    return True


def forget_warnings() -> None:
    """Forget which warnings were given, so the next use warns again (tests)."""
    _warned.clear()
