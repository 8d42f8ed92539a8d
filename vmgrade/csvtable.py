"""The CSV files users hand us (calibration ratings, batch manifests), and the ones we write.

Both inputs are a header row of case-insensitive column names, then one row
per recording; every bad row is reported at once, by file and line.
:func:`csv_text` writes rows for a spreadsheet: a text cell that a spreadsheet
would run as a formula is neutralised.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .errors import VmgradeError, printable

MAX_LISTED_ERRORS = 20  # lines named in one error message; the rest are counted
MAX_CELL_CHARS = 4096  # a path, a name or a date: a longer cell is a wrong file (Linux PATH_MAX is 4096)
# A text cell starting with one of these is a formula to Excel, LibreOffice and Sheets ("=HYPERLINK(…)",
# "+cmd|…", "@SUM(…)"): written behind a "'" so it stays text (OWASP "CSV injection").
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def read_table(
    path: Path,
    *,
    what: str,
    error: type[VmgradeError],
    not_found_code: str,
    invalid_code: str,
    expected_columns: Sequence[str],
) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The lower-cased header and an iterator of ``(line number, cells)`` for non-blank rows.

    Parameters
    ----------
    path : Path
        The CSV file (UTF-8, a byte-order mark allowed).
    what : str
        What the file is, for messages ("manifest", "ratings file").
    error : type of VmgradeError
        Raised with ``not_found_code`` for a missing file and ``invalid_code``
        for an unreadable, empty or malformed one: a cell over
        :data:`MAX_CELL_CHARS` characters or holding a line break, or CSV
        the parser refuses (each bad line named).
    expected_columns : sequence of str
        Named in the message for a file without a header row.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise error(f"{path}: {what} not found", code=not_found_code) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read {what} ({exc})", code=invalid_code) from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    records: list[tuple[int, list[str]]] = []
    problems: list[str] = []
    line = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. a cell over csv.field_size_limit(): no traceback, a line number
            problems.append(f"{path} line {line}: not readable as CSV ({exc})")
            break
        problems += [f"{path} line {line}: {p}" for p in _cell_problems(cells)]
        records.append((line, cells))
        line = reader.line_num + 1  # a quoted line break makes one record span lines
    header = records.pop(0)[1] if records else None
    if not problems and (not header or not any(h.strip() for h in header)):
        raise error(f"{path} line 1: empty {what}, expected a header row with columns "
                    f"{', '.join(expected_columns)}", code=invalid_code)
    raise_listed(problems, title=f"bad {what}", error=error, code=invalid_code)
    rows = [(n, cells) for n, cells in records if any(c.strip() for c in cells)]
    return [h.strip().lower() for h in header], iter(rows)


def _cell_problems(cells: Sequence[str]) -> Iterator[str]:
    for i, cell in enumerate(cells, 1):
        if len(cell) > MAX_CELL_CHARS:
            yield f"cell {i} is {len(cell)} characters long (at most {MAX_CELL_CHARS})"
        elif "\n" in cell or "\r" in cell:
            yield f"cell {i} holds a line break (one line per row)"


def raise_listed(errors: Sequence[str], *, title: str, error: type[VmgradeError], code: str) -> None:
    """Raise one ``error`` listing up to :data:`MAX_LISTED_ERRORS` of ``errors`` (none: return)."""
    if not errors:
        return
    more = len(errors) - MAX_LISTED_ERRORS
    listed = list(errors[:MAX_LISTED_ERRORS]) + ([f"... and {more} more"] if more > 0 else [])
    raise error(f"{title}:\n  " + "\n  ".join(listed), code=code)


def csv_cell(value: Any) -> Any:
    """``value`` as a CSV output cell: text shown safely (:func:`vmgrade.errors.printable`), a formula
    lead (:data:`FORMULA_LEADS`) behind a ``'``; numbers and None as they are."""
    if not isinstance(value, str):
        return value
    value = printable(value)
    return "'" + value if value.startswith(FORMULA_LEADS) else value


def csv_text(rows: Iterable[Sequence[Any]]) -> str:
    """``rows`` as CSV text (``\\r\\n`` line ends), each cell through :func:`csv_cell`."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows([csv_cell(v) for v in row] for row in rows)
    return buffer.getvalue()
