"""Files written so that a reader sees the old version or the whole new one, never half,
and files hashed without being read whole.

Batch ledgers and reports, HTML reports, the web app's stored reports and the
converted model cache all go through :func:`replacing` (:func:`write_atomic`
for data already in memory); lines appended to a file (a batch's ``results.jsonl``)
go through :func:`append_whole`, all or nothing. :func:`content_hash` keys recordings (history,
batch resume) and checks the sentence-embedding weights.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

HASH_CHUNK_BYTES = 1 << 20  # content_hash reads files in 1 MiB pieces
# The web app's data dirs hold password hashes, recordings and transcripts: this user's only.
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
# errno values of a full disk or quota (the web app answers them 507 ``storage_full``, not a 500).
STORAGE_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
CACHE_ENV = "VMGRADE_MODEL_DIR"  # where converted checkpoints and the encoders' caches go


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary file beside ``path`` to write; it becomes ``path`` only if the block succeeds.

    When the ``with`` block ends without error the file is fsynced, renamed over
    ``path`` (:func:`os.replace`, atomic on POSIX and Windows), and the folder
    fsynced so the rename itself survives a power cut. On error it is removed
    and ``path`` is left as it was. The file gets the usual permissions (not
    :func:`tempfile.mkstemp`'s private 0600).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o666 & ~_umask())
        os.close(fd)
        yield tmp
        _fsync(tmp, os.O_RDWR)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync(path.parent, os.O_RDONLY)


def write_atomic(path: Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` so that it is either absent, the old file, or complete."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with replacing(path) as tmp:
        tmp.write_bytes(payload)
    return path


def append_whole(path: Path, data: str | bytes) -> None:
    """Append ``data`` to ``path`` all or nothing: a full disk never leaves part of it behind.

    The bytes go in with :func:`os.write` on an ``O_APPEND`` descriptor (one call
    unless the system writes short), then the file is fsynced. When a write fails
    or stops short (``ENOSPC``, ``EDQUOT``, an I/O error) the file is truncated back
    to its length before the call and the error raised with the path in it, so a
    line-per-record file (``results.jsonl``) never ends in a torn line. Meant for
    one writer at a time (the batch holds its output folder's lock).

    Raises
    ------
    OSError
        The append failed; ``path`` is as it was (unless even the truncation failed).
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
    try:
        size_before = os.fstat(fd).st_size
        try:
            view = memoryview(payload)
            while view:
                written = os.write(fd, view)
                if written <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fspath(path))
                view = view[written:]
            os.fsync(fd)
        except OSError as exc:
            try:
                os.ftruncate(fd, size_before)  # all or nothing: no torn last line
            except OSError:
                pass
            if exc.filename is None:  # os.write's errors name no file: the caller's message should
                raise OSError(exc.errno, exc.strerror, os.fspath(path)) from exc
            raise
    finally:
        os.close(fd)


def _umask() -> int:
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0o022)
        os.umask(_UMASK)
    return _UMASK


_UMASK: int | None = None


def _fsync(path: Path, flags: int) -> None:
    try:
        fd = os.open(path, flags)
    except OSError:  # Windows cannot open folders; its rename is durable enough
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def cache_dir() -> Path:
    """Directory for converted checkpoints and model caches: ``$VMGRADE_MODEL_DIR`` or the user cache."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vmgrade" / "models"


def content_hash(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes, read in chunks (hex, 64 characters).

    Keys a recording independently of its name or location: a renamed or
    copied file has the same hash.

    Raises
    ------
    OSError
        The file cannot be opened or read; ``EINVAL`` for anything but a
        regular file. The type is checked on the opened descriptor, before any
        read, and the open does not wait: a FIFO would block, ``/dev/zero``
        never end.
    """
    import errno
    import stat

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with open(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
        digest = hashlib.sha256()
        for chunk in iter(lambda: f.read(HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_storage_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or quota) is full: ENOSPC, EDQUOT, or SQLite's "disk is full"."""
    if isinstance(exc, OSError):
        return exc.errno in STORAGE_FULL_ERRNOS
    return "database or disk is full" in str(exc)


def set_mode(path: Path, mode: int) -> None:
    """``chmod`` ``path``; a path that is gone, or not ours (a shared folder), is left as it is."""
    try:
        os.chmod(path, mode)
    except OSError:
        pass


def remembered_hash(path: Path, stamp: Path) -> str:
    """:func:`content_hash` of ``path``, kept in the file ``stamp`` while ``path`` is unchanged.

    Model weights are checked against their pinned sha256 in every new process; the stamp
    (the file's path, size, mtime and inode, and its hash) spares re-reading an unchanged
    file. A missing, stale or unreadable stamp means hashing it again and writing the stamp
    (a read-only cache only costs hashing next time).

    Raises
    ------
    OSError
        ``path`` cannot be read.
    """
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"
    try:
        saved_key, digest = stamp.read_text(encoding="utf-8").split("\n")
        if saved_key == key and len(digest) == 64:
            return digest
    except (OSError, ValueError):
        pass
    digest = content_hash(path)
    try:
        write_atomic(stamp, f"{key}\n{digest}")
    except OSError:
        pass
    return digest


def cached_arrays(path: Path, shapes: dict[str, tuple[int, ...]],
                  compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """float32 arrays kept in the ``.npz`` file ``path``: read when each of ``shapes`` is there at its
    shape, else ``compute()``-d and written (whole or not at all, :func:`write_atomic`).

    For what a model computes the same way on every run (converted weights, reference
    embeddings): a missing, damaged or unwritable file only costs computing them again.
    """
    import io
    import zipfile

    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in shapes}
        if all(a.shape == shapes[name] and a.dtype == np.float32 for name, a in arrays.items()):
            return arrays
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        pass  # not computed yet, or a damaged (a torn zip) file: compute and write it again
    arrays = compute()
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    try:
        write_atomic(path, buf.getvalue())
    except OSError:
        pass
    return arrays
