"""Hostile input costs bounded memory and time before its error (issue 17, item 1).

Bombs come from ``bench/hostile_input.py``; each is built in chunks in a temp
dir and loaded in a child process that reports its own peak RSS.
"""

from __future__ import annotations

import importlib.util

import pytest
from conftest import ROOT

MAX_RSS_MB = 800.0
MAX_S = 20.0


def _bench():
    spec = importlib.util.spec_from_file_location("hostile_input", ROOT / "bench" / "hostile_input.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _bench()
HOUR_S = 3600.0


@pytest.mark.parametrize("name,build", [
    # header declares 2 h: refused before decoding
    ("flac_2h_8ch", lambda d: bench.flac_silence(d / "bomb.flac", 2 * HOUR_S)),
    # header leaves the length open: the decoder's own cap must stop it
    ("flac_2h_8ch_no_length", lambda d: bench.flac_silence(d / "bomb.flac", 2 * HOUR_S, declared_frames=0)),
    # a WAV data chunk of "unknown" length (0xFFFFFFFF), 11 min of body
    ("wav_unknown_length", lambda d: bench.wav_declaring(d / "bomb.wav", 660.0, 0xFFFFFFFF)),
])
def test_bomb_is_refused_as_too_long_with_bounded_cost(tmp_path, name, build):
    path = build(tmp_path)
    result = bench.measure(path, max_duration_s=600.0)
    assert result["code"] == "too_long", result
    assert str(path) in result["detail"]
    assert result["peak_rss_mb"] < MAX_RSS_MB, result
    assert result["seconds"] < MAX_S, result
