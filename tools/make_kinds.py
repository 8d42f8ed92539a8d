#!/usr/bin/env python3
"""Build a labelled evaluation set of recording *kinds* for vmgrade's recording-type detectors.

Dev tool, written apart from the detectors so that the set is independent of them.  It
assembles about 115 files (3-60 s; three live calls of 60-120 s) of five kinds:

* ``voicemail``: the rep alone leaving a message (committed sample voicemails, and new texts
  rendered with espeak-ng voices and Piper ``joe``) through many channel treatments: clean,
  sharp and gentle telephone bands, G.711 mu-law/A-law, GSM 6.10, car/cafe/babble noise at
  5-20 dB SNR.  Three hold a synthetic sustained vowel ("sooo": glottal pulses, gliding F0,
  formant resonators) near the start, three pause long and change tone, six are two-channel
  dialer exports whose far side holds only line noise, two end with a beep or hang-up tone;
* ``call_recording``: optional ringback (US/UK), a mailbox greeting (real Asterisk prompts,
  committed greetings, new greetings, almost always in another voice than the rep's), one or
  two beeps or none, the rep's message; mono, or far end and rep on separate channels;
* ``greeting_only``: a greeting, carrier announcement or call-screening prompt, with or
  without a beep, then silence or line noise and no message;
* ``live_call``: two or three different people taking turns: real speakers cut at pauses from
  the speech corpus (TTS stand-ins without it), or TTS voices reading dialogues written here;
* ``no_speech``: silence, hiss, hum, car noise, cafe clatter, ringback, beeps, busy tone and
  music-like tones.

Files are named ``kinds_NNN`` in an order shuffled by the seed, so a name says nothing about
the kind; ``labels.jsonl`` holds the truth (see :func:`build_set`).  Every random choice comes
from a numpy Generator seeded by ``seed`` and the file's id.  TTS renders are cached in
``OUT_DIR/_tts/`` keyed by a hash of voice and text, so a rebuild is fast and bit-identical.

Usage::

    python tools/make_kinds.py OUT_DIR [--corpus ../shared/corpus] [--seed 0]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.util
import io
import json
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from scipy.signal import butter, fftconvolve, lfilter, sosfilt, sosfiltfilt

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLES_DIR = REPO_ROOT / "samples"
TELEPHONY_DIR = SAMPLES_DIR / "telephony"
ESPEAK_EXE = "/usr/bin/espeak-ng"
KINDS = ("voicemail", "call_recording", "greeting_only", "live_call", "no_speech")
GRADED_KINDS = ("voicemail", "call_recording")

WORK_RATE_HZ = 16000  # every file is assembled at this rate, then written at 16 or 8 kHz
PHONE_RATE_HZ = 8000
PHONE_BAND_HZ = (300.0, 3400.0)
SHARP_BUTTER_N = 8  # Butterworth prototype order: a 16th-order band-pass, applied zero-phase
GENTLE_BUTTER_N = 1  # a 2nd-order band-pass, applied zero-phase (truth times stay exact)
SPEECH_PEAK_DBFS = (-6.0, -3.0)
GREETING_PEAK_DBFS = (-8.0, -5.0)
BEEP_DBFS = (-14.0, -8.0)
CLIP_GUARD_DBFS = -0.5
LINE_NOISE_RMS_DBFS = -55.0  # a dialer export's silent far side (its peaks land near -42 dBFS)
TAIL_NOISE_RMS_DBFS = -52.0
FAR_FLOOR_RMS_DBFS = -62.0
TRIM_FRAME_S, PHRASE_FRAME_S = 0.005, 0.02
TRIM_THRESHOLD_DB = -35.0  # speech edges: the first/last frame within this of the loudest frame
FADE_S = 0.003
ESPEAK_WPM = 165
SENTENCE_GAP_S, SEGMENT_GAP_S = 0.3, 0.35
PHRASE_PAUSE_MIN_S, PHRASE_MIN_S, PHRASE_MAX_S = 0.15, 1.0, 8.0
PHRASE_KEEP_MIN_S = 0.5  # a shorter piece of a split phrase is dropped
TURN_GAP_S, OVERLAP_S, OVERLAP_PROBABILITY = (0.2, 1.0), (0.1, 0.4), 0.15
CROSSTALK_DB = -28.0
BEEP_HZ_RANGE, BEEP_S_RANGE = (400.0, 1500.0), (0.15, 1.5)
BABBLE_PITCH_FACTORS = (0.8, 0.9, 1.0, 1.15, 1.3, 1.45)
TTS_CACHE_VERSION = "1"

TREATMENTS = ("clean", "sharp", "gentle", "ulaw", "alaw", "gsm", "car5", "cafe10", "babble15", "car20",
              "cafe5", "babble10", "car15", "cafe20", "babble5", "car10", "cafe15", "babble20")
PHONE_TREATMENTS = {  # name -> (Butterworth N, soundfile subtype); all written at 8 kHz
    "sharp": (SHARP_BUTTER_N, "PCM_16"), "gentle": (GENTLE_BUTTER_N, "PCM_16"),
    "ulaw": (GENTLE_BUTTER_N, "ULAW"), "alaw": (SHARP_BUTTER_N, "ALAW"), "gsm": (GENTLE_BUTTER_N, "GSM610")}
BABBLE_SOURCES = ("validity/generic_pitch.flac", "validity/multi_ask.flac",
                  "validity_trainer/court_formal.flac",
                  "validity_styles/payroll_plain.flac", "validity_styles/security_casual.flac",
                  "validity_trainer/water_nonnative.flac")
PERSON_GREETING_VOICES = {"greeting_tiffany": "piper:joe@1.35", "greeting_marcus": "piper:joe",
                          "greeting_office": "piper:joe@1.2"}  # as samples/telephony/README.md says

# ---- texts written for this set (people, firms and numbers are invented) ----
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tools/kinds_texts.py beside this file
from kinds_texts import DIALOGUES, GREETINGS, MESSAGES, VOWEL_MESSAGES  # noqa: E402 - the set's words

CORPUS_SPEAKERS = {  # short name -> (manifest name prefix, TTS stand-in without a corpus)
    "jfk": ("jfk_", "espeak:en-us+m7"), "libri": ("libri_", "espeak:en-gb-x-rp"),
    "ljspeech": ("ljspeech_", "espeak:en-us+f5"), "cmuarctic": ("cmuarctic_", "espeak:en+f1"),
    "sb_spk1": ("sb_spk1", "espeak:en-us+f4"), "mfa": ("mfa_", "espeak:en-us+m2"),
    "vctk_p238": ("vctk_p238", "espeak:en-gb+f3"), "vctk_p255": ("vctk_p255", "espeak:en-gb-scotland+m6"),
    "allison": ("asterisk_", "espeak:en-us+f2")}
CORPUS_CALLS = [  # (speakers, target s, channels, treatment, use the corpus' phone copy)
    (("jfk", "ljspeech"), 22, 1, "clean", False), (("mfa", "allison"), 95, 2, "clean", False),
    (("libri", "vctk_p238"), 18, 2, "ulaw", True), (("cmuarctic", "vctk_p255"), 16, 1, "ulaw", True),
    (("mfa", "ljspeech", "sb_spk1"), 35, 1, "clean", False),
    (("jfk", "vctk_p238", "libri"), 30, 2, "gentle", False), (("mfa", "cmuarctic"), 40, 1, "ulaw", True),
    (("allison", "vctk_p255", "jfk"), 65, 1, "babble15", False),
    (("sb_spk1", "libri"), 15, 2, "sharp", False), (("ljspeech", "mfa"), 25, 1, "car15", False)]
TTS_CALLS = [  # (dialogue, voices of A/B/C, target s, channels, treatment)
    ("scheduling", ("espeak:en-us+f2", "espeak:en-us+m3"), 40, 1, "clean"),
    ("support", ("piper:joe", "espeak:en+f4"), 40, 2, "clean"),
    ("sales", ("espeak:en-gb+m1", "espeak:en-029"), 40, 1, "ulaw"),
    ("renewal", ("piper:joe", "espeak:en-us+f3"), 120, 2, "gentle"),
    ("three_way", ("espeak:en-us+m3", "espeak:en-gb-x-rp+f1", "espeak:en-gb-scotland"), 40, 1, "clean"),
    ("callback", ("espeak:en-us-nyc", "espeak:en-us+f2"), 40, 1, "car15"),
    ("scheduling", ("piper:joe@1.2", "espeak:en-gb-scotland"), 30, 2, "alaw"),
    ("sales", ("piper:joe", "espeak:en-us+f2"), 35, 1, "sharp"),
    ("support", ("espeak:en-029", "espeak:en-gb+m1"), 30, 1, "cafe15"),
    ("three_way", ("piper:joe", "espeak:en+f4", "espeak:en-us-nyc"), 40, 2, "ulaw")]
VM_SOURCES = [  # mono single-voice voicemails; treatments cycle through TREATMENTS
    "smp:strong_wideband.flac", "smp:before_practice.wav", "smp:rambling_phone.wav",
    "smp:validity/filler_heavy.flac", "smp:validity/too_short.flac",
    "smp:validity_styles/security_nonnative.flac",
    "smp:validity_styles/insurance_terse.flac", "smp:validity_trainer/dock_fillers.flac",
    "smp:validity_trainer/greenhouse_machine_nonnative.flac", "smp:validity_trainer/water_its_me.flac",
    "smp:validity_trainer/court_mumble.flac", "msg:terse@espeak:en-us+m3", "msg:rambling@piper:joe",
    "msg:formal@espeak:en-gb+m1", "msg:nonnative@espeak:en-029", "msg:fillers@espeak:en-us+f2",
    "msg:casual@espeak:en-gb-scotland", "msg:followup@espeak:en+f4", "msg:numbers@piper:joe",
    "msg:paused_number@espeak:en-us+f3", "msg:paused_afterthought@espeak:en-us+m3",
    "msg:paused_slow@espeak:en-gb-scotland"]
VM_OTHERS = [  # (message, treatment, channels, rep side, rate Hz, ending after the message)
    ("vowel:0", "clean", 1, 0, 16000, None), ("vowel:1", "ulaw", 1, 0, 16000, None),
    ("vowel:2", "car15", 1, 0, 16000, None), ("smp:validity/strong.flac", "clean", 2, 0, 16000, None),
    ("smp:validity_styles/freight_formal.flac", "ulaw", 2, 1, 8000, None),
    ("msg:followup@espeak:en-us+m3", "clean", 2, 0, 8000, None),
    ("smp:validity_trainer/linen_plain_ask.flac", "alaw", 2, 1, 8000, None),
    ("smp:validity_styles/energy_plain.flac", "sharp", 2, 1, 8000, None),
    ("msg:terse@espeak:en-gb-x-rp+f1", "clean", 2, 0, 16000, None),
    ("smp:validity_trainer/pest_terse.flac", "gentle", 1, 0, 16000, "beep"),
    ("msg:numbers@espeak:en-gb-x-rp+f1", "clean", 1, 0, 16000, "fast_busy")]
CALLS = [  # (message, greeting); ringback, beeps, channels, treatment follow from the index
    ("smp:followup_phone.wav", "ast:pls-lv-msg-will-contact"),
    ("smp:validity/strong_fast.flac", "tel:greeting_tiffany"),
    ("msg:formal@espeak:en-gb+m1", "ast:privacy-if-error-leave-message-or-hangup"),
    ("msg:terse@espeak:en-us+m3", "gen:dana@espeak:en-us+f2"),
    ("smp:validity_styles/freight_cliche.flac", "held:doctor_office_espeak"),
    ("smp:validity_trainer/greenhouse_casual.flac", "tel:greeting_marcus"),  # the same voice on both
    ("msg:nonnative@espeak:en-029", "gen:plumbing@piper:joe@1.25"),
    ("smp:validity_trainer/linen_checking_in.flac", "held:gareth_uk_espeak"),
    ("msg:fillers@espeak:en-us+f2", "ast:pls-enter-num-message-after-tone"),
    ("smp:validity_styles/insurance_apologetic.flac", "gen:halvorsen@espeak:en-gb-x-rp+f1"),
    ("smp:validity/good_b.flac", "gen:forwarded@espeak:en-us+f3"),
    ("msg:casual@espeak:en-gb-scotland", "gen:missed@espeak:en+f4"),
    ("smp:validity_trainer/translation_following_up.flac", "gen:osei@espeak:en-gb+m1"),
    ("msg:followup@piper:joe", "gen:crestline@espeak:en-us-nyc"),
    ("smp:validity_styles/security_casual.flac", "tel:greeting_office"),
    ("msg:numbers@espeak:en-us+f3", "ast:pls-lv-msg-will-contact"),
    ("smp:validity_trainer/sprinkler_sorry_nonnative.flac", "gen:jen_tommy@espeak:en-us+f2"),
    ("smp:validity_styles/payroll_plain.flac", "gen:screen_record@espeak:en-us+f3"),
    ("msg:rambling@espeak:en-us-nyc", "tel:greeting_tiffany"),
    ("smp:validity_trainer/pest_price_dump.flac", "held:doctor_office_espeak"),
    ("smp:validity/apologetic.flac", "gen:pieter@espeak:en-gb-x-gbclan+m4"),
    ("msg:terse@piper:joe", "ast:privacy-if-error-leave-message-or-hangup"),
    ("smp:validity_styles/energy_checking_in.flac", "gen:dental_hours@espeak:en-gb-x-rp+f1"),
    ("smp:validity_trainer/linen_robocall.flac", "held:gareth_uk_espeak"),
    ("smp:before_practice.wav", "gen:screen_assistant@espeak:en+f4"),
    ("smp:validity_trainer/court_research_theatre_phone.wav", "ast:pls-lv-msg-will-contact")]
CALL_END_TONES = {6: "fast_busy", 15: "beep", 20: "fast_busy"}
GREETING_ONLY = [f"gen:{k}" for k in GREETINGS] + [
    "ast:pls-lv-msg-will-contact", "ast:privacy-if-error-leave-message-or-hangup",
    "ast:pls-enter-num-message-after-tone", "tel:greeting_office", "held:jess_casual_espeak",
    "held:wireless_carrier_espeak"]
GREETING_VOICES = ("espeak:en-us+f2", "espeak:en-gb-x-rp+f1", "espeak:en-us+m3", "piper:joe@1.3",
                   "espeak:en-029", "espeak:en+f4", "espeak:en-gb-scotland", "espeak:en-us-nyc", "piper:joe",
                   "espeak:en-gb+m1", "espeak:en-us+f3", "espeak:en-gb-x-gbclan+m4")
GREETING_ENDINGS = ("beep+silence", "beep+noise0.7", "silence", "noise", "beep+noise", "beep2+silence")
GREETING_TREATMENTS = ("ulaw", "clean", "sharp", "alaw", "gentle", "gsm", "clean", "ulaw")
NO_SPEECH = [  # (what, seconds, channels, treatment, rate Hz)
    ("digital_silence", 8.0, 1, "clean", 8000), ("digital_silence", 6.0, 2, "clean", 16000),
    ("hiss_-60dBFS", 10.0, 1, "clean", 16000), ("mains_hum_50Hz", 12.0, 1, "clean", 16000),
    ("mains_hum_60Hz", 9.0, 1, "ulaw", 8000), ("car_noise", 15.0, 1, "clean", 16000),
    ("cafe_clatter", 14.0, 1, "clean", 16000), ("ringback_us", 18.0, 1, "ulaw", 8000),
    ("ringback_uk", 12.0, 2, "alaw", 8000), ("beep_then_silence", 4.5, 1, "clean", 8000),
    ("beep_then_line_noise_0.7s", 3.6, 1, "ulaw", 8000), ("busy_tone", 8.0, 1, "clean", 8000),
    ("music_tones", 20.0, 1, "gentle", 8000)]


def _db(db: float) -> float:
    return 10.0 ** (db / 20.0)


def _tool(name: str):
    """A script in tools/ as a module, loaded once (as bench/tts.py does)."""
    mod_name = f"_kinds_{name}"
    if mod_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(mod_name, REPO_ROOT / "tools" / f"{name}.py")
        sys.modules[mod_name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules[mod_name]


# ---------------------------------------------------------------- signals (all at WORK_RATE_HZ)


def peak_to(y, dbfs: float) -> np.ndarray:
    """``y`` scaled to a peak of ``dbfs``."""
    return (np.asarray(y, np.float64) * (_db(dbfs) / max(float(np.max(np.abs(y))), 1e-12))).astype(np.float32)


def rms_to(y, dbfs: float) -> np.ndarray:
    """``y`` scaled to an RMS of ``dbfs``."""
    return (np.asarray(y) * (_db(dbfs) / max(float(np.sqrt(np.mean(np.square(y)))), 1e-12))).astype("f4")


def active_rms(y: np.ndarray) -> float:
    """RMS over the active (speech) frames, as tools/make_samples.py measures an SNR."""
    return float(_tool("make_samples").active_rms(y, WORK_RATE_HZ))


def zeros(seconds: float) -> np.ndarray:
    return np.zeros(int(round(seconds * WORK_RATE_HZ)), np.float32)


def frame_rms(y: np.ndarray, frame_s: float) -> tuple[np.ndarray, int]:
    hop = max(1, int(frame_s * WORK_RATE_HZ))
    n = len(y) // hop
    return np.sqrt(np.mean(np.square(y[: n * hop].reshape(n, hop).astype(np.float64)), axis=1)), hop


def trim(y: np.ndarray) -> np.ndarray:
    """``y`` cut to its first and last frame within TRIM_THRESHOLD_DB of the loudest, with short fades."""
    energy, hop = frame_rms(y, TRIM_FRAME_S)
    keep = np.flatnonzero(energy > energy.max() * _db(TRIM_THRESHOLD_DB))
    out = np.array(y[keep[0] * hop : (keep[-1] + 1) * hop], np.float32)
    k = min(int(FADE_S * WORK_RATE_HZ), len(out) // 2)
    out[:k] *= np.linspace(0.0, 1.0, k)
    out[len(out) - k :] *= np.linspace(1.0, 0.0, k)
    return out


def up(y8k) -> np.ndarray:
    """An 8 kHz piece from tools/make_calls.py at the working rate (exactly twice the samples)."""
    return soxr.resample(np.asarray(y8k, np.float32), PHONE_RATE_HZ, WORK_RATE_HZ).astype(np.float32)


def tone(freqs_hz, seconds: float, dbfs: float) -> np.ndarray:
    return up(_tool("make_calls").tone(freqs_hz, seconds, dbfs=dbfs))


def busy_tone(cycles: int, fast: bool) -> np.ndarray:
    """US busy (480+620 Hz, 0.5 s on/off) or the fast busy of a hang-up (0.25 s on/off)."""
    on_s = 0.25 if fast else 0.5
    return np.concatenate([np.concatenate([tone((480, 620), on_s, -16.0), zeros(on_s)])] * cycles)


def sit_tones() -> np.ndarray:
    """Special information tones before a carrier intercept."""
    return np.concatenate([tone((913.8,), 0.274, -14.0), tone((1370.6,), 0.274, -14.0),
                           tone((1776.7,), 0.38, -14.0), zeros(0.3)])


def band_noise(n: int, rng, lo_hz: float, hi_hz: float) -> np.ndarray:
    sos = butter(2, (lo_hz, hi_hz), btype="bandpass", fs=WORK_RATE_HZ, output="sos")
    return rms_to(sosfilt(sos, rng.standard_normal(n)), 0.0)


def line_noise(n: int, rms_dbfs: float, rng) -> np.ndarray:
    """Telephone line hiss (300-3400 Hz) with a faint 60 Hz hum, at ``rms_dbfs`` RMS."""
    hum = 0.15 * np.sin(2 * np.pi * 60.0 * np.arange(n) / WORK_RATE_HZ + rng.uniform(0, 6.3))
    return rms_to(band_noise(n, rng, *PHONE_BAND_HZ) + hum, rms_dbfs)


def car_noise(n: int, rng) -> np.ndarray:
    """Low-passed brown noise, engine hum (30-60 Hz and harmonics, drifting) and road hiss; unit RMS."""
    ms = _tool("make_samples")
    rumble = sosfilt(butter(2, 250.0, fs=WORK_RATE_HZ, output="sos"), ms.coloured_noise(n, "brown", rng))
    t = np.arange(n) / WORK_RATE_HZ
    f0 = rng.uniform(30.0, 60.0) * (1 + 0.03 * np.sin(2 * np.pi * 0.07 * t + rng.uniform(0, 6.3)))
    phase = 2 * np.pi * np.cumsum(f0) / WORK_RATE_HZ
    engine = sum(np.sin(k * phase + rng.uniform(0, 6.3)) / k for k in range(1, 9))
    road = ms.coloured_noise(n, "pink", rng)
    return rms_to(rms_to(rumble, 0.0) + 0.6 * rms_to(engine, 0.0) + 0.15 * road, 0.0)


def clatter(n: int, rng, per_s: float = 0.8) -> np.ndarray:
    """Cups and cutlery: clicks and damped high sinusoids at random times."""
    y = np.zeros(n)
    for _ in range(rng.poisson(per_s * n / WORK_RATE_HZ)):
        t = np.arange(int(rng.uniform(0.02, 0.25) * WORK_RATE_HZ)) / WORK_RATE_HZ
        hit = sum(np.sin(2 * np.pi * rng.uniform(1500, 6500) * t) * np.exp(-t / rng.uniform(0.01, 0.06))
                  for _ in range(3))
        hit[:64] += rng.standard_normal(64)
        at = int(rng.integers(0, n))
        y[at : at + len(t)] += hit[: n - at] * _db(rng.uniform(-12, 0))
    return y


def speech_bed(b: Builder, n: int, rng, talkers: int, reverse: bool) -> np.ndarray:
    """``talkers`` overlapping committed voicemails, pitch-shifted apart, at random offsets; unit RMS."""
    bed = np.zeros(n)
    for i in range(talkers):
        src = b.load(SAMPLES_DIR / BABBLE_SOURCES[(i + int(rng.integers(6))) % len(BABBLE_SOURCES)])
        y = soxr.resample(src, round(WORK_RATE_HZ * BABBLE_PITCH_FACTORS[i]), WORK_RATE_HZ)
        y = np.roll(np.tile(y, n // len(y) + 2), -int(rng.integers(len(y))))[:n]
        bed += (y[::-1] if reverse else y) / active_rms(y) * _db(rng.uniform(-3, 3))
    return rms_to(bed, 0.0)


def babble_noise(b: Builder, n: int, rng) -> np.ndarray:
    """4-6 time-reversed talkers: speech-like, with no words."""
    return speech_bed(b, n, rng, int(rng.integers(4, 7)), reverse=True)


def cafe_noise(b: Builder, n: int, rng, talkers: bool = True) -> np.ndarray:
    """Room tone, clatter and (``talkers``) distant speech low-passed and smeared by a 0.3 s room response."""
    y = 0.1 * _tool("make_samples").coloured_noise(n, "pink", rng) + 0.6 * rms_to(clatter(n, rng) + 1e-9, 0.0)
    if talkers:
        t = np.arange(int(0.3 * WORK_RATE_HZ)) / WORK_RATE_HZ
        room = rng.standard_normal(len(t)) * np.exp(-t / 0.08)
        bed = fftconvolve(speech_bed(b, n, rng, 5, reverse=False), room)
        y = y + rms_to(sosfilt(butter(2, 2500.0, fs=WORK_RATE_HZ, output="sos"), bed[:n]), 0.0)
    return rms_to(y, 0.0)


NOISE_KINDS = {"car": lambda b, n, rng: car_noise(n, rng), "cafe": cafe_noise, "babble": babble_noise}


def mains_hum(n: int, mains_hz: float, rng) -> np.ndarray:
    t = np.arange(n) / WORK_RATE_HZ
    amps = {1: 1.0, 2: 0.15, 3: 0.5, 4: 0.05, 5: 0.3, 7: 0.15, 9: 0.08}
    return sum(a * np.sin(2 * np.pi * k * mains_hz * t + rng.uniform(0, 6.3)) for k, a in amps.items()) \
        + 0.01 * rng.standard_normal(n)


def music_tones(n: int, rng) -> np.ndarray:
    """Hold-music-like melody: pentatonic notes with two harmonics, decaying envelopes, a bass each bar."""
    scale = 261.63 * 2 ** (np.array([0, 2, 4, 7, 9, 12, 14, 16]) / 12)
    y, at, i = np.zeros(n), 0, 0
    while at < n:
        t = np.arange(int(rng.choice([0.25, 0.375, 0.5]) * WORK_RATE_HZ)) / WORK_RATE_HZ
        notes = [rng.choice(scale)] + ([scale[3 * (i // 4 % 2)] / 2] if i % 4 == 0 else [])
        note = sum(np.sin(2 * np.pi * f * h * t) * w for f in notes for h, w in ((1, 1), (2, 0.3), (3, 0.15)))
        y[at : at + len(t)] += (note * np.minimum(1, t / 0.02) * np.exp(-t / 0.35))[: n - at]
        at, i = at + len(t), i + 1
    return y


def sustained_vowel(f0_hz: tuple[float, float], seconds: float, formants, rng) -> np.ndarray:
    """A held "sooo": a short /s/, then Rosenberg glottal pulses with F0 gliding ``f0_hz[0]`` -> ``[1]``
    (slight vibrato) through cascaded two-pole formant resonators ((Hz, bandwidth Hz), ...).  Peak 1."""
    t = np.arange(int(round(seconds * WORK_RATE_HZ))) / WORK_RATE_HZ
    f0 = f0_hz[0] * (f0_hz[1] / f0_hz[0]) ** (t / seconds) * (1 + 0.006 * np.sin(2 * np.pi * 5.5 * t))
    p = np.cumsum(f0) / WORK_RATE_HZ % 1.0
    pulse = np.where(p < 0.4, 0.5 - 0.5 * np.cos(np.pi * p / 0.4),
                     np.where(p < 0.56, np.cos(0.5 * np.pi * (p - 0.4) / 0.16), 0.0))
    y = np.diff(pulse, prepend=0.0) + 0.002 * rng.standard_normal(len(t))
    for freq, bw in formants:
        r = np.exp(-np.pi * bw / WORK_RATE_HZ)
        y = lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * freq / WORK_RATE_HZ), r * r], y)
    s = band_noise(int(0.09 * WORK_RATE_HZ), rng, 4000.0, 7500.0) * np.hanning(int(0.09 * WORK_RATE_HZ))
    envelope = np.minimum(1, t / 0.05) * np.minimum(1, (seconds - t) / 0.12)
    return np.concatenate([peak_to(s, -8.0), peak_to(y * envelope, 0.0)])


def cut_phrases(y: np.ndarray) -> list[np.ndarray]:
    """A clip cut at pauses (>= PHRASE_PAUSE_MIN_S below TRIM_THRESHOLD_DB) into phrases of 1-8 s."""
    energy, hop = frame_rms(y, PHRASE_FRAME_S)
    loud = np.concatenate([[False], energy > energy.max() * _db(TRIM_THRESHOLD_DB), [False]])
    edges = np.flatnonzero(np.diff(loud.astype(int)))  # run starts and ends, alternating
    runs = [[a, b] for a, b in zip(edges[::2], edges[1::2])]
    merged = [runs[0]]
    for a, b in runs[1:]:  # a short pause does not end a phrase
        if (a - merged[-1][1]) * PHRASE_FRAME_S < PHRASE_PAUSE_MIN_S:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    phrases: list[list[int]] = []
    for a, b in merged:  # join until a phrase is long enough, never past the maximum
        if phrases and (phrases[-1][1] - phrases[-1][0]) * PHRASE_FRAME_S < PHRASE_MIN_S \
                and (b - phrases[-1][0]) * PHRASE_FRAME_S <= PHRASE_MAX_S:
            phrases[-1][1] = b
        else:
            phrases.append([a, b])
    out = []
    for a, b in phrases:
        pieces = int(np.ceil((b - a) * PHRASE_FRAME_S / PHRASE_MAX_S))
        cuts = [a + (b - a) * k // pieces for k in range(pieces + 1)]
        out += [trim(y[lo * hop : hi * hop]) for lo, hi in zip(cuts, cuts[1:])
                if (hi - lo) * PHRASE_FRAME_S >= PHRASE_KEEP_MIN_S]
    return out


def _beep(rng) -> np.ndarray:
    return tone((round(rng.uniform(*BEEP_HZ_RANGE), -1),), round(rng.uniform(0.3, 1.0), 2), -10.0)


def _ringback(kind: str, rings: int, n: int) -> np.ndarray:
    return np.concatenate([zeros(0.5), up(_tool("make_calls").ringback(kind, rings))])[:n]


NO_SPEECH_MAKERS = {  # what -> (builder, samples, rng) -> the far end's audio
    "digital_silence": lambda b, n, rng: np.zeros(n, np.float32),
    "hiss_-60dBFS": lambda b, n, rng: rms_to(rng.standard_normal(n), -60.0),
    "mains_hum_50Hz": lambda b, n, rng: rms_to(mains_hum(n, 50.0, rng), rng.uniform(-36, -28)),
    "mains_hum_60Hz": lambda b, n, rng: rms_to(mains_hum(n, 60.0, rng), rng.uniform(-36, -28)),
    "car_noise": lambda b, n, rng: rms_to(car_noise(n, rng), -30.0),
    "cafe_clatter": lambda b, n, rng: rms_to(cafe_noise(b, n, rng, talkers=False), -32.0),
    "ringback_us": lambda b, n, rng: _ringback("us", 3, n),
    "ringback_uk": lambda b, n, rng: _ringback("uk", 4, n),
    "beep_then_silence": lambda b, n, rng: np.concatenate([zeros(1.2), _beep(rng), zeros(3.0)]),
    "beep_then_line_noise_0.7s": lambda b, n, rng: np.concatenate([
        line_noise(2 * WORK_RATE_HZ, TAIL_NOISE_RMS_DBFS, rng), _beep(rng),
        line_noise(int(0.7 * WORK_RATE_HZ), TAIL_NOISE_RMS_DBFS, rng)]),
    "busy_tone": lambda b, n, rng: busy_tone(8, fast=False),
    "music_tones": lambda b, n, rng: peak_to(music_tones(n, rng), -12.0),
}


class Track:
    """Two lanes (0: the rep or first party; 1: the far end) laid out along a cursor, in samples."""

    def __init__(self) -> None:
        self.events: list[tuple[int, int, np.ndarray]] = []
        self.cursor = 0

    def skip(self, seconds: float) -> Track:
        self.cursor += int(round(seconds * WORK_RATE_HZ))
        return self

    def put(self, y: np.ndarray, lane: int, shift_s: float = 0.0) -> tuple[float, float]:
        """Place ``y`` at the cursor plus ``shift_s`` (negative: overlap); return its start and end (s)."""
        start = self.cursor + int(round(shift_s * WORK_RATE_HZ))
        self.events.append((lane, start, y))
        self.cursor = start + len(y)
        return start / WORK_RATE_HZ, self.cursor / WORK_RATE_HZ

    def render(self) -> np.ndarray:
        out = np.zeros((2, max([self.cursor, *(s + len(y) for _, s, y in self.events)])))
        for lane, start, y in self.events:
            out[lane, start : start + len(y)] += y
        return out


# ---------------------------------------------------------------- the builder


class Builder:
    """Renders speech, loads sources, and writes labelled files into ``out_dir``."""

    def __init__(self, out_dir: Path, corpus_dir: Path | None, seed: int) -> None:
        self.out_dir, self.corpus_dir, self.seed = out_dir, corpus_dir, seed
        self.cache_dir = out_dir / "_tts"
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.labels: list[dict] = []
        self.loaded: dict[str, np.ndarray] = {}
        try:
            sf.write(io.BytesIO(), np.zeros(800, np.float32), PHONE_RATE_HZ, format="WAV", subtype="GSM610")
            self.gsm = True
        except (RuntimeError, ValueError, TypeError):
            self.gsm = False

    def rng(self, key: str) -> np.random.Generator:
        return np.random.default_rng([self.seed, zlib.crc32(key.encode())])

    def load(self, path: Path) -> np.ndarray:
        """A file as mono float32 at WORK_RATE_HZ (memoised)."""
        if str(path) not in self.loaded:
            y, rate = sf.read(str(path), dtype="float32", always_2d=True)
            self.loaded[str(path)] = soxr.resample(y.mean(axis=1), rate, WORK_RATE_HZ).astype(np.float32)
        return self.loaded[str(path)]

    def speak(self, voice: str, text: str, speed: float = 1.0, pitch: int | None = None) -> np.ndarray:
        """``text`` in ``voice`` ("espeak:<voice>", "piper:joe", or "piper:joe@<factor>": played that much
        faster, so higher), trimmed, peak 1; cached in ``_tts/`` as float WAV."""
        key = hashlib.sha1(json.dumps([TTS_CACHE_VERSION, voice, text, speed, pitch]).encode()).hexdigest()
        path = self.cache_dir / f"{key[:20]}.wav"
        if path.exists():
            return sf.read(str(path), dtype="float32")[0]
        engine, _, name = voice.partition(":")
        if engine == "piper":
            ms = _tool("make_samples")
            backend = ms.PiperJoe(seed=zlib.crc32(text.encode()))
            rate, gap = backend.sample_rate, np.zeros(int(SENTENCE_GAP_S * backend.sample_rate), np.float32)
            y = np.concatenate([p for s in backend.sentences(text, 1.0 / speed)
                                for p in (gap, ms.trim_silence(s, rate=rate))][1:])
            y = soxr.resample(y, round(rate * float(name.partition("@")[2] or 1.0)), rate)
        else:
            cmd = [ESPEAK_EXE, "-v", name, "-s", str(round(ESPEAK_WPM * speed)), "--stdout"]
            cmd += (["-p", str(pitch)] if pitch is not None else []) + [text]
            wav = subprocess.run(cmd, check=True, capture_output=True).stdout
            y, rate = sf.read(io.BytesIO(wav), dtype="float32")
        y = peak_to(trim(soxr.resample(y, rate, WORK_RATE_HZ).astype(np.float32)), 0.0)
        sf.write(str(path), y, WORK_RATE_HZ, subtype="FLOAT")
        return y

    def render(self, voice: str, segments) -> np.ndarray:
        """Spoken segments (str, or (text, speed, espeak pitch, gain dB)) with pauses (float s) between."""
        parts: list[np.ndarray] = []
        for seg in segments:
            if isinstance(seg, float):
                parts.append(zeros(seg))
                continue
            text, speed, pitch, gain_db = (seg, 1.0, None, 0.0) if isinstance(seg, str) else seg
            if parts and np.any(parts[-1]):
                parts.append(zeros(SEGMENT_GAP_S))
            pitch = pitch if voice.startswith("espeak") else None
            parts.append(self.speak(voice, text, speed, pitch) * _db(gain_db))
        return np.concatenate(parts)

    def source(self, src: str, peak_dbfs: float, rng) -> tuple[np.ndarray, list[str], list[str], int]:
        """A message or greeting by id ("smp:", "ast:", "tel:", "held:" files; "msg:", "gen:", "vowel:"
        renders): audio at ``peak_dbfs``, speakers, tags, the source's rate (Hz)."""
        kind, _, rest = src.partition(":")
        if kind == "vowel":
            voice, lead, words, f0, seconds, formants = VOWEL_MESSAGES[int(rest)]
            vowel = sustained_vowel(f0, seconds, formants, rng) * _db(-2.0)
            y = np.concatenate([self.speak(voice, lead), zeros(0.06), vowel, zeros(0.18),
                                self.speak(voice, words)])
            return peak_to(y, peak_dbfs), [voice], [f"voice:{voice}", "source:tts", "sustained_vowel",
                                                    f"vowel_f0:{f0[0]:g}-{f0[1]:g}Hz_{seconds:g}s",
                                                    f"vowel_formants:{len(formants)}"], WORK_RATE_HZ
        if kind in ("msg", "gen"):
            key, _, voice = rest.partition("@")
            y = self.render(voice, MESSAGES[key]) if kind == "msg" else self.speak(voice, GREETINGS[key])
            tags = [f"text:{key}", f"voice:{voice}", "source:tts"]
            return peak_to(y, peak_dbfs), [voice], tags, WORK_RATE_HZ
        tel = TELEPHONY_DIR
        path = {"smp": SAMPLES_DIR / rest, "ast": tel / f"{rest}.wav", "tel": tel / f"{rest}.flac",
                "held": tel / "heldout" / f"{rest}.flac"}[kind]
        speaker = {"smp": "piper:joe", "ast": "asterisk:allison", "held": "espeak:unknown"}.get(kind)
        tags = [f"source:{path.relative_to(REPO_ROOT).as_posix()}"]
        y = peak_to(trim(self.load(path)), peak_dbfs)
        return y, [speaker or PERSON_GREETING_VOICES[rest]], tags, sf.info(str(path)).samplerate

    def emit(self, key: str, track: Track, kind: str, *, speakers, tags, treatment: str = "clean",
             channels: int = 1, rep_side: int = 0, rep_known: bool = True, message=None, ref_rms=None,
             end_tone: bool = False, rate_hz: int = WORK_RATE_HZ, flac: bool = False, far_noise_dbfs=None,
             crosstalk_db=None, turns=None) -> None:
        """Mix, treat, write (as ``key``; :func:`build_set` renames it) and label one file."""
        rng = self.rng(key + ":emit")
        x = track.render()
        tags = [f"id:{key}", *tags, f"treatment:{treatment}"]
        if crosstalk_db is not None:
            x = np.stack([x[0] + _db(crosstalk_db) * x[1], x[1] + _db(crosstalk_db) * x[0]])
            tags.append(f"crosstalk_db:{crosstalk_db:g}")
        noise = treatment.rstrip("0123456789")
        if noise in NOISE_KINDS:  # at the rep's end: on the rep's side, or under everything in mono
            snr_db = float(treatment[len(noise) :])
            ref = ref_rms if ref_rms is not None else active_rms(x[0])
            x[0] += NOISE_KINDS[noise](self, x.shape[1], rng) * ref / _db(snr_db)
            tags += [f"noise:{noise}", f"snr_db:{snr_db:g}"]
        if far_noise_dbfs is not None:
            x[1] += line_noise(x.shape[1], far_noise_dbfs, rng)
            tags.append(f"far_line_noise_rms_dbfs:{far_noise_dbfs:g}")
        y = x.sum(axis=0, keepdims=True) if channels == 1 else (x if rep_side == 0 else x[::-1])
        subtype = "PCM_16"
        if treatment in PHONE_TREATMENTS:
            order, subtype = PHONE_TREATMENTS[treatment]
            y = sosfiltfilt(butter(order, PHONE_BAND_HZ, btype="bandpass", fs=WORK_RATE_HZ, output="sos"), y)
            rate_hz = PHONE_RATE_HZ
            tags.append(f"band:{'sharp' if order == SHARP_BUTTER_N else 'gentle'}_300-3400Hz")
            if subtype == "GSM610" and (channels == 2 or not self.gsm):
                subtype = "ULAW"
                tags.append("gsm_unavailable_used_ulaw")
        tags += [f"codec:{subtype.lower()}", f"rate:{rate_hz}"]
        if rate_hz != WORK_RATE_HZ:
            y = np.stack([soxr.resample(c, WORK_RATE_HZ, rate_hz) for c in y])
        if np.max(np.abs(y)) > _db(CLIP_GUARD_DBFS):
            y *= _db(CLIP_GUARD_DBFS) / np.max(np.abs(y))
            tags.append("rescaled_against_clipping")
        fmt = "FLAC" if flac and subtype == "PCM_16" else "WAV"
        name = f"{key}.{fmt.lower()}"
        sf.write(str(self.out_dir / name), y.T.astype(np.float32), rate_hz, format=fmt, subtype=subtype)
        span = [None, None] if message is None else [round(message[0], 3), round(message[1], 3)]
        self.labels.append({
            "file": name, "kind": kind, "graded": kind in GRADED_KINDS, "channels": channels,
            "rep_channel": rep_side if channels == 2 and rep_known else None, "message_start_s": span[0],
            "message_end_s": span[1], "end_tone": end_tone, "tags": tags, "speakers": sorted(set(speakers)),
            "duration_s": round(y.shape[1] / rate_hz, 3), "sample_rate_hz": rate_hz,
            **({"turns": turns} if turns is not None else {})})


