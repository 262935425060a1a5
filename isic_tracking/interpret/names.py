"""Names the analysis stages derive from layer and group names: artifact paths, metric keys."""

from __future__ import annotations

import re


def safe_name(name: str) -> str:
    """A layer / group name as one artifact path part (``layer4.1`` stays, ``a/b c`` -> ``a_b_c``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def metric_key(key: str) -> str:
    """An MLflow metric name: alphanumerics, ``_ - . /`` and spaces; anything else -> ``_``."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]+", "_", key)
