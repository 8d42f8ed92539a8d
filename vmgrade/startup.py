"""Cold-start costs that are not the model's work: garbage collection and tokenizer set-up.

A cold ``vmgrade grade`` spends seconds before and after the transcription
itself. Two of those costs come from the interpreter and a dependency, not
from anything vmgrade computes:

- Importing torch and whisper and building the model allocates hundreds of
  thousands of long-lived objects, and Python's cyclic garbage collector
  rescans them again and again while they are made (about 0.5 s), then once
  more when the interpreter exits (about 0.5 s). :func:`gc_paused` keeps the
  collector off while they are made and then freezes them, as the ``gc``
  documentation suggests for objects that live as long as the process.
- tiktoken checks every text it encodes for special tokens with a regular
  expression of all 1,608 of whisper's; compiling it takes about 0.4 s on the
  first encode of a process (whisper encodes a few characters to find its
  non-speech tokens). :func:`skip_special_token_scan` skips the check for
  text that cannot hold a special token.

``bench/goals.py --cold`` measures the cold start.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator


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
