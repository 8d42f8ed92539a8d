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


# ---------------------------------------------------------------- round 3 (issue 29): decoders

def _speech_16k(seconds: float):
    return bench._speech(None, 16000, seconds)


@pytest.mark.parametrize("codec,suffix", [("aac", ".m4a"), ("libopus", ".webm")])
def test_eight_channel_recordings_decode_in_full(tmp_path, codec, suffix):
    """7.1 files (8 channels) crashed the process in PyAV's per-plane access; they decode to the mix."""
    import numpy as np

    from vmgrade.audio import load

    path = bench.surround_speech(tmp_path / f"surround{suffix}", codec, seconds=32.0)
    audio = load(path)
    assert audio.source.channels == 8 and audio.source.decoder == "pyav"
    assert abs(audio.duration_s - 32.0) < 0.2
    # every channel holds the same speech, so the mix is that speech (past codec delay and loss)
    speech = _speech_16k(32.0)
    lag = int(np.argmax(np.correlate(audio.samples[:16000 * 4], speech[:16000 * 3], "valid")))
    decoded = audio.samples[lag:]
    n = min(len(decoded), len(speech)) - 1600
    r = np.corrcoef(decoded[:n], speech[:n])[0, 1]
    assert r > 0.9, r


def test_eight_channel_uploads_are_checked_by_the_server_without_a_crash(tmp_path):
    pytest.importorskip("fastapi")
    path = bench.surround_speech(tmp_path / "surround.m4a", "aac", seconds=20.0)
    result = bench.measure(path, web_uploads=2)
    assert not str(result["code"]).startswith("crashed"), result
    assert all(answer.split()[0] in ("200", "201", "202") for answer in result["detail"].split("; ")), result


def test_a_declared_alac_frame_over_budget_is_refused_with_bounded_cost(tmp_path):
    """ALAC lets a header declare 16.7 M samples a frame: 448 MB at 7 channels, per frame."""
    path = bench.alac_declaring(tmp_path / "bomb.m4a", frame_samples=1 << 24, channels=7)
    result = bench.measure(path)
    assert result["code"] == "decode_over_budget", result
    assert "16777216 samples x 7 channels" in result["detail"] and str(path) in result["detail"]
    assert result["peak_rss_mb"] < MAX_RSS_MB, result
    assert result["seconds"] < MAX_S, result

    from vmgrade.audio import load

    fine = load(bench.alac_declaring(tmp_path / "fine.m4a", frame_samples=4096, channels=7))
    assert fine.source.codec == "alac" and fine.source.channels == 7 and abs(fine.duration_s - 2.0) < 0.05


def test_a_sparse_wav_of_empty_chunks_is_refused_at_once(tmp_path):
    """2 GB of holes after a RIFF header (4 KB on disk) walked 8 bytes a chunk: 106 s before."""
    path = bench.wav_sparse(tmp_path / "sparse.wav", size_bytes=2 * 2**30)
    result = bench.measure(path)
    assert result["code"] == "not_audio", result
    assert "chunks" in result["detail"]
    assert result["seconds"] < 5.0, result


def test_float_samples_far_past_full_scale_are_refused_and_an_overshoot_is_kept(tmp_path):
    import soundfile as sf

    from vmgrade.audio import load
    from vmgrade.errors import AudioError

    loud = bench.float_over_range(tmp_path / "loud.wav", gain=1000.0)
    with pytest.raises(AudioError) as err:
        load(loud)
    assert err.value.code == "out_of_range" and "+60" in str(err.value) and str(loud) in str(err.value)

    speech = _speech_16k(5.0)
    overshoot = tmp_path / "overshoot.wav"
    sf.write(str(overshoot), speech / abs(speech).max() * 1.05, 16000, subtype="FLOAT")  # +0.4 dB
    audio = load(overshoot)
    assert 1.0 < float(abs(audio.samples).max()) < 1.07  # graded as is, not rescaled


def _crash_on(crash_name: str):
    """The real decoding child, told to crash (a real SIGSEGV, reading address 0) on one file."""
    from vmgrade.isolate import Isolated

    class CrashOn(Isolated):
        def call(self, module, function, kwargs, timeout_s):
            if kwargs["path"].endswith(crash_name):
                return super().call("ctypes", "string_at", {"ptr": 0}, timeout_s)
            return super().call(module, function, kwargs, timeout_s)

    return CrashOn()


