"""Reading the CSV files users hand us: calibration ratings and batch manifests.

Both are a header row of case-insensitive column names, then one row per
recording; every bad row is reported at once, by file and line.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from pathlib import Path

from .errors import VmgradeError

MAX_LISTED_ERRORS = 20  # lines named in one error message; the rest are counted


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
        for an unreadable or empty one.
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
    header = next(reader, None)
    if not header or not any(h.strip() for h in header):
        raise error(f"{path} line 1: empty {what}, expected a header row with columns "
                    f"{', '.join(expected_columns)}", code=invalid_code)

    def rows() -> Iterator[tuple[int, list[str]]]:
        for cells in reader:
            if any(c.strip() for c in cells):
                yield reader.line_num, cells

    return [h.strip().lower() for h in header], rows()


def raise_listed(errors: Sequence[str], *, title: str, error: type[VmgradeError], code: str) -> None:
    """Raise one ``error`` listing up to :data:`MAX_LISTED_ERRORS` of ``errors`` (none: return)."""
    if not errors:
        return
    more = len(errors) - MAX_LISTED_ERRORS
    listed = list(errors[:MAX_LISTED_ERRORS]) + ([f"... and {more} more"] if more > 0 else [])
    raise error(f"{title}:\n  " + "\n  ".join(listed), code=code)
