"""Uploads: size limit, content sniffing, decoding check, content-addressed names.

Each upload is spooled into the node's data dir, checked, then handed to the file store
(:mod:`vmgrade.store.blobs`: this data dir, or the database) under its key. Layout of a data
dir (with local storage; with database storage only ``tmp/`` and the lock are used)::

    uploads/<sha256[:2]>/<sha256>.<ext>   the audio, named by the hash of its bytes
    reports/<upload id>.json              the JSON report of each graded upload (and .html)
    tmp/                                  uploads in flight (same file system, so moves are atomic)
    serve.lock                            held by the one server using this data dir

Folders are created 0700 and files 0600: they hold password hashes, recordings and transcripts.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

import filetype

from ..audio import DEFAULT_MAX_DURATION_S, load
from ..errors import AudioError, VmgradeError
from ..fileio import PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, is_storage_full, set_mode
from ..isolate import IsolatedPool
from ..store.blobs import Blobs, LocalBlobs, audio_key

MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # 20 MiB: ~10 min of 16 kHz 16-bit WAV, hours of opus
SNIFF_BYTES = 8192
COPY_CHUNK_BYTES = 1 << 20
# Uploads decoded as a check at the same time, per process, each in a decoding child of its own
# (vmgrade.isolate, capped at 800 MB and 20 s; a real check peaks near 100 MB), so concurrent
# uploads wait here instead of multiplying that. One user's checks take turns (one at a time),
# so a user whose files decode for the whole 20 s holds one child, never both: another user's
# upload is checked meanwhile.
VALIDATION_SLOTS = 2
SUBDIRS = ("uploads", "reports", "tmp")
LOCK_NAME = "serve.lock"

_validation_slots = threading.BoundedSemaphore(VALIDATION_SLOTS)
_check_decoders = IsolatedPool(VALIDATION_SLOTS)  # apart from the grading worker's decoding child
_owner_turns: dict[object, list] = {}  # owner -> [lock, holders and waiters]: present while in use
_owner_turns_lock = threading.Lock()

# Sniffed MIME type -> stored extension. Browsers' MediaRecorder writes webm
# (Chromium, Firefox) or mp4 (Safari), which `filetype` calls video/*; the
# decoder then insists on an audio stream.
ACCEPTED_TYPES = {
    "audio/x-wav": "wav",
    "audio/x-flac": "flac",
    "audio/ogg": "ogg",
    "audio/mpeg": "mp3",
    "audio/mp4": "m4a",
    "audio/x-m4a": "m4a",
    "audio/aac": "aac",
    "audio/amr": "amr",
    "audio/x-aiff": "aiff",
    "video/webm": "webm",
    "video/mp4": "mp4",
    "video/x-matroska": "mkv",
    "video/3gpp": "3gp",
}
ACCEPTED_NAMES = "wav, mp3, m4a, ogg/opus, webm, flac, aac or amr"


class UploadError(VmgradeError):
    """An upload that cannot be accepted; ``status`` is the HTTP status to answer with."""

    code = "bad_upload"

    def __init__(self, message: str, *, code: str, status: int):
        super().__init__(message, code=code)
        self.status = status


@dataclass(frozen=True)
class StoredAudio:
    sha256: str
    relpath: str  # relative to the data dir
    media_type: str
    size_bytes: int
    duration_s: float


class DataDirInUse(VmgradeError):
    """Another server holds the data dir's lock."""

    code = "data_dir_in_use"


def ensure_layout(data_dir: Path, *, private_files: tuple[str, ...] = ()) -> None:
    """Create the data dir's folders, private to this user (0700), and make ``private_files`` 0600.

    Parameters
    ----------
    data_dir : Path
        Created 0700 when missing; an existing one keeps its mode (it may be shared).
    private_files : tuple of str
        Names in ``data_dir`` (the SQLite database) to create empty if missing and make 0600.
    """
    data_dir.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    for sub in SUBDIRS:
        folder = data_dir / sub
        folder.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
        set_mode(folder, PRIVATE_DIR_MODE)  # a folder made by an older version
    for name in private_files:
        path = data_dir / name
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE_MODE))
        set_mode(path, PRIVATE_FILE_MODE)


def clean_tmp(data_dir: Path) -> int:
    """Remove what a killed server left in ``tmp/`` and half-written reports; how many files.

    Call it only while holding :func:`lock_data_dir`'s lock (no upload is in flight then).
    """
    leftovers = [p for p in (data_dir / "tmp").iterdir() if p.is_file() or p.is_symlink()]
    leftovers += list((data_dir / "reports").glob(".*.tmp"))
    for path in leftovers:
        path.unlink(missing_ok=True)
    return len(leftovers)


