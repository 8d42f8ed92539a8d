"""The history store: every graded recording, in a database, for trends per rep.

SQLAlchemy 2 models on one declarative ``Base`` (the web app's tables derive
from it too), migrated by the alembic revisions packaged in
``vmgrade/migrations/``. SQLite in the data directory by default; any
SQLAlchemy URL (PostgreSQL) by ``$VMGRADE_DB_URL`` or an explicit ``url``.
"""

from __future__ import annotations

import hashlib
import json
import os

from .scoring import Rubric, load_rubric

HASH_CHUNK_BYTES = 1 << 20  # content_hash reads files in 1 MiB pieces
RUBRIC_VERSION_CHARS = 16  # hex digits of the rubric digest kept (64 bits)


def content_hash(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes, read in chunks (hex, 64 characters).

    Keys a recording independently of its name or location: a renamed or
    copied file has the same hash.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def rubric_version(rubric: Rubric | str | os.PathLike | None = None) -> str:
    """A stable hash of what a rubric grades by (hex, 16 characters).

    Covers the version label, letter bands, dimension labels and weights,
    thresholds and points: the content of :class:`vmgrade.scoring.Rubric`
    that changes a report. Leaves out the file's path, its comments and
    formatting, and the thresholds' cited sources, so a moved or re-commented
    rubric keeps its version while any changed number gets a new one.

    Parameters
    ----------
    rubric : Rubric, str, PathLike or None
        A loaded rubric, a rubric TOML path, or None for the packaged default.
    """
    if not isinstance(rubric, Rubric):
        rubric = load_rubric(rubric)
    content = {
        "version": rubric.version,
        "letters": rubric.letters,
        "labels": rubric.labels,
        "weights": rubric.weights,
        "thresholds": rubric.thresholds,
        "points": rubric.points,
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:RUBRIC_VERSION_CHARS]
