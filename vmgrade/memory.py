"""Process memory: handing freed C-heap pages back to the system.

glibc keeps the pages of buffers that torch and numpy free (a transcription
frees some 250 MB of them) for later allocations; the process's resident size
keeps them until ``malloc_trim`` returns them. Calling it after each heavy
stage keeps the next stage's peak from stacking on the last one's leftovers
(docs/performance.md has the figures).
"""

from __future__ import annotations

import sys

_TRIM = None  # glibc's malloc_trim, False where there is none; looked up on first use


def release_freed_memory() -> None:
    """Hand the C heap's freed pages back to the system (glibc ``malloc_trim``; elsewhere a no-op)."""
    global _TRIM
    if _TRIM is None:
        _TRIM = False
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                _TRIM = ctypes.CDLL("libc.so.6").malloc_trim
            except (OSError, AttributeError):  # musl or another libc: nothing to trim with
                pass
    if _TRIM:
        _TRIM(0)
