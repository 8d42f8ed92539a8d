"""Error hierarchy: every failure a user can cause has a stable ``code``.

Shells (CLI, batch, web) turn these into messages, error records and exit
codes; nothing below the shells prints or exits. ``FILE_ERROR_CODES`` names
the codes a file's error record can carry (docs/errors.md lists every code).
"""

from __future__ import annotations

import errno
import re

# A file's error record: the code and what it means (one line each; docs/errors.md repeats them).
FILE_ERROR_CODES = {
    "file_not_found": "no file at that path (or a symbolic link to nothing)",
    "symlink_loop": "a symbolic link that leads back to itself",
    "not_a_file": "a folder, FIFO, device or other non-regular file",
    "unreadable": "the file exists but cannot be read (permissions, I/O error)",
    "empty_file": "the file has 0 bytes",
    "not_audio": "the bytes are not a recording any decoder recognises",
    "unsupported_codec": "a known container holding a codec no bundled decoder reads",
    "truncated": "the file is cut off or damaged part way",
    "zero_length": "the audio stream holds no samples (or under 0.1 s)",
    "too_long": "longer than --max-duration (default 600 s)",
    "silent": "the loudest sample is below -60 dBFS",
    "out_of_range": "float samples more than 1 dB past full scale (a player would clip them)",
    "decoder_crashed": "the decoder crashed on this file (in its own process; the run goes on)",
    "decode_timeout": "decoding took longer than 20 s and was stopped",
    "decode_over_budget": "decoding would take more memory than a recording may (a crafted frame size, "
                          "channel count or allocation)",
    "no_speech": "sound but no speech: noise, music or hum; no transcript words and little voice activity",
    "not_a_voicemail": "a live conversation (two parties taking turns), not a voicemail",
    "no_message": "a mailbox greeting or announcement (beep or not) with no message from the rep after it",
    "internal_error": "an unexpected failure inside vmgrade (the message names the exception)",
}
# C0/C1 controls, and the bidirectional controls that reorder what a terminal shows (a name can make
# "evil\u202egnp.wav" read as "evilvaw.png")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


class VmgradeError(Exception):
    """Base class: a problem with a stable machine-readable ``code``."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None, path: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code
        self.path = path

    @property
    def message(self) -> str:
        return str(self)


class AudioError(VmgradeError):
    """The input file cannot be used as a voicemail recording."""

    code = "audio_error"


class NotGradedError(AudioError):
    """The file is not a rep's message (a greeting, a live call, no speech): what it is, and why.

    ``recording`` is the report's ``recording`` object: ``kind`` (one of
    :data:`vmgrade.calls.kinds.RECORDING_KINDS`), ``confidence`` and ``evidence``.
    """

    def __init__(self, message: str, *, code: str, path: str | None = None, recording: dict | None = None):
        super().__init__(message, code=code, path=path)
        self.recording = dict(recording or {})


class ModelError(VmgradeError):
    """Model weights are missing, corrupt or cannot be loaded."""

    code = "model_error"


class RubricError(VmgradeError):
    """A rubric file is missing or malformed."""

    code = "rubric_error"


def printable(text: str) -> str:
    """``text`` with bytes that were not valid UTF-8 shown as ``\\xNN``, so any UTF-8 writer takes it.

    A POSIX file name is bytes; Python hands undecodable ones over as lone
    surrogates (``os.fsdecode``), which ``json.dumps`` keeps and a UTF-8 stream
    refuses. Valid text comes back unchanged.
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that is no escaped byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def terminal_safe(text: str) -> str:
    """:func:`printable` with control and bidi characters escaped (``\\x1b``, ``\\n``, ``\\u202e``), for one
    terminal line.

    A file name can hold an ANSI escape or a newline that would otherwise
    fake a line of output.
    """
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), printable(text))


def file_error(exc: BaseException, path: str) -> VmgradeError:
    """The error record for an exception that escaped the grading of one file.

    ``OSError`` becomes ``unreadable`` (``symlink_loop`` for ELOOP), anything else
    ``internal_error`` naming the exception type; a :class:`VmgradeError` is returned as is.
    """
    if isinstance(exc, VmgradeError):
        return exc
    name = printable(path)
    if isinstance(exc, OSError):
        if exc.errno == errno.ELOOP:
            return AudioError(f"{name}: symbolic link loop", code="symlink_loop", path=name)
        return AudioError(f"{name}: cannot read the file ({exc.strerror or exc})", code="unreadable",
                          path=name)
    detail = printable(str(exc).strip().splitlines()[0]) if str(exc).strip() else ""
    return VmgradeError(f"{name}: internal error: {type(exc).__name__}" + (f": {detail}" if detail else ""),
                        code="internal_error", path=name)
