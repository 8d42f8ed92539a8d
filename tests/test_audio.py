"""Decoding every supported format, and a specific error for every bad input."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from conftest import SAMPLES, SR, write_tone

from vmgrade.audio import SAMPLE_RATE, load, resample
from vmgrade.errors import AudioError

av = pytest.importorskip("av")


def _signal(seconds=3.0, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def _encode_pyav(path, container, codec, rate):
    x = resample(_signal(), SR, rate)
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(x[None, :], format="flt", layout="mono")
        frame.sample_rate = rate
        fmt = stream.codec_context.format.name
        for f in av.AudioResampler(format=fmt, layout="mono", rate=rate).resample(frame):
            for packet in stream.encode(f):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@pytest.mark.parametrize(
    "name,writer",
    [
        ("a.wav", lambda p: sf.write(p, _signal(), SR)),
        ("a.flac", lambda p: sf.write(p, _signal(), SR)),
        ("a.ogg", lambda p: sf.write(p, _signal(), SR, format="OGG", subtype="VORBIS")),
        ("a.opus", lambda p: sf.write(p, resample(_signal(), SR, 48000), 48000, "OPUS", format="OGG")),
        ("a.mp3", lambda p: sf.write(p, _signal(), SR, format="MP3")),
        ("a.m4a", lambda p: _encode_pyav(p, "mp4", "aac", 16000)),
        ("a.webm", lambda p: _encode_pyav(p, "webm", "libopus", 48000)),
        ("a.amr", lambda p: _encode_pyav(p, "amr", "libopencore_amrnb", 8000)),
    ],
)
def test_decodes_every_format_to_16k_mono(tmp_path, name, writer):
    path = tmp_path / name
    try:
        writer(str(path))
    except Exception as exc:  # an encoder missing from this build is not a decoder bug
        pytest.skip(f"cannot encode {name} here: {exc}")
    audio = load(path)
    assert audio.sample_rate == SAMPLE_RATE
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert audio.duration_s == pytest.approx(3.0, abs=0.12)
    assert audio.source.duration_s == pytest.approx(3.0, abs=0.12)
    assert audio.source.path == str(path)


def test_keeps_source_facts_and_downmixes(tmp_path):
    path = tmp_path / "stereo.wav"
    x = resample(_signal(), SR, 44100)
    sf.write(str(path), np.stack([x, 0.5 * x], axis=1), 44100, subtype="PCM_24")
    audio = load(path)
    assert audio.source.sample_rate_hz == 44100
    assert audio.source.channels == 2
    assert audio.source.codec == "PCM_24"
    assert audio.source.decoder == "soundfile"
    assert audio.duration_s == pytest.approx(3.0, abs=0.01)
    # the mix of x and 0.5x peaks at 0.75 of x's peak
    assert np.max(np.abs(audio.samples)) == pytest.approx(0.75 * 0.3, rel=0.05)


def test_phone_sample_is_narrowband_source():
    audio = load(SAMPLES / "followup_phone.wav")
    assert audio.source.sample_rate_hz == 8000
    assert audio.sample_rate == SAMPLE_RATE


def _error(path, **kwargs) -> AudioError:
    with pytest.raises(AudioError) as info:
        load(path, **kwargs)
    assert str(path) in info.value.message  # every message names the file
    return info.value


def test_missing_file(tmp_path):
    assert _error(tmp_path / "nope.wav").code == "file_not_found"


def test_directory(tmp_path):
    assert _error(tmp_path).code == "not_a_file"


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    err = _error(path)
    assert err.code == "empty_file" and "empty" in err.message


def test_non_audio(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is a meeting note, not a recording\n" * 20)
    assert _error(path).code == "not_audio"


def test_image_with_audio_extension(tmp_path):
    path = tmp_path / "photo.mp3"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    assert _error(path).code == "not_audio"


def test_truncated_wav(tmp_path):
    full = write_tone(tmp_path / "full.wav", seconds=3)
    cut = tmp_path / "cut.wav"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    err = _error(cut)
    assert err.code == "truncated" and "truncated" in err.message


def test_truncated_flac(tmp_path):
    full = tmp_path / "full.flac"
    sf.write(str(full), _signal(), SR)
    cut = tmp_path / "cut.flac"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    assert _error(cut).code == "truncated"


def test_zero_length(tmp_path):
    path = tmp_path / "zero.wav"
    sf.write(str(path), np.zeros(0, np.float32), SR)
    assert _error(path).code == "zero_length"


def test_all_silent(tmp_path):
    path = tmp_path / "silent.wav"
    sf.write(str(path), np.zeros(SR * 2, np.float32), SR)
    err = _error(path)
    assert err.code == "silent" and "silent" in err.message


def test_too_long(tmp_path):
    path = write_tone(tmp_path / "long.wav", seconds=5)
    err = _error(path, max_duration_s=4)
    assert err.code == "too_long" and "5.0 s" in err.message
    assert load(path, max_duration_s=6).duration_s == pytest.approx(5.0)


def test_resample_preserves_a_tone():
    t = np.arange(8000) / 8000
    x = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    y = resample(x, 8000, 16000)
    assert len(y) == 16000
    spectrum = np.abs(np.fft.rfft(y))
    assert np.argmax(spectrum) == pytest.approx(440, abs=1)  # 1 Hz bins over 1 s


def test_symlink_loop_is_its_own_code(tmp_path):
    (tmp_path / "a.wav").symlink_to(tmp_path / "b.wav")
    (tmp_path / "b.wav").symlink_to(tmp_path / "a.wav")
    err = _error(tmp_path / "a.wav")
    assert err.code == "symlink_loop"
    assert _error(tmp_path / "dangling.wav").code == "file_not_found"


def test_fifo_is_refused_without_opening_it(tmp_path):
    import os

    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    assert _error(fifo).code == "not_a_file"  # opening it would block forever


def test_unreadable_file(tmp_path):
    import os

    path = write_tone(tmp_path / "locked.wav")
    path.chmod(0)
    if os.access(path, os.R_OK):  # root reads anything
        pytest.skip("running with privileges that read a mode-0 file")
    assert _error(path).code == "unreadable"


def test_unknown_wav_format_tag_is_unsupported_codec(tmp_path):
    import struct

    data = bytearray(write_tone(tmp_path / "tone.wav").read_bytes())
    assert data[12:16] == b"fmt "
    data[20:22] = struct.pack("<H", 0x1234)  # a format tag no decoder knows
    path = tmp_path / "odd_tag.wav"
    path.write_bytes(bytes(data))
    assert _error(path).code == "unsupported_codec"


def test_name_that_is_not_utf8(tmp_path):
    import os

    raw = os.path.join(os.fsencode(tmp_path), b"caf\xe9.wav")  # latin-1 bytes, not UTF-8
    with open(raw, "wb") as f:
        f.write(write_tone(tmp_path / "tone.wav").read_bytes())
    audio = load(os.fsdecode(raw))
    assert audio.duration_s == pytest.approx(2.0, abs=0.01)
    with open(raw, "wb") as f:
        f.write(b"not audio at all" * 10)
    with pytest.raises(AudioError) as info:
        load(os.fsdecode(raw))
    assert info.value.code == "not_audio"
    assert "caf\\xe9.wav" in info.value.message
    info.value.message.encode("utf-8")  # no lone surrogates: any UTF-8 writer takes it


def test_too_long_stops_decoding_when_the_header_leaves_the_length_open(tmp_path):
    # a FLAC whose STREAMINFO says "length unknown": only the decoder's own cap can refuse it
    path = tmp_path / "open.flac"
    sf.write(str(path), np.zeros((SR * 6, 2), np.float32) + 0.1, SR)
    data = bytearray(path.read_bytes())
    word = int.from_bytes(data[18:26], "big") & ~((1 << 36) - 1)  # total samples := 0
    data[18:26] = word.to_bytes(8, "big")
    path.write_bytes(bytes(data))
    err = _error(path, max_duration_s=4)
    assert err.code == "too_long" and "limit of 4 s" in err.message
    assert load(path, max_duration_s=7).duration_s == pytest.approx(6.0, abs=0.01)


def test_chunked_decode_matches_whole_file_resampling(tmp_path):
    path = tmp_path / "long.wav"
    x = resample(_signal(seconds=40.0), SR, 44100)  # longer than one decode block at 44.1 kHz
    sf.write(str(path), np.stack([x, 0.5 * x], axis=1), 44100)
    audio = load(path)
    whole = resample(np.stack([x, 0.5 * x], axis=1).mean(axis=1), 44100, SAMPLE_RATE)
    assert audio.samples.shape == whole.shape
    np.testing.assert_allclose(audio.samples, whole, atol=1e-4)
