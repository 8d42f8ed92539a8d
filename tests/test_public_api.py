"""The package's public names, and that importing it stays cheap."""

from __future__ import annotations

import inspect
import subprocess
import sys

import vmgrade
from vmgrade import errors


def test_every_public_name_resolves():
    for name in vmgrade.__all__:
        assert getattr(vmgrade, name, None) is not None, name
    for name in ("grade", "Grader", "Report", "Context", "GradeOptions", "compare_reports", "__version__"):
        assert name in vmgrade.__all__, name


def test_every_error_of_the_errors_module_is_exported():
    defined = {name for name, obj in inspect.getmembers(errors, inspect.isclass)
               if issubclass(obj, errors.VmgradeError) and obj.__module__ == errors.__name__}
    assert "VmgradeError" in defined
    assert defined <= set(vmgrade.__all__), defined - set(vmgrade.__all__)


def test_import_loads_neither_torch_nor_whisper():
    # a new interpreter: this one may have imported them for other tests
    script = "import sys, vmgrade; print(sorted({'torch', 'whisper', 'numba'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
