"""Error hierarchy: every failure a user can cause has a stable ``code``.

Shells (CLI, batch, web) turn these into messages, error records and exit
codes; nothing below the shells prints or exits.
"""

from __future__ import annotations


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


class ModelError(VmgradeError):
    """Model weights are missing, corrupt or cannot be loaded."""

    code = "model_error"


class RubricError(VmgradeError):
    """A rubric file is missing or malformed."""

    code = "rubric_error"