# ---------------------------------------------------------------- the five kinds


def build_voicemails(b: Builder) -> None:
    """Single-voice messages under every treatment, sustained vowels, dialer exports, end tones."""
    specs = [(src, TREATMENTS[i % len(TREATMENTS)], 1, 0, None, None) for i, src in enumerate(VM_SOURCES)]
    for i, (src, treatment, channels, side, rate, ending) in enumerate(specs + VM_OTHERS):
        key = f"vm_{i:02d}"
        rng = b.rng(key)
        msg, speakers, tags, src_rate = b.source(src, rng.uniform(*SPEECH_PEAK_DBFS), rng)
        tags += ["long_internal_pauses", "tone_change"] if "paused_" in src else []
        tags += ["dialer_export"] if channels == 2 else []
        tr = Track().skip(rng.uniform(0.3, 1.5))
        span = tr.put(msg, 0)
        if ending:
            tr.skip(rng.uniform(0.3, 0.8))
            tr.put(tone((1000.0,), 0.4, -10.0) if ending == "beep" else busy_tone(4, fast=True), 1)
            tags.append(f"end_tone:{ending}")
        tr.skip(rng.uniform(1.5, 3.0) if ending else rng.uniform(0.5, 1.5))
        b.emit(key, tr, "voicemail", speakers=speakers, tags=tags, treatment=treatment, channels=channels,
               rep_side=side, message=span, ref_rms=active_rms(msg), end_tone=ending is not None,
               rate_hz=rate or min(src_rate, WORK_RATE_HZ), flac=i % 3 == 0,
               far_noise_dbfs=LINE_NOISE_RMS_DBFS if channels == 2 else None)


