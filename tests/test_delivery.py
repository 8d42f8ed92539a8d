"""Tests for vmgrade.delivery on synthesised signals with known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vmgrade import delivery, vad
from vmgrade.asr.transcribe import Segment, Transcript, Word
from vmgrade.audio import Audio, SourceInfo

SR = 16000


def make_audio(y: np.ndarray, source_sr: int = SR) -> Audio:
    info = SourceInfo(
        path="synthetic", format="WAV", codec="PCM_16", sample_rate_hz=source_sr, channels=1,
        duration_s=len(y) / SR, size_bytes=0, decoder="soundfile",
    )  # fmt: skip
    return Audio(samples=np.asarray(y, np.float32), source=info, sample_rate=SR)


def voiced(
    duration_s: float, f0_hz=150.0, *, am_hz: float = 4.0, level: float = 0.3, seed: int = 0
) -> np.ndarray:
    """Speech-like: harmonic tone (F0 constant or a (start, end) glide), 4 Hz syllable-like AM."""
    t = np.arange(int(duration_s * SR)) / SR
    if isinstance(f0_hz, tuple):
        f = np.linspace(f0_hz[0], f0_hz[1], t.size)
    else:
        f = np.full(t.size, float(f0_hz))
    phase = 2 * np.pi * np.cumsum(f) / SR
    y = sum(np.sin(k * phase) / k for k in range(1, 9))
    env = 0.55 + 0.45 * np.sin(2 * np.pi * am_hz * t - np.pi / 2)  # dips to 0.1, never silent
    ramp = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.01)  # 10 ms fades
    y = y * env * ramp
    return (level * y / np.max(np.abs(y))).astype(np.float32)


def silence(duration_s: float) -> np.ndarray:
    return np.zeros(int(round(duration_s * SR)), np.float32)


def noise_bed(y: np.ndarray, dbfs: float = -70.0, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (y + rng.standard_normal(y.size) * 10 ** (dbfs / 20)).astype(np.float32)


# lead 0.8 s, speech 2 s, gaps 0.4 / 1.0 / 2.5 s, tail 1.2 s
LEAD, TAIL, SPEECH = 0.8, 1.2, 2.0
GAPS = (0.4, 1.0, 2.5)


@pytest.fixture(scope="module")
def paused():
    parts = [silence(LEAD)]
    gaps, t = [], LEAD
    for i, g in enumerate(GAPS):
        parts.append(voiced(SPEECH, 120 + 30 * i))
        t += SPEECH
        parts.append(silence(g))
        gaps.append((t, t + g))
        t += g
    parts.append(voiced(SPEECH, 200))
    t += SPEECH
    parts.append(silence(TAIL))
    y = noise_bed(np.concatenate(parts))
    return make_audio(y), gaps, (LEAD, t)


def test_pauses_and_silences(paused):
    audio, gaps, (start, end) = paused
    m = delivery.measure(audio, vad="energy")
    assert m.vad == "energy"
    assert m.pause_count == 3
    for p, (gs, ge) in zip(m.pauses, gaps):
        assert abs(p.start_s - gs) <= 0.15
        assert abs(p.end_s - ge) <= 0.15
    assert m.long_pause_count == 1
    assert abs(m.longest_pause_ms - 2500) <= 300
    assert abs(m.leading_silence_s - LEAD) <= 0.1
    assert abs(m.trailing_silence_s - TAIL) <= 0.1
    assert abs(m.message_length_s - (end - start)) <= 0.2
    assert m.speech_time_s == pytest.approx(m.message_length_s - sum(p.duration_ms for p in m.pauses) / 1000)
    assert m.pause_ratio == pytest.approx(sum(GAPS) / (end - start), abs=0.03)


def test_silero_runs_and_rejects_tones(paused):
    # Silero is a neural speech detector: synthetic harmonic tones are not speech to it,
    # so only its plumbing is tested here (real speech: bench/delivery_accuracy.py).
    audio, _, _ = paused
    prob = vad.silero_probabilities(audio.samples)
    assert prob.shape == (int(np.ceil(len(audio.samples) / 512)),)
    assert np.all((prob >= 0) & (prob <= 1))
    assert vad.silero_probabilities(silence(2.0)).max() < 0.5
    m = delivery.measure(audio, vad="silero")
    assert m.vad == "silero"
    json.dumps(m.to_dict(), allow_nan=False)


def test_min_pause_parameter(paused):
    audio, _, _ = paused
    assert delivery.measure(audio, min_pause_ms=600).pause_count == 2
    assert delivery.measure(audio, long_pause_s=0.9).long_pause_count == 2


def test_to_dict_is_json_safe_and_stable(paused):
    audio, _, _ = paused
    d = delivery.measure(audio).to_dict()
    json.dumps(d, allow_nan=False)
    for key in (
        "duration_s", "speech_start_s", "speech_end_s", "leading_silence_s", "trailing_silence_s",
        "message_length_s", "speech_time_s", "word_count", "rate_wpm", "articulation_rate_wpm",
        "pace_windows", "syllable_rate_per_s", "syllable_count", "syllable_wpm_estimate", "pauses",
        "pause_count", "long_pause_count", "longest_pause_ms", "pause_ratio", "speech_intervals",
        "fillers", "filler_count", "filler_rate_per_min", "uncovered_voiced", "acoustic_filler_count",
        "f0_median_hz", "f0_sd_st", "pvq", "monotone", "loudness_dbfs", "word_loudness_sd_db",
        "clipping_ratio", "snr_db", "bandwidth", "bandwidth_hz", "level_too_low", "level_too_high",
    ):  # fmt: skip
        assert key in d, key
    assert d["pauses"][0].keys() == {"start_s", "end_s", "duration_ms"}
    assert d["word_count"] is None and d["filler_count"] is None  # audio only
    assert d["pace_source"] == "syllables"


def test_syllable_nuclei_follow_modulation():
    # 4 Hz AM over 6 s of voiced sound: ~24 intensity peaks, all voiced
    y = noise_bed(np.concatenate([silence(0.5), voiced(6.0, 140), silence(0.5)]))
    m = delivery.measure(make_audio(y))
    assert 20 <= m.syllable_count <= 26
    assert m.syllable_rate_per_s == pytest.approx(4.0, abs=0.6)


def test_snr_estimate():
    rng = np.random.default_rng(3)
    for snr in (10.0, 20.0, 30.0):
        tone = np.concatenate(
            [
                silence(1.0),
                voiced(3.0, 150, am_hz=0.0001),
                silence(1.0),
                voiced(3.0, 150, am_hz=0.0001),
                silence(1.0),
            ]
        )
        speech_power = np.mean(tone[np.abs(tone) > 0] ** 2) * 1.0
        noise = rng.standard_normal(tone.size) * np.sqrt(speech_power / 10 ** (snr / 10))
        m = delivery.measure(make_audio((tone + noise).astype(np.float32)))
        assert m.snr_db == pytest.approx(snr, abs=3.0), (snr, m.snr_db)


def test_clipping():
    t = np.arange(3 * SR) / SR
    clean = 0.5 * np.sin(2 * np.pi * 220 * t)
    clipped = np.clip(2.0 * np.sin(2 * np.pi * 220 * t), -1, 1)
    mc = delivery.measure(make_audio(clean.astype(np.float32)))
    mk = delivery.measure(make_audio(clipped.astype(np.float32)))
    assert mc.clipping_ratio == 0.0 and not mc.level_too_high
    assert mk.clipping_ratio > 0.3 and mk.level_too_high
    assert delivery.clipping_ratio(np.array([0.0, 0.99, -1.0, 0.5])) == 0.5


def test_level_too_low():
    y = noise_bed(np.concatenate([silence(0.5), voiced(2.0, level=0.01), silence(0.5)]), dbfs=-90)
    m = delivery.measure(make_audio(y))
    assert m.loudness_dbfs < -35 and m.level_too_low
    assert not delivery.measure(make_audio(voiced(2.0, level=0.3))).level_too_low


def test_monotone_vs_glide():
    steady = noise_bed(np.concatenate([silence(0.3), voiced(3.0, 150), silence(0.3)]))
    glide = noise_bed(np.concatenate([silence(0.3), voiced(3.0, (120.0, 240.0)), silence(0.3)]))
    ms, mg = delivery.measure(make_audio(steady)), delivery.measure(make_audio(glide))
    assert ms.f0_median_hz == pytest.approx(150, rel=0.03)
    assert ms.monotone is True and ms.f0_sd_st < 0.5
    assert mg.monotone is False and mg.f0_sd_st > 2.0
    assert mg.f0_sd_st > ms.f0_sd_st
    # a 120->240 Hz linear glide: median ~180 Hz, SD of log-uniform-ish octave ~3.4 st
    assert mg.f0_median_hz == pytest.approx(180, rel=0.05)
    assert mg.pvq > ms.pvq
    assert delivery.measure(make_audio(glide), monotone_sd_st=5.0).monotone is True


def test_yin_accuracy():
    for f0 in (70.0, 110.0, 220.0, 380.0):
        f, ap = delivery.yin(voiced(1.0, f0, am_hz=0.0001), SR)
        v = f[10:-10]
        assert np.isfinite(v).mean() > 0.95
        assert np.nanmedian(v) == pytest.approx(f0, rel=0.01)
    f, _ = delivery.yin(np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 0.1, SR)
    assert np.isfinite(f).mean() < 0.1


def test_bandwidth():
    rng = np.random.default_rng(5)
    wide = rng.standard_normal(3 * SR).astype(np.float32) * 0.1
    spec = np.fft.rfft(wide)
    spec[np.fft.rfftfreq(wide.size, 1 / SR) > 3600] = 0
    narrow = np.fft.irfft(spec, wide.size).astype(np.float32)
    mw = delivery.measure(make_audio(wide))
    mn = delivery.measure(make_audio(narrow))
    assert mw.bandwidth == "wideband" and mw.bandwidth_hz > 7000
    assert mn.bandwidth == "narrowband" and 3300 <= mn.bandwidth_hz <= 4000
    # an 8 kHz source is narrowband whatever its spectrum
    assert delivery.measure(make_audio(wide, source_sr=8000)).bandwidth == "narrowband"


def W(word: str, start: float, end: float | None = None) -> Word:
    return Word(word, start, start + 0.3 if end is None else end, 0.9)


def words_from(
    text: str, start: float = 0.0, step: float = 0.35, gaps: dict[int, float] | None = None
) -> list[Word]:
    out, t = [], start
    for i, tok in enumerate(text.split()):
        t += (gaps or {}).get(i, 0.0)
        out.append(W(tok, t, t + 0.3))
        t += step
    return out


@pytest.mark.parametrize(
    ("text", "expected", "gaps"),
    [
        ("Um, hi, uh, this is Sam. Umm, hmm, mm, er.", ["um", "uh", "umm", "hmm", "mm", "er"], None),
        ("I would like to talk, like, about your plan.", ["like"], None),
        ("It looks like a good fit and I like it.", [], None),
        ("It feels like something. Sounds like fun.", [], None),
        ("Like, we could meet.", ["like"], None),
        ("we could like meet on Tuesday", ["like"], {3: 0.4}),
        ("So, you know, we help teams.", ["you know"], None),
        ("Do you know the answer? You know what I mean.", [], None),
        ("I'll let you know.", [], None),
        ("it's quick you know", ["you know"], None),
        ("Did you know that we ship?", [], None),
    ],
)
def test_find_fillers(text, expected, gaps):
    found = delivery.find_fillers(words_from(text, gaps=gaps))
    assert [f.word for f in found] == expected


def test_filler_times():
    ws = words_from("So, you know, um, call me")
    f = delivery.find_fillers(ws)
    assert [(x.word, x.start_s, x.end_s) for x in f] == [
        ("you know", ws[1].start, ws[2].end),
        ("um", ws[3].start, ws[3].end),
    ]


@pytest.mark.parametrize(
    ("tokens", "digits"),
    [
        ("555-1234", 7),
        ("five five five, one two three four", 7),
        ("double five oh, one two", 5),
        ("triple seven", 3),
        ("oh hi there", 0),
        ("four one five, twenty twenty", 7),
        ("twenty one", 2),
        ("nineteen", 2),
        ("five hundred", 3),
        ("call me back", 0),
    ],
)
def test_count_digits(tokens, digits):
    assert delivery.count_digits(words_from(tokens, 0.0)) == digits


def test_span_pace():
    ws = words_from("my number is", 0.0) + words_from("five five five, one two three four.", 2.0, step=0.5)
    intervals = [(0.0, 1.1), (1.9, 5.5)]
    sp = delivery.span_pace(ws, 2.0, 5.5, intervals)
    assert sp.word_count == 7 and sp.digit_count == 7
    assert sp.duration_s == pytest.approx(3.5)
    assert sp.digits_per_s == pytest.approx(2.0)
    assert sp.words_per_s == pytest.approx(2.0)
    assert sp.pause_before_ms == pytest.approx(800)
    # without a speech track: previous word end to first span word
    assert delivery.span_pace(ws, 2.0, 5.5).pause_before_ms == pytest.approx((2.0 - (0.7 + 0.3)) * 1000)
    # a span that starts mid-speech has no pause before; one at the very start has None
    assert delivery.span_pace(ws, 3.0, 5.5, intervals).pause_before_ms == 0.0
    assert delivery.span_pace(ws, 0.0, 1.0, intervals).pause_before_ms is None
    json.dumps(sp.to_dict(), allow_nan=False)


def transcript_of(words: list[Word]) -> Transcript:
    seg = Segment(
        0.0, words[-1].end if words else 0.0, " ".join(w.word for w in words), -0.2, 0.01, 1.2, tuple(words)
    )
    return Transcript(" ".join(w.word for w in words), "en", (seg,) if words else (), 0.01, "test", "test")


def test_measure_with_transcript_rates_fillers_and_acoustic(paused):
    audio, gaps, (start, end) = paused
    # words cover the first three speech chunks only; the last 2 s chunk is uncovered
    # except its first 1.2 s; the 0.8 s left over counts as an acoustic filler.
    words = []
    t0 = start
    for chunk in range(3):
        words += words_from("um hello there friend today", t0, step=0.4)
        t0 += SPEECH + GAPS[chunk]
    words += words_from("one two three", t0, step=0.4)
    m = delivery.measure(audio, transcript_of(words))
    assert m.word_count == 18
    assert m.rate_wpm == pytest.approx(18 / m.message_length_s * 60)
    assert m.articulation_rate_wpm > m.rate_wpm
    assert m.filler_token_count == 3  # the three "um"
    assert m.acoustic_filler_count == 1
    (u,) = m.uncovered_voiced
    assert u.start_s == pytest.approx(t0 + 1.2 - 0.1 + delivery.WORD_PAD_S, abs=0.1)
    assert u.end_s == pytest.approx(end, abs=0.1)
    assert m.filler_count == 4
    assert m.filler_rate_per_min == pytest.approx(4 / (m.message_length_s / 60))
    assert m.word_loudness_source == "words" and m.word_loudness_sd_db is not None
    assert m.pace_source == "transcript"
    assert sum(w.rate_wpm * (w.end_s - w.start_s) / 60 for w in m.pace_windows) == pytest.approx(18, abs=0.01)
    json.dumps(m.to_dict(), allow_nan=False)


def test_empty_transcript_and_silence():
    y = noise_bed(np.concatenate([silence(0.5), voiced(1.5), silence(0.5)]))
    m = delivery.measure(make_audio(y), transcript_of([]))
    # no words over 1.5 s of voice: a pace cannot be measured, and none is reported
    assert m.word_count == 0 and m.rate_wpm is None and m.filler_token_count == 0
    assert m.pace_measurable is False and m.to_dict()["pace_measurable"] is False
    assert m.word_loudness_source == "speech_intervals"
    json.dumps(m.to_dict(), allow_nan=False)
    quiet = delivery.measure(make_audio(noise_bed(silence(2.0), dbfs=-80)))
    json.dumps(quiet.to_dict(), allow_nan=False)
    assert quiet.pause_count == 0


def test_invalid_vad():
    with pytest.raises(ValueError):
        delivery.measure(make_audio(voiced(1.0)), vad="webrtc")


def test_a_number_split_over_tokens_counts_its_digits():
    """Word timing may split "415-555-0198" into "415", "-555", "-0198.": ten spoken words."""
    from vmgrade.delivery import spoken_word_counts

    tokens = ["is", "415", "-555", "-0198.", "Again,", "4155550198.", "book", "15", "minutes"]
    assert spoken_word_counts(tokens) == [1, 3, 3, 4, 1, 10, 1, 1, 1]
    assert spoken_word_counts(["at", "3", "-4", "pm"]) == [1, 1, 1, 1]


def test_label_thresholds_set_the_labels(paused):
    audio, _, _ = paused
    loose = delivery.LabelThresholds(long_pause_s=0.9, monotone_sd_st=100.0, level_low_dbfs=0.0)
    m = delivery.measure(audio, thresholds=loose)
    assert m.long_pause_count == 2 and m.monotone is True and m.level_too_low is True
    assert delivery.measure(audio, thresholds=loose, long_pause_s=3.0).long_pause_count == 0


def test_pitch_track_is_kept_decimated_and_json_safe():
    y = noise_bed(np.concatenate([silence(0.5), voiced(3.0, (120, 180)), silence(0.5)]))
    m = delivery.measure(make_audio(y))
    track = m.to_dict()["pitch_track"]
    json.dumps(track, allow_nan=False)
    times, f0 = np.array(track["times_s"]), track["f0_hz"]
    assert len(times) == len(f0) and np.allclose(np.diff(times), delivery.pitch.PITCH_TRACK_STEP_S)
    voiced_f0 = np.array([f for f in f0 if f is not None])
    assert len(voiced_f0) >= 25 and 110 < voiced_f0.min() and voiced_f0.max() < 190
    assert all(f is None for t, f in zip(times, f0) if t < 0.4)  # silence is unvoiced
    # the same contour from the audio, for reports saved before the key existed
    again = delivery.pitch_track_from_audio(y, SR, m.speech_intervals)
    assert again == m.pitch_track


def test_pace_needs_enough_speech():
    """Seven words said in about a second are not a pace (393 wpm from one sentence); a longer run is."""
    y = noise_bed(np.concatenate([silence(0.5), voiced(1.07), silence(0.5)]))
    said = words_from("hi this is sam call me back", 0.5, step=0.15)
    short = delivery.measure(make_audio(y), transcript_of(said))
    assert short.word_count == 7 and short.rate_wpm is None and not short.pace_measurable
    assert short.pace_windows == ()
    long_y = noise_bed(np.concatenate([silence(0.5), voiced(5.0), silence(0.5)]))
    text = "hi this is sam from acme calling about your order please call me back today thanks"
    long = delivery.measure(make_audio(long_y), transcript_of(words_from(text, 0.5, step=0.33)))
    assert long.pace_measurable and long.rate_wpm is not None


def test_snr_needs_noise_to_measure():
    """Digital silence between words is not a noise floor: no SNR (not 85-97 dB), and why."""
    y = np.concatenate([silence(0.8), voiced(2.0), silence(0.6), voiced(2.0), silence(0.8)])
    gated = delivery.measure(make_audio(y))
    assert gated.snr_db is None and gated.snr_note == "no_noise"
    noisy = delivery.measure(make_audio(noise_bed(y, dbfs=-45.0)))
    assert noisy.snr_db is not None and noisy.snr_note is None and noisy.snr_db < 60
