"""Uploads on disk: size limit, content sniffing, decoding check, content-addressed names.

Layout under the data dir::

    uploads/<sha256[:2]>/<sha256>.<ext>   the audio, named by the hash of its bytes
    reports/<upload id>.json              the JSON report of each graded upload
    tmp/                                  uploads in flight (same file system, so moves are atomic)
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import filetype

from ..audio import DEFAULT_MAX_DURATION_S, load
from ..errors import AudioError, VmgradeError
from ..fileio import write_atomic

MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # 20 MiB: ~10 min of 16 kHz 16-bit WAV, hours of opus
SNIFF_BYTES = 8192
COPY_CHUNK_BYTES = 1 << 20

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


def ensure_layout(data_dir: Path) -> None:
    for sub in ("uploads", "reports", "tmp"):
        (data_dir / sub).mkdir(parents=True, exist_ok=True)


def receive(stream: BinaryIO, data_dir: Path, filename: str, *,
            max_bytes: int = MAX_UPLOAD_BYTES,
            max_duration_s: float = DEFAULT_MAX_DURATION_S) -> StoredAudio:
    """Copy an uploaded stream into the store after checking it is usable audio.

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

    Raises
    ------
    UploadError
        ``too_large`` (413), ``empty_file``, ``not_audio`` (415), or any decoding
        problem of :func:`vmgrade.audio.load` (422: ``too_long``, ``silent``,
        ``truncated``...), with a message naming ``filename``.
    """
    display = os.path.basename(filename or "") or "upload"
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
        try:
            audio = load(tmp, max_duration_s=max_duration_s)
        except AudioError as exc:
            message = exc.message.replace(str(tmp), display).replace(" (raise it with --max-duration)", "")
            raise UploadError(message, code=exc.code, status=415 if exc.code == "not_audio" else 422) from exc
        sha = digest.hexdigest()
        relpath = f"uploads/{sha[:2]}/{sha}.{ACCEPTED_TYPES[media_type]}"
        final = data_dir / relpath
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():  # same bytes already stored: content addressing makes this one copy
            tmp.unlink()
        else:
            os.replace(tmp, final)
        return StoredAudio(sha, relpath, media_type, size, round(audio.duration_s, 3))
    finally:
        tmp.unlink(missing_ok=True)


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


def context_key(context: dict[str, str]) -> str:
    """A stable hash of the call context (part of the upload dedup key)."""
    canonical = json.dumps({k: v for k, v in sorted(context.items()) if v}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON to ``path`` so readers see the old file or the whole new one."""
    write_atomic(path, json.dumps(data, ensure_ascii=False))
