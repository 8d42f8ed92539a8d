"""Batch inputs: the audio files named on the command line, and the manifest of their context.

:func:`discover` turns files, folders and globs into a sorted list of paths;
:func:`read_manifest` reads the optional CSV that gives each file its rep,
recording time and call context (:class:`vmgrade.pipeline.Context`).
"""

from __future__ import annotations

import errno
import fnmatch
import glob
import os
import stat
from collections.abc import Sequence
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
             unreadable: list[tuple[Path, OSError]] | None = None, outside: list[Path] | None = None,
             follow_links: bool = False) -> list[Path]:
    """Audio files named by ``inputs``: files, folders (searched recursively) and globs.

    The search is bounded: each real folder is entered at most once (by its
    ``(st_dev, st_ino)``), so symbolic-link loops (``calls/loop -> calls``,
    ``a -> b -> a``) end, and, unless ``follow_links``, a link found in an input
    folder (or below a glob's fixed part) is followed only when its target lies
    inside that folder: a link leading out is not read, and is listed in ``outside``.

    Parameters
    ----------
    inputs : sequence of str or PathLike
        A file is taken whatever its extension (a bad one gets an error
        record), and followed when it is a link (it was named); a folder
        contributes its files with an audio extension (:data:`AUDIO_EXTENSIONS`),
        hidden files and folders left out; a glob (``*``, ``?``, ``[``;
        ``**`` recursive) expands to files and folders, searched from the
        folder its fixed part names (``calls`` for ``calls/**/*.wav``).
    exclude : str or PathLike, optional
        A folder to leave out (the batch's own output folder).
    unreadable : list, optional
        Receives ``(folder, OSError)`` for each folder that could not be
        listed (permissions, I/O error): its files are missing from the result.
    outside : list, optional
        Receives each symbolic link that would have been an input but leads
        out of its input folder (not followed; ``outside_folder`` in a batch).
    follow_links : bool
        Follow links wherever they lead (loops are still cut).

    Returns
    -------
    list of Path
        Absolute, resolved, de-duplicated by path, sorted.

    Raises
    ------
    BatchError
        ``input_not_found`` when an input matches nothing.
    """
    skip = Path(exclude).resolve() if exclude is not None else None
    search = _Search(skip=skip, follow_links=follow_links)
    missing: list[str] = []
    for raw in inputs:
        text = os.path.expanduser(os.fspath(raw))
        if glob.has_magic(text):
            base, parts = _glob_base(text)
            matched = os.path.isdir(base) and search.run(Path(base), parts)
        elif os.path.isdir(text):
            matched = search.run(Path(text).resolve(), None) or True
        elif os.path.exists(text):
            real = Path(text).resolve()  # named: followed wherever it leads
            matched = True
            if not (skip and _inside(real, skip)):
                search.files.add(real)
        else:
            matched = False
        if not matched:
            missing.append(os.fspath(raw))
    if missing:
        raise BatchError(f"no such file, folder or match: {', '.join(missing)}", code="input_not_found")
    if unreadable is not None:
        unreadable.extend(search.unreadable)
    if outside is not None:
        outside.extend(sorted(set(search.outside) - search.files))
    return sorted(search.files)


def _glob_base(pattern: str) -> tuple[str, tuple[str, ...]]:
    """A glob's fixed leading folder and the remaining components (``calls``, ``("**", "*.wav")``)."""
    parts = [p for p in pattern.split(os.sep) if p not in ("", ".")] if pattern else []
    fixed: list[str] = []
    while parts and not glob.has_magic(parts[0]):
        fixed.append(parts.pop(0))
    root = os.sep if pattern.startswith(os.sep) else ""
    return (root + os.sep.join(fixed)) or ".", tuple(parts)


