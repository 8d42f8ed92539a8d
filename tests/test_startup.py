"""Cold-start helpers: a paused garbage collector and tiktoken without its special-token scan."""

from __future__ import annotations

import gc

import pytest

from vmgrade.asr.speedups.startup import gc_paused, skip_special_token_scan


def test_gc_paused_freezes_what_the_block_made_and_restores_collection():
    assert gc.isenabled()
    frozen_before = gc.get_freeze_count()
    try:
        with gc_paused():
            assert not gc.isenabled()
            made = [[i] for i in range(1000)]
        assert gc.isenabled()
        assert gc.get_freeze_count() >= frozen_before + len(made)
    finally:
        gc.unfreeze()  # give the test process back its ordinary collector


def test_gc_paused_leaves_a_disabled_collector_disabled():
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.unfreeze()
        gc.enable()


def test_plain_text_encodes_as_before_and_special_tokens_are_still_refused():
    tokenizer_module = pytest.importorskip("whisper.tokenizer")
    import tiktoken

    cached = tokenizer_module.get_encoding("multilingual")  # shared by the process: patch a copy

    def copy():
        return tiktoken.Encoding(cached.name, pat_str=cached._pat_str,
                                 mergeable_ranks=cached._mergeable_ranks,
                                 special_tokens=cached._special_tokens)

    reference, patched = copy(), copy()
    skip_special_token_scan(patched)
    skip_special_token_scan(patched)  # twice is once
    texts = [" -", " um, so I was calling about 415-555-0198.", "", "héllo  wörld\n", "a < b | c"]
    for text in texts:
        assert patched.encode(text) == reference.encode(text)
    text = "Hi <|endoftext|> there"
    with pytest.raises(ValueError):
        patched.encode(text)
    allowed = patched.encode(text, allowed_special="all")
    assert allowed == reference.encode(text, allowed_special="all")
    assert cached.eot_token in allowed


@pytest.mark.slow
def test_whisper_imports_without_numba_and_its_kernels_still_run():
    # a new interpreter: this one imported whisper (and numba) long ago
    script = """
import sys
import numpy as np
from vmgrade.asr.speedups.startup import import_whisper
whisper = import_whisper()
assert "numba" not in sys.modules, "numba was imported"
import whisper.timing
from vmgrade.asr.speedups.dtw import dtw
cost = np.random.default_rng(0).random((7, 40)).astype(np.float32)
assert np.array_equal(whisper.timing.dtw_cpu(cost), dtw(cost))  # jitted by numba on this first call
import numba
assert numba.jit is not whisper.timing.numba.jit and hasattr(numba, "njit")  # the real one from now on
print("ok")
"""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
