"""Progress on long steps (a model's first conversion, its load, several files): on stderr, off by default.

Stages call :func:`notice` and :func:`bar` where a user would otherwise wait in silence;
only a shell turns them on (:func:`enable`: the CLI does on a terminal, unless ``--quiet``),
so the library, batch workers and the web server print nothing. Bars are tqdm's (as
openai-whisper's own are), on stderr, so JSON on stdout stays clean.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

_enabled = False


def enable(on: bool = True) -> None:
    """Turn progress output on (or off) for this process."""
    global _enabled
    _enabled = on


def enabled() -> bool:
    """Whether progress output is on."""
    return _enabled


def notice(text: str) -> None:
    """One line on stderr when progress is on, printed above any bar."""
    if _enabled:
        from tqdm import tqdm

        tqdm.write(f"vmgrade: {text}", file=sys.stderr)


def bar(iterable: Iterable | None = None, *, total: float | None = None, desc: str = "", unit: str = "it",
        leave: bool = False):
    """A tqdm bar on stderr, disabled (a no-op wrapper) when progress is off.

    Parameters
    ----------
    iterable : iterable, optional
    total : float, optional
        Steps in all (default ``len(iterable)``).
    desc : str
        What is being done ("converting base").
    unit : str
        What a step is ("file", "layer").
    leave : bool
        Keep the finished bar on screen (default: cleared, so it never goes stale).
    """
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, file=sys.stderr,
                disable=not _enabled, dynamic_ncols=True)