@dataclass
class _Search:
    """One bounded walk over the input folders (:func:`discover`): what it found, what it refused."""

    skip: Path | None
    follow_links: bool
    files: set[Path] = field(default_factory=set)
    unreadable: list[tuple[Path, OSError]] = field(default_factory=list)
    outside: list[Path] = field(default_factory=list)

    def run(self, base: Path, parts: tuple[str, ...] | None) -> bool:
        """Search ``base``: every audio file (``parts`` None) or what the glob ``parts`` match.

        Returns whether anything matched (a glob); links out of ``base`` count, as the shell would.
        """
        try:
            root = base.resolve(strict=True)
            st = os.stat(root)
        except (OSError, RuntimeError):
            return False
        if self.skip and _inside(root, self.skip):
            return parts is None
        start = _advance_closure(parts, {0}) if parts is not None else None
        whole = parts is None or len(parts) in start  # 'calls/**' matches calls itself: all of it
        visited = {(st.st_dev, st.st_ino)}
        stack: list[tuple[Path, Path, frozenset[int] | None, bool]] = [(base, root, start, whole)]
        before = len(self.files) + len(self.outside)
        while stack:
            folder, real_folder, state, whole = stack.pop()
            try:
                with os.scandir(folder) as listing:
                    entries = sorted(listing, key=lambda e: e.name, reverse=True)
            except OSError as exc:  # a glob passing through an unreadable folder matches nothing there
                if whole:
                    self.unreadable.append((real_folder, exc))
                continue
            for entry in entries:
                name = entry.name
                if whole and name.startswith("."):
                    continue  # hidden files and folders are left out of a folder
                after = None if whole else _advance(parts, state, name)
                if not whole and not after:
                    continue
                link = entry.is_symlink()
                try:
                    real = Path(os.path.realpath(entry.path, strict=True)) if link else real_folder / name
                    est = os.stat(real)
                except OSError as exc:  # a dangling link or a loop (a -> b -> a): its record says which
                    if exc.errno == errno.ENAMETOOLONG:  # deeper than the system's path limit: say so
                        self.unreadable.append((real_folder / name, exc))
                        continue
                    if (whole and Path(name).suffix.lower() in AUDIO_EXTENSIONS) or (
                            not whole and len(parts) in after):
                        self.files.add(real_folder / name)
                    continue
                if self.skip and _inside(real, self.skip):
                    continue
                is_dir = stat.S_ISDIR(est.st_mode)
                wanted = (is_dir or Path(name).suffix.lower() in AUDIO_EXTENSIONS) if whole else (
                    is_dir or len(parts) in after)
                if not wanted:
                    continue
                if link and not self.follow_links and not _inside(real, root):
                    self.outside.append(real_folder / name)  # never leave the folder unasked
                    continue
                if not is_dir:
                    self.files.add(real)
                elif (est.st_dev, est.st_ino) not in visited:  # each real folder once: loops end
                    visited.add((est.st_dev, est.st_ino))
                    stack.append((Path(entry.path), real, after, whole or len(parts) in after))
        return len(self.files) + len(self.outside) > before


def _advance_closure(parts: tuple[str, ...], state: set[int]) -> frozenset[int]:
    """``state`` plus the positions reached by letting each ``**`` match no folder."""
    out = set(state)
    for i in sorted(out):
        while i < len(parts) and parts[i] == "**":
            i += 1
            out.add(i)
    return frozenset(out)


def _advance(parts: tuple[str, ...], state: frozenset[int], name: str) -> frozenset[int]:
    """The glob positions after matching one path component ``name`` (empty: no match can follow).

    As :func:`glob.glob` with ``recursive=True``: ``*``, ``?`` and ``[…]`` match within one
    component, ``**`` any number of components; neither matches a hidden name (one starting
    with ``.``) unless the pattern component itself starts with ``.``.
    """
    hidden = name.startswith(".")
    nxt: set[int] = set()
    for i in state:
        if i >= len(parts):
            continue
        part = parts[i]
        if part == "**":
            if not hidden:
                nxt.add(i)
        elif (not hidden or part.startswith(".")) and fnmatch.fnmatchcase(name, part):
            nxt.add(i + 1)
    return _advance_closure(parts, nxt)


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
        try:
            file = Path(cell["file"]).expanduser()
            file = (file if file.is_absolute() else path.parent / file).resolve()
        except (RuntimeError, ValueError, OSError) as exc:  # a link loop, a NUL, an unknown ~user
            errors.append(f"{path} line {line}: file {cell['file']!r} cannot be used ({exc})")
            continue
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