def build_calls(b: Builder) -> None:
    """Ringback, a greeting (almost always in another voice), beeps or none, then the rep's message."""
    mc = _tool("make_calls")
    for i, (msg_src, greet_src) in enumerate(CALLS):
        key = f"call_{i:02d}"
        rng = b.rng(key)
        msg, speakers, tags, _ = b.source(msg_src, rng.uniform(*SPEECH_PEAK_DBFS), rng)
        greeting, g_speakers, g_tags, _ = b.source(greet_src, rng.uniform(*GREETING_PEAK_DBFS), rng)
        tags += [f"greeting:{greet_src}"] + [f"greeting_{t}" for t in g_tags]
        ring, rings = ("us", "uk", None, "us", None)[i % 5], 1 + (i % 3 == 0)
        if ring and 10 + rings * 6 + (len(greeting) + len(msg)) / WORK_RATE_HZ > 60:
            ring = None
        beeps, after = 0 if i % 5 == 3 else 1 + (i % 4 == 2), CALL_END_TONES.get(i)
        beep_hz, beep_s = round(rng.uniform(*BEEP_HZ_RANGE), -1), round(rng.uniform(*BEEP_S_RANGE), 2)
        tr = Track().skip(rng.uniform(0.2, 0.8))
        if i in (4, 17):
            tr.put(up(mc.dtmf("5550142")), 0)
            tags.append("dtmf_dialled")
        if ring:
            tr.put(up(mc.ringback(ring, rings)), 1)
            tags.append(f"ringback:{ring}x{rings}")
        tr.put(greeting, 1)
        tr.skip(rng.uniform(0.2, 0.8))
        for k in range(beeps):
            tr.skip(0.25 if k else 0.0).put(tone((beep_hz,), beep_s, rng.uniform(*BEEP_DBFS)), 1)
        tags.append(f"beep:{beeps}x{beep_hz:g}Hz_{beep_s:g}s" if beeps else "no_beep")
        tr.skip(rng.uniform(0.2, 1.2) if beeps else rng.uniform(1.0, 2.5))
        span = tr.put(msg, 0)
        if after:
            tr.skip(rng.uniform(0.4, 0.9))
            beep = tone((rng.uniform(800, 1200),), 0.5, -10.0)
            end = busy_tone(4, fast=True) if after == "fast_busy" else beep
            tr.put(end, 1)
            tags.append(f"end_tone:{after}")
        tr.skip(rng.uniform(0.8, 2.0))
        tags += ["greeting_same_voice_as_rep"] if speakers == g_speakers else []
        channels = 2 if i % 4 == 1 else 1
        b.emit(key, tr, "call_recording", speakers=speakers + g_speakers, tags=tags, channels=channels,
               treatment=TREATMENTS[(i + 7) % len(TREATMENTS)], rep_side=(i // 4) % 2, message=span,
               ref_rms=active_rms(msg), end_tone=after is not None, rate_hz=PHONE_RATE_HZ,
               far_noise_dbfs=FAR_FLOOR_RMS_DBFS if channels == 2 else None)


def build_greetings(b: Builder) -> None:
    """Greetings, carrier announcements and screening prompts with no message after them."""
    mc = _tool("make_calls")
    for i, src in enumerate(GREETING_ONLY):
        key = f"greet_{i:02d}"
        rng = b.rng(key)
        name = src.partition(":")[2]
        src += f"@{GREETING_VOICES[i % len(GREETING_VOICES)]}" if src.startswith("gen:") else ""
        greeting, speakers, tags, _ = b.source(src, rng.uniform(*GREETING_PEAK_DBFS), rng)
        ending = GREETING_ENDINGS[i % len(GREETING_ENDINGS)]
        tr = Track().skip(rng.uniform(0.3, 1.0))
        if i % 4 == 0:
            tr.put(up(mc.ringback(("us", "uk")[i % 8 // 4], 1)), 1)
            tags.append("ringback")
        if name in ("subscriber", "not_in_service"):
            tr.put(sit_tones(), 1)
            tags.append("sit_tones")
        tr.put(greeting, 1)
        tr.skip(rng.uniform(0.2, 0.7))
        if ending.startswith("beep"):
            hz, s = round(rng.uniform(*BEEP_HZ_RANGE), -1), round(rng.uniform(*BEEP_S_RANGE), 2)
            for k in range(1 + ending.startswith("beep2")):
                tr.skip(0.25 if k else 0.0).put(tone((hz,), s, rng.uniform(*BEEP_DBFS)), 1)
        tail_s = 0.7 if ending.endswith("0.7") else rng.uniform(0.5, 3.0)
        if "noise" in ending:
            tr.put(line_noise(int(tail_s * WORK_RATE_HZ), TAIL_NOISE_RMS_DBFS, rng), 1)
        else:
            tr.skip(tail_s)
        tr.skip(max(0.0, 3.2 - tr.cursor / WORK_RATE_HZ))
        b.emit(key, tr, "greeting_only", speakers=speakers, tags=tags + [f"ending:{ending}"],
               treatment=GREETING_TREATMENTS[i % len(GREETING_TREATMENTS)], channels=2 if i % 7 == 3 else 1,
               rep_side=i % 2, far_noise_dbfs=FAR_FLOOR_RMS_DBFS if i % 7 == 3 else None)


def converse(b: Builder, key: str, seq, parties: int, target_s: float, *, tags, **emit_args) -> None:
    """Lay ``seq`` ((party, audio), ...) as turns with gaps and slight overlaps up to ``target_s``; emit."""
    rng = b.rng(key + ":turns")
    tr, turns = Track().skip(rng.uniform(0.3, 1.0)), []
    for i, (party, y) in enumerate(seq):
        if tr.cursor >= target_s * WORK_RATE_HZ:
            break
        overlap = i > 0 and rng.random() < OVERLAP_PROBABILITY
        shift = -min(rng.uniform(*OVERLAP_S), len(seq[i - 1][1]) / WORK_RATE_HZ / 3) if overlap \
            else rng.uniform(*TURN_GAP_S) if i else 0.0
        start, end = tr.put(y, min(party, 1), shift)
        turns.append([party, round(start, 3), round(end, 3)])
    tr.skip(rng.uniform(0.5, 1.5))
    overlaps = sum(nxt[1] < prev[2] for prev, nxt in zip(turns, turns[1:]))
    b.emit(key, tr, "live_call", turns=turns, tags=tags + [f"parties:{parties}", f"overlaps:{overlaps}"],
           crosstalk_db=CROSSTALK_DB if emit_args.get("channels") == 2 else None, **emit_args)


def build_live_calls(b: Builder) -> None:
    """Corpus speakers cut at pauses (TTS stand-ins without a corpus) taking turns; TTS dialogues."""
    rows, lines = [], [t.partition(": ")[2] for d in DIALOGUES.values() for t in d.split(" / ")]
    if b.corpus_dir is not None:
        with open(b.corpus_dir / "manifest.csv", newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    for i, (names, target_s, channels, treatment, phone_copy) in enumerate(CORPUS_CALLS):
        key = f"live_corpus_{i}"
        rng = b.rng(key)
        phrases, speakers, tags = [], [], []
        for short in names:
            prefix, voice = CORPUS_SPEAKERS[short]
            level = rng.uniform(*SPEECH_PEAK_DBFS)
            if rows:
                files = [b.corpus_dir / r["phone_file" if phone_copy else "file"] for r in rows
                         if r["name"].startswith(prefix)]
                phrases.append([peak_to(p, level) for f in files for p in cut_phrases(b.load(f))])
                speakers.append("asterisk:allison" if short == "allison" else f"corpus:{short}")
            else:  # a TTS voice reading dialogue lines stands in for the corpus speaker
                at = int(rng.integers(len(lines)))
                phrases.append([peak_to(b.speak(voice, t), level) for t in (lines[at:] + lines[:at])[:12]])
                speakers.append(voice)
                tags.append(f"corpus_substitute:{short}={voice}")
        tags += [f"source:corpus{'_phone_copy' if phone_copy else ''}" if rows else "source:tts"]
        seq, pos, last = [], [int(rng.integers(len(p))) for p in phrases], len(names) - 1
        while sum(len(y) for _, y in seq) < target_s * 1.2 * WORK_RATE_HZ:
            party = (last + 1) % 2 if len(names) == 2 else int(rng.choice([p for p in range(3) if p != last]))
            y, nxt = (phrases[party][(pos[party] + k) % len(phrases[party])] for k in (0, 1))
            pos[party] += 1
            short = len(y) < PHRASE_MIN_S * WORK_RATE_HZ  # too short for a turn on its own
            if len(y) + len(nxt) < 7.5 * WORK_RATE_HZ and (short or len(y) < 2.5 * WORK_RATE_HZ
                                                         and rng.random() < 0.4):
                y, pos[party], short = np.concatenate([y, zeros(0.15), nxt]), pos[party] + 1, False
            if short:
                continue
            seq.append((party, y))
            last = party
        converse(b, key, seq, len(names), target_s, speakers=speakers, tags=tags, treatment=treatment,
                 channels=channels, rep_known=False, rate_hz=PHONE_RATE_HZ if phone_copy else WORK_RATE_HZ)
    for i, (dialogue, voices, target_s, channels, treatment) in enumerate(TTS_CALLS):
        key = f"live_tts_{i}"
        rng = b.rng(key)
        levels = [rng.uniform(*SPEECH_PEAK_DBFS) for _ in voices]
        seq = [("ABC".index(t[0]), t[3:]) for t in DIALOGUES[dialogue].split(" / ")]
        seq = [(p, peak_to(b.speak(voices[p], text), levels[p])) for p, text in seq]
        converse(b, key, seq, len(voices), target_s, speakers=list(voices), treatment=treatment,
                 tags=[f"dialogue:{dialogue}", "source:tts"] + [f"voice:{v}" for v in voices],
                 channels=channels, rep_side=i % 2)


def build_no_speech(b: Builder) -> None:
    """Silence, hiss, hum, car noise, cafe clatter, ringback, beeps, busy tone, music-like tones."""
    for i, (what, seconds, channels, treatment, rate) in enumerate(NO_SPEECH):
        key = f"none_{i:02d}"
        tr = Track()
        tr.put(NO_SPEECH_MAKERS[what](b, int(seconds * WORK_RATE_HZ), b.rng(key)), 1)
        b.emit(key, tr, "no_speech", speakers=[], tags=[what], treatment=treatment, channels=channels,
               rep_side=i % 2, rep_known=False, rate_hz=rate)


def build_set(out_dir: Path, corpus_dir: Path | None, seed: int = 0) -> list[dict]:
    """Build the labelled set into ``out_dir``; return its labels, also written to ``labels.jsonl``.

    Parameters
    ----------
    out_dir : Path
        Folder for the audio files, ``labels.jsonl`` and the TTS cache ``_tts/``; earlier
        ``kinds_*`` files and labels there are removed first.
    corpus_dir : Path or None
        The speech corpus (``manifest.csv``, ``clips/``, ``phone/``) for live calls between real
        speakers; without it TTS voices stand in (tagged ``corpus_substitute:...``).
    seed : int
        Seeds every random choice (levels, gaps, beeps, noise) and the shuffled file order.

    Returns
    -------
    list of dict
        One label per file, sorted by name: ``file``, ``kind``, ``graded``, ``channels``,
        ``rep_channel``, ``message_start_s`` and ``message_end_s`` (s on the file's clock, or None),
        ``end_tone``, ``tags``, ``speakers``, and also ``duration_s``, ``sample_rate_hz`` and, for
        live calls, ``turns`` ([party, start_s, end_s]; party 0 is on the first lane, the others on
        the second, and in two-channel files the first lane is channel ``rep_channel`` or 0).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in [*out_dir.glob("kinds_*.wav"), *out_dir.glob("kinds_*.flac"), out_dir / "labels.jsonl"]:
        old.unlink(missing_ok=True)
    b = Builder(out_dir, Path(corpus_dir) if corpus_dir else None, seed)
    for build in (build_voicemails, build_calls, build_greetings, build_live_calls, build_no_speech):
        build(b)
    for number, label in zip(np.random.default_rng([seed, 7]).permutation(len(b.labels)), b.labels):
        name = f"kinds_{number:03d}{Path(label['file']).suffix}"
        (out_dir / label["file"]).rename(out_dir / name)
        label["file"] = name
    labels = sorted(b.labels, key=lambda lab: lab["file"])
    with open(out_dir / "labels.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(lab) + "\n" for lab in labels)
    return labels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="folder for the files and labels.jsonl")
    parser.add_argument("--corpus", type=Path, default=None, help="speech corpus folder (with manifest.csv)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    labels = build_set(args.out_dir, args.corpus, args.seed)
    counts = {k: sum(lab["kind"] == k for lab in labels) for k in KINDS}
    two = sum(lab["channels"] == 2 for lab in labels)
    seconds = round(time.perf_counter() - t0, 1)
    print(json.dumps({"files": len(labels), **counts, "two_channel": two, "seconds": seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
