"""Cold-start costs that are not the model's work: garbage collection, numba, tokenizer set-up.

A cold ``vmgrade grade`` spends seconds before and after the transcription
itself. Three of those costs come from the interpreter and dependencies, not
from anything vmgrade computes:

- Importing torch and whisper and building the model allocates hundreds of
  thousands of long-lived objects, and Python's cyclic garbage collector
  rescans them again and again while they are made (about 0.5 s), then once
  more when the interpreter exits (about 0.5 s). :func:`gc_paused` keeps the
  collector off while they are made and then freezes them, as the ``gc``
  documentation suggests for objects that live as long as the process.
- openai-whisper imports numba (and with it LLVM, a 179-MB library) only to
  decorate its two DTW kernels, which vmgrade replaces (:mod:`vmgrade.asr.speedups.dtw`):
  0.15-0.4 s. :func:`import_whisper` imports whisper with the decoration
  deferred until a kernel is first called.
- tiktoken checks every text it encodes for special tokens with a regular
  expression of all 1,608 of whisper's; compiling it takes about 0.4 s on the
  first encode of a process (whisper encodes a few characters to find its
  non-speech tokens). :func:`skip_special_token_scan` skips the check for
  text that cannot hold a special token.

``bench/goals.py --cold`` measures the cold start.

vmgrade patches whisper's internals (here, in the other speedups and in
:mod:`vmgrade.asr.transcribe`), so :func:`import_whisper` first checks that
the installed openai-whisper is the release they were written for,
:data:`WHISPER_VERSION`.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import sys
import types
from collections.abc import Iterator
from importlib import metadata

from ...errors import ModelError

# The openai-whisper release whose internals vmgrade patches; any other fails with WHISPER_FIX.
WHISPER_VERSION = "20250625"
WHISPER_DIST = "openai-whisper"
WHISPER_FIX = f"pip install --no-deps {WHISPER_DIST}=={WHISPER_VERSION}"


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Collect no garbage inside the block; afterwards freeze every tracked object.

    For a block that builds objects that live as long as the process (imported
    modules, a loaded model): frozen objects are left out of every later
    collection, including the one at interpreter exit. Objects created after
    the block are collected as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def skip_special_token_scan(encoding) -> None:
    """Make ``encoding.encode`` skip tiktoken's special-token check where ``text`` cannot contain one.

    Parameters
    ----------
    encoding : tiktoken.Encoding
        Patched in place (whisper caches one per vocabulary, so every
        whisper tokenizer of the process shares it). Text containing the
        prefix every special token starts with (``"<|"``) is encoded as
        before, with the check.
    """
    if getattr(encoding, "_vmgrade_plain_encode", False):
        return
    prefix = os.path.commonprefix(sorted(encoding.special_tokens_set))
    if not prefix:
        return
    checked_encode = encoding.encode

    def encode(text: str, **kwargs) -> list[int]:
        if prefix not in text:  # no special token can match: the same tokens, without the scan
            return encoding.encode_ordinary(text)
        return checked_encode(text, **kwargs)

    encoding.encode = encode
    encoding._vmgrade_plain_encode = True


def check_whisper_version() -> None:
    """Raise unless the installed openai-whisper is :data:`WHISPER_VERSION`.

    Raises
    ------
    ModelError
        ``engine_not_installed`` when openai-whisper is not installed,
        ``engine_version_mismatch`` for another release; the message names the fix.
    """
    try:
        installed = metadata.version(WHISPER_DIST)
    except metadata.PackageNotFoundError:
        raise ModelError(
            f"{WHISPER_DIST} is not installed. Fix: {WHISPER_FIX}", code="engine_not_installed"
        ) from None
    if installed != WHISPER_VERSION:
        raise ModelError(
            f"{WHISPER_DIST} {installed} is installed, but vmgrade patches the internals of "
            f"{WHISPER_VERSION} and needs exactly that release. Fix: {WHISPER_FIX}",
            code="engine_version_mismatch",
        )


def import_whisper():
    """Import openai-whisper; numba only if something other than its ``@numba.jit`` needs it.

    While whisper imports, ``numba`` is a stand-in whose ``jit`` wraps a
    function to be jitted by the real numba on its first call; any other
    attribute imports the real numba. Afterwards the stand-in is gone, so a
    later ``import numba`` (librosa's, say) gets the real one. Where numba
    or whisper is already imported this is a plain import.

    Raises
    ------
    ModelError
        When the installed openai-whisper is not :data:`WHISPER_VERSION`
        (see :func:`check_whisper_version`).
    """
    check_whisper_version()
    if "whisper" not in sys.modules and "numba" not in sys.modules:
        stand_in = _DeferredNumba()
        sys.modules["numba"] = stand_in
        try:
            import whisper  # noqa: F401
        finally:
            if sys.modules.get("numba") is stand_in:
                del sys.modules["numba"]
    import whisper

    return whisper


def _real_numba():
    if isinstance(sys.modules.get("numba"), _DeferredNumba):
        del sys.modules["numba"]
    import numba

    return numba


# (function, jit arguments) decorated under the stand-in and not yet compiled
_deferred: list[tuple] = []


def _compile_deferred() -> None:
    """Jit every deferred function with the real numba, in place of its stand-in in its module.

    All at once, since jitted code calling another jitted function (whisper's
    ``dtw_cpu`` calls ``backtrace``) looks the callee up in its module's globals.
    """
    numba = _real_numba()
    while _deferred:
        fn, args, options = _deferred.pop()
        fn.__globals__[fn.__name__] = numba.jit(*args, **options)(fn)


class _DeferredNumba(types.ModuleType):
    """``numba`` while whisper imports: ``jit`` defers compiling to the first call."""

    def __init__(self):
        super().__init__("numba")

    @staticmethod
    def jit(*args, **options):
        if args and callable(args[0]):  # @numba.jit without arguments
            return _DeferredNumba.jit(*args[1:], **options)(args[0])

        def decorate(fn):
            _deferred.append((fn, args, options))

            @functools.wraps(fn)
            def first_call(*call_args, **call_kwargs):
                _compile_deferred()
                return fn.__globals__[fn.__name__](*call_args, **call_kwargs)

            return first_call

        return decorate

    def __getattr__(self, name: str):
        if name.startswith("__"):  # module introspection (inspect.getmodule scans every module)
            raise AttributeError(name)
        return getattr(_real_numba(), name)
