"""The C allocator's handling of large tensors on CPU: keep freed memory for the next batch.

glibc serves every allocation above its mmap threshold (at most 32 MiB) with a fresh ``mmap``
and gives it back with ``munmap`` when it is freed. A forward pass of a ResNet50 on a batch of
32 images at 224 px allocates feature maps of about 100 MB each, so every batch maps them
anew and the kernel zeroes each page again on its first touch: on a 2-core Xeon, 6 batches
cost 11.4 s of system time next to 19.9 s of user time, and took 1.6x the wall time they
take with the memory kept (docs/benchmarks.md, "The C allocator").

:func:`keep_freed_memory` turns that off for the process (``mallopt``: no mmap, and freed
memory at the top of the heap is kept up to 2 GiB), so the next batch reuses the pages.
The price is a resident set that stays near its peak instead of falling between batches.
Every entry point calls it (:func:`entrypoints._common.run_main`); a user who sets glibc's
own ``MALLOC_*`` variables or preloads another allocator keeps their choice, and
``ISIC_KEEP_FREED_MEMORY=0`` turns it off.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Mapping

from isic_tracking.config import env_flag

#: glibc's ``mallopt`` parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
#: free memory at the top of the heap kept rather than given back (mallopt takes an int)
TRIM_THRESHOLD = 2**31 - 1
#: the environment variable that turns it off
OPT_OUT = "ISIC_KEEP_FREED_MEMORY"
#: glibc's own tunables: set by the user, they win
GLIBC_VARIABLES = ("MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def why_not_kept(environ: Mapping[str, str] = os.environ) -> str | None:
    """Why :func:`keep_freed_memory` leaves the allocator alone (None: it applies, where the
    C library is glibc)."""
    if not env_flag(environ, OPT_OUT):
        return f"{OPT_OUT}={environ[OPT_OUT]}"
    if not sys.platform.startswith("linux"):
        return "not Linux"
    for name in GLIBC_VARIABLES:
        if name in environ:
            return f"{name} is set"
    if any(a in environ.get("LD_PRELOAD", "") for a in ("jemalloc", "tcmalloc", "mimalloc")):
        return "another allocator is preloaded"
    return None


def keep_freed_memory() -> bool:
    """Make this process's glibc keep freed memory for reuse instead of unmapping it; True
    when the settings took effect (see the module docstring for when they are skipped)."""
    if why_not_kept() is not None:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    if not hasattr(libc, "gnu_get_libc_version"):  # musl and others: no such mallopt
        return False
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
