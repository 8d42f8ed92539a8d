"""vmgrade: grade recorded sales voicemails offline with Whisper and librosa.

:func:`grade` grades one recording; a :class:`Grader` holds the model for many.
Both give a :class:`Report`, and :func:`compare_reports` compares report dicts.
Every error a user can cause is a :class:`VmgradeError` with a stable ``code``.
Importing the package is cheap: torch and whisper load with the first model.
"""

from ._version import __version__
from .compare import compare_reports
from .errors import AudioError, ModelError, NotGradedError, RubricError, VmgradeError
from .pipeline import Context, GradeOptions, Grader, grade
from .report import Report

__all__ = [
    "AudioError",
    "NotGradedError",
    "Context",
    "GradeOptions",
    "Grader",
    "ModelError",
    "Report",
    "RubricError",
    "VmgradeError",
    "__version__",
    "compare_reports",
    "grade",
]