def test_a_decoder_crash_costs_one_file_not_the_process(tmp_path, monkeypatch):
    from conftest import SAMPLES

    import vmgrade.audio as audio_mod
    from vmgrade.errors import AudioError

    crash = tmp_path / "crash.wav"
    crash.write_bytes((SAMPLES / "followup_phone.wav").read_bytes())
    monkeypatch.setattr(audio_mod, "_DECODER", _crash_on("crash.wav"))
    first = audio_mod.load(SAMPLES / "before_practice.wav")
    with pytest.raises(AudioError) as err:
        audio_mod.load(crash)
    assert err.value.code == "decoder_crashed"
    assert "SIGSEGV" in str(err.value) and str(crash) in str(err.value)
    again = audio_mod.load(SAMPLES / "before_practice.wav")  # a fresh child
    assert first.duration_s == again.duration_s


def test_the_decoding_child_is_killed_on_time_and_capped_in_memory():
    from vmgrade.isolate import ChildFailed, Isolated

    child = Isolated(address_space_bytes=600 * 2**20)
    with pytest.raises(ChildFailed) as err:
        child.call("subprocess", "call", {"args": ["sleep", "30"]}, timeout_s=0.5)
    assert err.value.reason == "timeout"
    with pytest.raises(ChildFailed) as err:
        child.call("numpy", "ones", {"shape": (2**28,)})  # 2 GB of float64
    assert err.value.reason == "memory"
    assert child.call("operator", "add", {}) if False else child.call("os", "getpid", {}) > 0  # serving
    child.stop()


def test_a_decode_past_its_time_limit_is_decode_timeout(monkeypatch):
    from conftest import SAMPLES

    import vmgrade.audio as audio_mod
    from vmgrade.errors import AudioError

    monkeypatch.setattr(audio_mod, "DECODE_TIMEOUT_S", 1e-4)
    with pytest.raises(AudioError) as err:
        audio_mod.load(SAMPLES / "strong_wideband.flac")
    assert err.value.code == "decode_timeout"


@pytest.mark.slow
def test_grade_goes_on_past_a_crashing_and_an_eight_channel_file(tmp_path, monkeypatch, capsys):
    import json

    from conftest import SAMPLES

    import vmgrade.audio as audio_mod
    from vmgrade.cli import EXIT_FILE_FAILED, main

    surround = bench.surround_speech(tmp_path / "surround.m4a", "aac", seconds=32.0)
    crash = tmp_path / "crash.wav"
    crash.write_bytes((SAMPLES / "followup_phone.wav").read_bytes())
    monkeypatch.setattr(audio_mod, "_DECODER", _crash_on("crash.wav"))
    status = main(["grade", str(surround), str(crash), str(SAMPLES / "followup_phone.wav"),
                   "--format", "json", "--model", "tiny.en"])
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert status == EXIT_FILE_FAILED
    assert [r.get("error", {}).get("code") for r in records] == [None, "decoder_crashed", None]
    assert records[0]["audio"]["channels"] == 8


def test_a_stream_that_changes_format_midway_is_refused_with_its_code(tmp_path):
    from vmgrade.audio import load
    from vmgrade.errors import AudioError

    path = bench.adts_format_change(tmp_path / "joined.aac")
    with pytest.raises(AudioError) as err:
        load(path)
    assert err.value.code == "unsupported_codec" and "changes format midway" in str(err.value)


def test_an_unexpected_failure_while_decoding_is_that_files_internal_error(monkeypatch):
    """A bug in decoding one file (any exception in the child) is an AudioError naming the file:
    the web check answers it like any other (not a 500), the CLI and batch record it."""
    from conftest import SAMPLES

    import vmgrade.audio as audio_mod
    from vmgrade.errors import AudioError
    from vmgrade.isolate import Isolated

    class Buggy(Isolated):
        def call(self, module, function, kwargs, timeout_s):
            return super().call("json", "loads", {"s": "{"}, timeout_s)  # raises in the child

    monkeypatch.setattr(audio_mod, "_DECODER", Buggy())
    with pytest.raises(AudioError) as err:
        audio_mod.load(SAMPLES / "before_practice.wav")
    assert err.value.code == "internal_error"
    assert "JSONDecodeError" in str(err.value) and "before_practice.wav" in str(err.value)
