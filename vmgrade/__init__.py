"""vmgrade: grade recorded sales voicemails offline with Whisper and librosa."""

__version__ = "0.1.0"

from .errors import AudioError, ModelError, RubricError, VmgradeError  # noqa: E402
from .pipeline import Context, GradeOptions, Grader, grade  # noqa: E402

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