def lock_data_dir(data_dir: Path) -> IO | None:
    """Hold the data dir's lock file for as long as the returned handle is open.

    One server per data dir: a second one would requeue the first one's running job and
    grade it twice. None where the platform has no advisory lock (Windows).

    Raises
    ------
    DataDirInUse
        Another process holds it.
    """
    try:
        import fcntl
    except ImportError:  # Windows: one server per data dir is then up to the user
        return None
    fd = os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
    handle = os.fdopen(fd, "r+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.close()
        raise DataDirInUse(f"{data_dir}: another vmgrade serve is using this data dir; stop it "
                           "or give this one another --data-dir") from exc
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n")  # for people: who holds it
    handle.flush()
    return handle


def unlock_data_dir(handle: IO | None) -> None:
    """Release :func:`lock_data_dir`'s lock."""
    if handle is not None:
        handle.close()  # closing releases the flock


def receive(stream: BinaryIO, data_dir: Path, filename: str, *,
            max_bytes: int = MAX_UPLOAD_BYTES,
            max_duration_s: float = DEFAULT_MAX_DURATION_S, owner: object = None,
            blobs: Blobs | None = None) -> StoredAudio:
    """Copy an uploaded stream into the file store after checking it is usable audio.

    Parameters
    ----------
    stream : binary file
        The upload's bytes.
    data_dir : Path
    filename : str
        The client's name for the file, used in messages only (never trusted for the type).
    max_bytes : int
        Largest upload accepted, in bytes.
    max_duration_s : float
        Longest recording accepted, in seconds.
    owner : hashable, optional
        Who uploads (the user's id): one owner's checks take turns, so they hold one
        decoding child at most.
    blobs : LocalBlobs or DatabaseBlobs, optional
        The file store (default: files under ``data_dir``).

    Raises
    ------
    UploadError
        ``too_large`` (413), ``empty_file``, ``not_audio`` (415), any decoding
        problem of :func:`vmgrade.audio.load` (422: ``too_long``, ``silent``,
        ``truncated``...), or ``storage_full`` (507: the disk is full; nothing is left
        behind), with a message naming ``filename``.
    """
    display = os.path.basename(filename or "") or "upload"
    try:
        return _receive(stream, data_dir, display, max_bytes, max_duration_s, owner,
                        blobs if blobs is not None else LocalBlobs(data_dir))
    except OSError as exc:
        if not is_storage_full(exc):
            raise
        raise UploadError(f"{display}: {storage_full_message()}", code="storage_full", status=507) from exc


def storage_full_message() -> str:
    """What a user is told when the server's disk is full."""
    return ("the server's storage is full, so nothing was saved; try again later "
            "(and tell the administrator)")


def _receive(stream: BinaryIO, data_dir: Path, display: str, max_bytes: int,
             max_duration_s: float, owner: object, blobs: Blobs) -> StoredAudio:
    """:func:`receive` without the full-disk translation; the temp file is removed whatever happens."""
    fd, tmp_name = tempfile.mkstemp(dir=data_dir / "tmp", prefix="upload-")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(COPY_CHUNK_BYTES):
                size += len(chunk)
                if size > max_bytes:
                    raise UploadError(
                        f"{display}: file is over the {format_size(max_bytes)} limit",
                        code="too_large", status=413)
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise UploadError(f"{display}: file is empty (0 bytes)", code="empty_file", status=400)
        with open(tmp, "rb") as f:
            head = f.read(SNIFF_BYTES)
        media_type = sniff(head)
        if media_type is None:
            kind = filetype.guess(head)
            seen = f" (its bytes look like {kind.mime})" if kind else ""
            raise UploadError(f"{display}: not an audio file{seen}; upload {ACCEPTED_NAMES}",
                              code="not_audio", status=415)
        duration_s = _check_audio(tmp, display, max_duration_s, owner)
        sha = digest.hexdigest()
        relpath = audio_key(sha, ACCEPTED_TYPES[media_type])
        blobs.add_file(relpath, tmp)  # same bytes already stored: content addressing keeps one copy
        return StoredAudio(sha, relpath, media_type, size, duration_s)
    finally:
        tmp.unlink(missing_ok=True)



def _check_audio(path: Path, display: str, max_duration_s: float, owner: object = None) -> float:
    """Decode ``path`` as :func:`vmgrade.audio.load` does; its duration in seconds, rounded to ms.

    audio.load refuses a declared duration over the limit before decoding and decodes in
    bounded blocks, in a decoding child of :data:`_check_decoders`; at most
    :data:`VALIDATION_SLOTS` checks run at once, so the memory of N concurrent uploads stays
    that of two, and one ``owner``'s checks take turns.

    Raises
    ------
    UploadError
        The decoding problem (415 ``not_audio``, else 422), its message naming ``display``.
    """
    with _owner_turn(owner), _validation_slots:
        try:
            return round(load(path, max_duration_s=max_duration_s, decoder=_check_decoders).duration_s, 3)
        except AudioError as exc:
            message = exc.message.replace(str(path), display).replace(" (raise it with --max-duration)", "")
            raise UploadError(message, code=exc.code, status=415 if exc.code == "not_audio" else 422) from exc


@contextlib.contextmanager
def _owner_turn(owner: object):
    """Hold ``owner``'s turn (None: no turn taken); the lock is dropped once nobody waits for it."""
    if owner is None:
        yield
        return
    with _owner_turns_lock:
        entry = _owner_turns.setdefault(owner, [threading.Lock(), 0])
        entry[1] += 1
    try:
        with entry[0]:
            yield
    finally:
        with _owner_turns_lock:
            entry[1] -= 1
            if entry[1] == 0:
                _owner_turns.pop(owner, None)


def format_size(size_bytes: int) -> str:
    """``20 MB``, ``195 KB``: binary units, as file managers show them."""
    if size_bytes >= 2**20:
        return f"{size_bytes / 2**20:.3g} MB"
    return f"{size_bytes / 2**10:.0f} KB"


def sniff(head: bytes) -> str | None:
    """The MIME type of an accepted audio container, from its first bytes; else None."""
    kind = filetype.guess(head)
    if kind is not None and kind.mime in ACCEPTED_TYPES:
        return kind.mime
    return None

