"""Batch inputs: the audio files named on the command line, and the manifest of their context.

:func:`discover` turns files, folders and globs into a sorted list of paths;
:func:`read_manifest` reads the optional CSV that gives each file its rep,
recording time and call context (:class:`vmgrade.pipeline.Context`).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..audio import CHANNEL_CHOICES
from ..csvtable import raise_listed, read_table
from ..errors import VmgradeError
from ..pipeline import CONTEXT_FIELDS, Context
from ..timestamps import parse_timestamp

AUDIO_EXTENSIONS = frozenset({
    ".wav", ".wave", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".mp4", ".amr",
    ".webm", ".3gp", ".wma", ".aif", ".aiff", ".caf",
})  # fmt: skip
CONTEXT_COLUMNS = CONTEXT_FIELDS  # a manifest has one column per Context field
MANIFEST_COLUMNS = ("file", "rep_id", *CONTEXT_COLUMNS, "recorded_at", "channel")
# recorded_at outside these (UTC) is a typo; year 1 or 9999 overflowed later, in the history store
RECORDED_AT_RANGE = (datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(2200, 1, 1, tzinfo=timezone.utc))


class BatchError(VmgradeError):
    """The batch cannot start: bad manifest, no inputs, output folder in use."""

    code = "batch_error"


def discover(inputs: Sequence[str | os.PathLike], exclude: str | os.PathLike | None = None,
             unreadable: list[tuple[Path, OSError]] | None = None) -> list[Path]:
    """Audio files named by ``inputs``: files, folders (searched recursively) and globs.

    Parameters
    ----------
    inputs : sequence of str or PathLike
        A file is taken whatever its extension (a bad one gets an error
        record); a folder contributes its files with an audio extension
        (:data:`AUDIO_EXTENSIONS`), hidden files and folders left out; a glob
        (``*``, ``?``, ``[``; ``**`` recursive) expands to files and folders.
    exclude : str or PathLike, optional
        A folder to leave out (the batch's own output folder).
    unreadable : list, optional
        Receives ``(folder, OSError)`` for each folder that could not be
        listed (permissions, I/O error): its files are missing from the result.

    Returns
    -------
    list of Path
        Absolute, de-duplicated by path, sorted.

    Raises
    ------
    BatchError
        ``input_not_found`` when an input matches nothing.
    """
    skip = Path(exclude).resolve() if exclude is not None else None
    found: set[Path] = set()
    missing: list[str] = []
    for raw in inputs:
        text = os.fspath(raw)
        if glob.has_magic(text):
            matches = [Path(m) for m in sorted(glob.glob(os.path.expanduser(text), recursive=True))]
        else:
            matches = [Path(text).expanduser()] if Path(text).expanduser().exists() else []
        if not matches:
            missing.append(text)
        for match in matches:
            if match.is_dir():
                found.update(_walk(match.resolve(), skip, unreadable))
            elif not (skip and _inside(match.resolve(), skip)):
                found.add(match.resolve())
    if missing:
        raise BatchError(f"no such file, folder or match: {', '.join(missing)}", code="input_not_found")
    return sorted(found)


def _walk(folder: Path, skip: Path | None, unreadable: list[tuple[Path, OSError]] | None) -> Iterator[Path]:
    def failed(exc: OSError) -> None:  # os.walk skips a folder it cannot list: say which
        if unreadable is not None:
            unreadable.append((Path(exc.filename) if exc.filename else folder, exc))

    for root, dirs, files in os.walk(folder, onerror=failed):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (skip and here / d == skip))
        for name in files:
            if not name.startswith(".") and Path(name).suffix.lower() in AUDIO_EXTENSIONS:
                yield here / name


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


@dataclass(frozen=True)
class ManifestRow:
    """One manifest line: who recorded the file, when, and the call's context."""

    file: Path
    line: int
    rep_id: str | None = None
    recorded_at: datetime | None = None
    context: Context = field(default_factory=Context)


def read_manifest(path: str | os.PathLike) -> dict[Path, ManifestRow]:
    """Read and check a manifest CSV (columns: :data:`MANIFEST_COLUMNS`).

    ``file`` is required (relative paths are resolved against the CSV's
    folder); the other columns are optional and may be empty. ``channel`` is
    the rep's side of a two-channel file (auto, left, right or mix; empty:
    the run's ``--channel``). ``recorded_at``
    is an ISO 8601 date or date-time (``2026-11-02``, ``2026-11-02T14:05``,
    ``…Z`` or ``…+01:00``); a time without a zone is taken as UTC; it must
    fall within :data:`RECORDED_AT_RANGE`. Column names are case-insensitive;
    unknown columns are an error (a typo would otherwise drop the context
    silently). Cells are single-line and at most
    :data:`vmgrade.csvtable.MAX_CELL_CHARS` long.

    Returns
    -------
    dict
        Resolved absolute file path to its :class:`ManifestRow`.

    Raises
    ------
    BatchError
        ``manifest_not_found`` or ``manifest_invalid``, naming the file and
        every bad line (up to 20).
    """
    path = Path(path)
    columns, lines = read_table(path, what="manifest", error=BatchError, not_found_code="manifest_not_found",
                                invalid_code="manifest_invalid", expected_columns=MANIFEST_COLUMNS)
    unknown = [c for c in columns if c not in MANIFEST_COLUMNS]
    if unknown or "file" not in columns or len(set(columns)) != len(columns):
        problem = (f"unknown column(s) {', '.join(unknown)}" if unknown else
                   "no 'file' column" if "file" not in columns else "a column is repeated")
        raise BatchError(f"{path} line 1: {problem}; the columns are {', '.join(MANIFEST_COLUMNS)} "
                         f"(only file is required)", code="manifest_invalid")
    rows: dict[Path, ManifestRow] = {}
    errors: list[str] = []
    for line, cells in lines:
        if len(cells) > len(columns):
            errors.append(f"{path} line {line}: {len(cells)} cells for {len(columns)} columns "
                          f"(quote values that contain commas)")
            continue
        cell = {c: (cells[i].strip() if i < len(cells) else "") for i, c in enumerate(columns)}
        if not cell["file"]:
            errors.append(f"{path} line {line}: empty file column")
            continue
        recorded_at, problem = _parse_time(cell.get("recorded_at", ""))
        channel = cell.get("channel", "").lower() or None
        if not problem and channel is not None and channel not in CHANNEL_CHOICES:
            problem = f"channel {cell['channel']!r} is not one of {', '.join(CHANNEL_CHOICES)}"
        if problem:
            errors.append(f"{path} line {line}: {problem}")
            continue
        file = Path(cell["file"]).expanduser()
        file = (file if file.is_absolute() else path.parent / file).resolve()
        if file in rows:
            errors.append(f"{path} line {line}: {cell['file']} is already listed on line {rows[file].line}")
            continue
        rows[file] = ManifestRow(
            file=file, line=line, rep_id=cell.get("rep_id") or None, recorded_at=recorded_at,
            # the rep's side rides with the context: into the worker's grade() and the resume key
            context=Context(**{c: cell.get(c) or None for c in CONTEXT_COLUMNS}, channel=channel),
        )
    raise_listed(errors, title="bad manifest", error=BatchError, code="manifest_invalid")
    return rows


def _parse_time(raw: str) -> tuple[datetime | None, str | None]:
    if not raw:
        return None, None
    try:
        value = parse_timestamp(raw)
    except ValueError:
        return None, f"recorded_at {raw!r} is not an ISO 8601 date or date-time (e.g. 2026-11-02T14:05:00Z)"
    low, high = RECORDED_AT_RANGE
    if not low <= value < high:
        return None, f"recorded_at {raw!r} is not between {low.year} and {high.year - 1}"
    return value, None
