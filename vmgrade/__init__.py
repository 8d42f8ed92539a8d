"""vmgrade: grade recorded sales voicemails offline with Whisper and librosa."""

from ._version import __version__
from .errors import AudioError, ModelError, RubricError, VmgradeError
from .pipeline import Context, GradeOptions, Grader, grade

__all__ = [
    "AudioError",
    "Context",
    "GradeOptions",
    "Grader",
    "ModelError",
    "RubricError",
    "VmgradeError",
    "__version__",
    "grade",
]
