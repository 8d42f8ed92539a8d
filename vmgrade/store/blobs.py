"""Where the team store keeps its files: uploaded audio, report JSON and report HTML.

Two stores behind one interface, chosen per deployment (``--storage``):

* :class:`LocalBlobs` (the single-machine default): files under a data dir, folders 0700,
  files 0600, written atomically.
* :class:`DatabaseBlobs` (the default on a shared PostgreSQL): rows of the ``web_blobs``
  table, so every web node and grading worker reads what any other wrote, with nothing
  node-local to share or back up apart from the database.

Keys are relative paths (``uploads/ab/<sha256>.wav``, ``reports/12.json``); audio keys are
content-addressed, so storing the same bytes twice keeps one copy.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import VmgradeError
from ..fileio import PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, set_mode, write_atomic
from .team import Blob, utcnow

STORAGE_KINDS = ("local", "database")
# A key is a relative path of these parts: nothing that could climb out of a data dir.
_KEY_MAX_CHARS = 255


class StorageError(VmgradeError):
    """A storage choice that cannot work (an unknown kind, a bad key)."""

    code = "storage_error"


def audio_key(sha256: str, extension: str) -> str:
    """The key of uploaded audio: ``uploads/<sha256[:2]>/<sha256>.<extension>`` (stored once per content)."""
    return f"uploads/{sha256[:2]}/{sha256}.{extension}"


def report_key(upload_id: int) -> str:
    """The key of an upload's JSON report: ``reports/<upload id>.json``."""
    return f"reports/{upload_id}.json"


def report_html_key(upload_id: int) -> str:
    """The key of an upload's rendered HTML report: ``reports/<upload id>.html``."""
    return f"reports/{upload_id}.html"


def check_key(key: str) -> str:
    """``key`` if it is a plain relative path (no ``..``, no leading ``/``), else StorageError."""
    parts = key.split("/")
    if (not key or len(key) > _KEY_MAX_CHARS or key.startswith("/") or "\\" in key or "\0" in key
            or any(p in ("", ".", "..") for p in parts)):
        raise StorageError(f"{key!r}: not a storage key")
    return key


class LocalBlobs:
    """Files under ``root`` (a data dir), private to this user.

    Parameters
    ----------
    root : Path
        The data dir; keys are paths relative to it.
    """

    kind = "local"

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        """Where ``key`` lives on disk (whether or not it exists)."""
        return self.root / check_key(key)

    def read(self, key: str) -> bytes | None:
        """The bytes stored under ``key``, or None when there are none."""
        try:
            return self.path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def write(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, replacing what was there (readers see old or new, never half)."""
        path = self.path(key)
        path.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        write_atomic(path, data)
        set_mode(path, PRIVATE_FILE_MODE)

    def add_file(self, key: str, source: Path) -> None:
        """Move the file ``source`` in under ``key``, unless ``key`` is stored already (same content)."""
        final = self.path(key)
        final.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        if final.exists():
            Path(source).unlink(missing_ok=True)
        else:
            os.replace(source, final)
            set_mode(final, PRIVATE_FILE_MODE)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    @contextmanager
    def local_file(self, key: str) -> Iterator[Path | None]:
        """A readable file holding ``key`` for the ``with`` block (here: the file itself), or None."""
        path = self.path(key)
        yield path if path.is_file() else None


class DatabaseBlobs:
    """Files as rows of ``web_blobs`` in the team database.

    Parameters
    ----------
    engine : Engine
        The history/team database's engine.
    scratch_dir : Path, optional
        Where :meth:`local_file` puts the short-lived copies that decoders and renderers read
        (default the system's temporary folder); each is removed when its block ends.
    """

    kind = "database"

    def __init__(self, engine: Engine, scratch_dir: Path | None = None):
        self.engine = engine
        self.scratch_dir = scratch_dir

    def read(self, key: str) -> bytes | None:
        with Session(self.engine) as s:
            return s.scalar(select(Blob.data).where(Blob.key == check_key(key)))

    def write(self, key: str, data: bytes) -> None:
        check_key(key)
        for attempt in range(2):
            try:
                with Session(self.engine) as s, s.begin():
                    row = s.get(Blob, key)
                    if row is None:
                        s.add(Blob(key=key, data=data, size_bytes=len(data), created_at=utcnow()))
                    else:
                        row.data, row.size_bytes = data, len(data)
                return
            except IntegrityError:
                # two writers of one new key (two nodes drawing a report page at its first view):
                # the loser's insert failed; its second try finds the row and replaces it
                if attempt:
                    raise

    def add_file(self, key: str, source: Path) -> None:
        check_key(key)
        if self.exists(key):  # content-addressed: the same bytes are there already
            Path(source).unlink(missing_ok=True)
            return
        data = Path(source).read_bytes()
        try:
            with Session(self.engine) as s, s.begin():
                s.add(Blob(key=key, data=data, size_bytes=len(data), created_at=utcnow()))
        except IntegrityError:
            pass  # another node stored the same bytes meanwhile
        Path(source).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        with Session(self.engine) as s:
            return s.scalar(select(Blob.key).where(Blob.key == check_key(key))) is not None

    def delete(self, key: str) -> None:
        with Session(self.engine) as s, s.begin():
            s.execute(delete(Blob).where(Blob.key == check_key(key)))

    @contextmanager
    def local_file(self, key: str) -> Iterator[Path | None]:
        """A private temporary copy of ``key`` for the ``with`` block (removed after), or None."""
        data = self.read(key)
        if data is None:
            yield None
            return
        suffix = "." + key.rsplit(".", 1)[1] if "." in key.rsplit("/", 1)[-1] else ""
        fd, name = tempfile.mkstemp(prefix="vmgrade-", suffix=suffix, dir=self.scratch_dir)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            yield Path(name)
        finally:
            Path(name).unlink(missing_ok=True)


Blobs = LocalBlobs | DatabaseBlobs


def open_blobs(kind: str, *, data_dir: Path, engine: Engine) -> Blobs:
    """The store of ``kind`` (:data:`STORAGE_KINDS`): files under ``data_dir``, or in the database.

    Raises
    ------
    StorageError
        An unknown kind.
    """
    if kind == "local":
        return LocalBlobs(data_dir)
    if kind == "database":
        scratch = Path(data_dir) / "tmp"
        return DatabaseBlobs(engine, scratch if scratch.is_dir() else None)
    raise StorageError(f"unknown storage {kind!r}: use one of {', '.join(STORAGE_KINDS)}")


def default_storage(db_url: str) -> str:
    """``database`` on a server database every node reaches (PostgreSQL), else ``local``."""
    return "local" if db_url.startswith("sqlite") else "database"
