"""Hostile input costs bounded memory and time before its error (issue 17, item 1).

Bombs come from ``bench/hostile_input.py``; each is built in chunks in a temp
dir and loaded in a child process that reports its own peak RSS.
"""

from __future__ import annotations

import pytest
from conftest import load_script

MAX_RSS_MB = 800.0
MAX_S = 20.0


bench = load_script("bench/hostile_input.py", "hostile_input")
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


def test_concurrent_web_uploads_of_a_bomb_are_refused_with_bounded_cost(tmp_path):
    """The web path: three uploads at once of a FLAC whose header leaves its 2-h length open."""
    pytest.importorskip("fastapi")
    path = bench.flac_silence(tmp_path / "bomb.flac", 2 * HOUR_S, declared_frames=0)
    result = bench.measure(path, max_duration_s=600.0, web_uploads=3)
    assert result["code"] == "too_long", result
    assert result["detail"].count("422 too_long") == 3, result
    assert result["peak_rss_mb"] < MAX_RSS_MB, result
    assert result["seconds"] < MAX_S, result
