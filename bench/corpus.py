"""Where the benchmarks find the speech corpus: the folder named by ``$VMGRADE_CORPUS``.

The corpus (clips with reference transcripts, telephone copies, a ``manifest.csv``) is
not part of the repository; each benchmark skips what needs it when it is not set.
"""

from __future__ import annotations

import os
from pathlib import Path

CORPUS_ENV = "VMGRADE_CORPUS"
UNSET = Path(f"${CORPUS_ENV} (not set)")  # a path that never exists: callers report it missing


def corpus_dir() -> Path:
    """The corpus folder, or a path that does not exist when ``$VMGRADE_CORPUS`` is unset."""
    env = os.environ.get(CORPUS_ENV)
    return Path(env) if env else UNSET
