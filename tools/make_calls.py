#!/usr/bin/env python3
"""Build call recordings for tests and benchmarks: ringback, greeting, beep, message, after.

Dev tool (stdlib + numpy + soundfile + soxr; Piper only for ``--render-greetings``),
importable by tests and ``bench/call_segmentation.py``.  A recording is
assembled at 8 kHz from the pieces in ``samples/``:

* ringback: US (440+480 Hz, 2 s on / 4 s off) or UK (400+450 Hz, 0.4/0.2/0.4 s on, 2 s off);
* optional DTMF digits (70 ms tones, 70 ms apart, standard row/column pairs);
* a greeting: a real Asterisk prompt or a person's greeting rendered with Piper
  (``samples/telephony/``, see its README for the attribution);
* one or two beeps of a chosen pitch and length;
* a bundled sample voicemail (the rep's message);
* optionally an after-part: a fast-busy hang-up tone, or the error beep and a prompt;
* mono, or two channels (rep on one side, far end on the other, optional crosstalk);
* 16-bit PCM, G.711 mu-law or A-law WAV; optional noise.

:func:`build_call` returns the audio and the truth (message start/end, beeps,
the rep's channel).  ``python tools/make_calls.py OUT.wav [--ringback uk ...]``
writes one file and prints its truth as JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLES_DIR = REPO_ROOT / "samples"
TELEPHONY_DIR = SAMPLES_DIR / "telephony"
RATE_HZ = 8000  # every piece is brought to the telephone rate

CARRIER_GREETINGS = (
    "pls-lv-msg-will-contact",
    "privacy-if-error-leave-message-or-hangup",
    "pls-enter-num-message-after-tone",
)
PERSON_GREETINGS = {
    # name -> (text, pitch factor): the factor raises the pitch (and speed) of the one Piper voice,
    # so that the greeting's voice differs from the rep's
    "greeting_tiffany": ("Hi, you've reached Tiffany at Ridgeway Dental. I can't take your call right now, "
                         "so please leave a message and I'll call you back.", 1.35),
    "greeting_marcus": ("Hey, this is Marcus Bell. I'm not available at the moment. "
                        "Leave your name and number after the tone.", 1.0),
    "greeting_office": ("You have reached the front desk of Lakeside Veterinary. Our office is closed. "
                        "Please record your message and we will return your call.", 1.2),
}
DTMF_ROWS_HZ = (697.0, 770.0, 852.0, 941.0)
DTMF_COLS_HZ = (1209.0, 1336.0, 1477.0, 1633.0)
DTMF_KEYS = ("123A", "456B", "789C", "*0#D")
ENCODINGS = {"pcm16": "PCM_16", "ulaw": "ULAW", "alaw": "ALAW"}


@dataclasses.dataclass(frozen=True)
class CallSpec:
    """How to assemble one call recording (times in s, levels in dBFS)."""

    message: str = "validity/strong_phone.wav"  # relative to samples/
    greeting: str | None = "pls-lv-msg-will-contact"  # samples/telephony/<name>.wav|.flac, or None
    ringback: str | None = "us"  # "us", "uk" or None
    rings: int = 2
    dtmf: str | None = None  # digits dialled before the ringback
    beep_hz: float = 1000.0
    beep_s: float = 0.5
    beeps: int = 1  # 0, 1 or 2
    beep_gap_s: float = 0.25  # between two beeps
    greeting_to_beep_s: float = 0.5
    beep_to_message_s: float = 0.7  # the rep's silence after the beep
    after: str | None = None  # None, "busy" (fast-busy hang-up tone) or "prompt" (error beep + prompt)
    channels: int = 1  # 1 or 2
    rep_channel: int = 0  # 0 = left
    crosstalk_db: float | None = None  # the rep leaking into the far channel, re the rep
    encoding: str = "ulaw"  # "pcm16", "ulaw" or "alaw"
    noise_snr_db: float | None = None  # white noise re the message's active level
    seed: int = 0


@dataclasses.dataclass
class BuiltCall:
    samples: np.ndarray  # (n,) mono or (n, 2), float32, after the encoding round trip
    rate_hz: int
    truth: dict  # message_start_s, message_end_s, beeps [[s, e]], greeting [s, e] | None, rep_channel
    wav_bytes: bytes


# --------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------


def _load(path: Path) -> np.ndarray:
    import soxr

    y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    y = y.mean(axis=1)
    return y if sr == RATE_HZ else soxr.resample(y, sr, RATE_HZ).astype(np.float32)


def _trim(y: np.ndarray, threshold_db: float = -40.0) -> np.ndarray:
    """Cut leading/trailing samples below ``threshold_db`` re the peak (the truth's speech edges)."""
    env = np.abs(y)
    loud = np.flatnonzero(env > env.max() * 10 ** (threshold_db / 20))
    return y[loud[0] : loud[-1] + 1] if loud.size else y[:0]


def _level(y: np.ndarray, peak_dbfs: float) -> np.ndarray:
    return (y * (10 ** (peak_dbfs / 20) / max(float(np.max(np.abs(y))), 1e-9))).astype(np.float32)


def tone(freqs_hz, seconds: float, dbfs: float = -16.0, ramp_s: float = 0.005) -> np.ndarray:
    """Sum of sines (each at ``dbfs`` peak) with short raised-cosine ramps against clicks."""
    t = np.arange(int(round(seconds * RATE_HZ))) / RATE_HZ
    y = sum(np.sin(2 * np.pi * f * t) for f in freqs_hz) * 10 ** (dbfs / 20)
    n = min(int(ramp_s * RATE_HZ), len(t) // 2)
    if n:
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, n))
        y[:n] *= ramp
        y[-n:] *= ramp[::-1]
    return np.asarray(y, np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(round(seconds * RATE_HZ)), np.float32)


def ringback(kind: str, rings: int) -> np.ndarray:
    """US: 440+480 Hz 2 s on, 4 s off.  UK: 400+450 Hz 0.4 on 0.2 off 0.4 on, 2 s off."""
    parts = []
    for _ in range(rings):
        if kind == "us":
            parts += [tone((440, 480), 2.0), silence(4.0)]
        elif kind == "uk":
            parts += [tone((400, 450), 0.4), silence(0.2), tone((400, 450), 0.4), silence(2.0)]
        else:
            raise ValueError(f"ringback must be 'us' or 'uk', not {kind!r}")
    return np.concatenate(parts)


def dtmf(digits: str) -> np.ndarray:
    parts = [silence(0.3)]
    for d in digits:
        row = next(r for r, keys in enumerate(DTMF_KEYS) if d in keys)
        col = DTMF_KEYS[row].index(d)
        parts += [tone((DTMF_ROWS_HZ[row], DTMF_COLS_HZ[col]), 0.07, dbfs=-12.0), silence(0.07)]
    return np.concatenate(parts + [silence(0.5)])


def greeting_path(name: str) -> Path:
    for ext in (".wav", ".flac"):
        p = TELEPHONY_DIR / f"{name}{ext}"
        if p.exists():
            return p
    raise FileNotFoundError(f"no greeting {name!r} in {TELEPHONY_DIR}")


def _noise(n: int, level: float, rng) -> np.ndarray:
    return (rng.standard_normal(n) * level).astype(np.float32)


# --------------------------------------------------------------------------
# Assembly
# --------------------------------------------------------------------------


def build_call(spec: CallSpec) -> BuiltCall:
    """Assemble one call recording and its truth (times in s on the file's clock)."""
    far: list[np.ndarray] = []
    rep: list[np.ndarray] = []

    def add(y: np.ndarray, side: str) -> float:
        """Append to one side (silence on the other); return the start time."""
        start = sum(len(p) for p in far) / RATE_HZ
        far.append(y if side == "far" else np.zeros_like(y))
        rep.append(y if side == "rep" else np.zeros_like(y))
        return start

    add(silence(0.4), "far")
    if spec.dtmf:
        add(dtmf(spec.dtmf), "rep")  # the rep's dialler
    if spec.ringback:
        add(ringback(spec.ringback, spec.rings), "far")
    greeting = None
    if spec.greeting:
        g = _level(_trim(_load(greeting_path(spec.greeting))), -6.0)
        s = add(g, "far")
        greeting = [s, s + len(g) / RATE_HZ]
        add(silence(spec.greeting_to_beep_s), "far")
    beeps = []
    for i in range(spec.beeps):
        if i:
            add(silence(spec.beep_gap_s), "far")
        s = add(tone((spec.beep_hz,), spec.beep_s, dbfs=-10.0), "far")
        beeps.append([s, s + spec.beep_s])
    add(silence(spec.beep_to_message_s), "far")
    msg = _level(_trim(_load(SAMPLES_DIR / spec.message)), -3.0)
    m0 = add(msg, "rep")
    m1 = m0 + len(msg) / RATE_HZ
    add(silence(0.6), "far")
    if spec.after == "busy":
        for _ in range(4):
            add(tone((480, 620), 0.25), "far")
            add(silence(0.25), "far")
    elif spec.after == "prompt":
        add(_level(_load(TELEPHONY_DIR / "beeperr.wav"), -10.0), "far")
        add(silence(0.4), "far")
        add(_level(_trim(_load(greeting_path("pls-enter-num-message-after-tone"))), -6.0), "far")
    elif spec.after is not None:
        raise ValueError(f"after must be None, 'busy' or 'prompt', not {spec.after!r}")
    add(silence(0.5), "far")
    far_y, rep_y = np.concatenate(far), np.concatenate(rep)
    rng = np.random.default_rng(spec.seed)
    if spec.crosstalk_db is not None:
        far_y = far_y + rep_y * 10 ** (spec.crosstalk_db / 20)
    if spec.noise_snr_db is not None:
        level = float(np.sqrt(np.mean(msg**2))) / 10 ** (spec.noise_snr_db / 20)
        far_y = far_y + _noise(len(far_y), level, rng)
        rep_y = rep_y + _noise(len(rep_y), level, rng)
    if spec.channels == 1:
        out = far_y + rep_y
    elif spec.channels == 2:
        out = np.stack([rep_y, far_y] if spec.rep_channel == 0 else [far_y, rep_y], axis=1)
    else:
        raise ValueError("channels must be 1 or 2")
    out = np.clip(out, -1.0, 1.0).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, out, RATE_HZ, format="WAV", subtype=ENCODINGS[spec.encoding])
    data = buf.getvalue()
    decoded, _ = sf.read(io.BytesIO(data), dtype="float32")
    truth = {
        "message_start_s": round(m0, 4),
        "message_end_s": round(m1, 4),
        "beeps": [[round(a, 4), round(b, 4)] for a, b in beeps],
        "greeting": None if greeting is None else [round(v, 4) for v in greeting],
        "rep_channel": spec.rep_channel if spec.channels == 2 else None,
        "duration_s": round(len(out) / RATE_HZ, 4),
    }
    return BuiltCall(decoded, RATE_HZ, truth, data)


def build_conversation(channels: int = 2, turns: int = 6, encoding: str = "ulaw") -> BuiltCall:
    """Two parties taking turns: the carrier voice's prompts and slices of the rep samples, alternating.

    With ``channels=2`` the parties are on separate sides (party A left); with
    1 they are mixed.  Truth: ``turns`` [[party, start_s, end_s]].
    """
    a_parts = [_level(_trim(_load(greeting_path(n))), -6.0) for n in CARRIER_GREETINGS]
    b_src = _trim(_load(SAMPLES_DIR / "validity" / "good_b.flac"))
    b_parts = [_level(b_src[int(i * 4.0 * RATE_HZ) : int((i * 4.0 + 3.5) * RATE_HZ)], -3.0) for i in range(4)]
    left: list[np.ndarray] = [silence(0.5)]
    right: list[np.ndarray] = [silence(0.5)]
    truth_turns = []
    t = 0.5
    for i in range(turns):
        party = i % 2
        y = a_parts[(i // 2) % len(a_parts)] if party == 0 else b_parts[(i // 2) % len(b_parts)]
        truth_turns.append([party, round(t, 3), round(t + len(y) / RATE_HZ, 3)])
        (left if party == 0 else right).append(y)
        (right if party == 0 else left).append(np.zeros_like(y))
        gap = silence(0.5)
        left.append(gap)
        right.append(gap)
        t += (len(y) + len(gap)) / RATE_HZ
    lr = np.stack([np.concatenate(left), np.concatenate(right)], axis=1)
    out = lr if channels == 2 else lr.sum(axis=1)
    out = np.clip(out, -1.0, 1.0).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, out, RATE_HZ, format="WAV", subtype=ENCODINGS[encoding])
    decoded, _ = sf.read(io.BytesIO(buf.getvalue()), dtype="float32")
    return BuiltCall(decoded, RATE_HZ, {"turns": truth_turns}, buf.getvalue())


def grid() -> list[CallSpec]:
    """The benchmark's and tests' variety of recordings (held out: nothing here is tuned per file)."""
    out = []
    greetings = (*CARRIER_GREETINGS, *PERSON_GREETINGS)
    messages = (
        "validity/strong_phone.wav", "followup_phone.wav", "validity/good_b.flac", "before_practice.wav"
    )
    i = 0
    for beep_hz in (440.0, 850.0, 1000.0, 1400.0):
        for beep_s in (0.2, 0.5, 1.2):
            for beeps in (1, 2):
                out.append(CallSpec(
                    message=messages[i % len(messages)],
                    greeting=greetings[i % len(greetings)],
                    ringback=("us", "uk", None)[i % 3],
                    dtmf="5551234" if i % 5 == 0 else None,
                    beep_hz=beep_hz,
                    beep_s=beep_s,
                    beeps=beeps,
                    beep_to_message_s=(0.3, 0.7, 1.2)[i % 3],
                    after=(None, "busy", "prompt")[i % 3],
                    channels=1 + (i % 4 == 3),
                    rep_channel=(i // 4) % 2,
                    crosstalk_db=-25.0 if i % 8 == 7 else None,
                    encoding=("ulaw", "alaw", "pcm16")[i % 3],
                    noise_snr_db=30.0 if i % 6 == 5 else None,
                    seed=i,
                ))
                i += 1
    return out


# --------------------------------------------------------------------------
# Person greetings (Piper, rendered once into samples/telephony/)
# --------------------------------------------------------------------------


def render_greetings() -> None:
    """Render PERSON_GREETINGS with Piper through the telephone channel of make_samples.py."""
    import importlib.util

    import soxr

    spec = importlib.util.spec_from_file_location("make_samples", REPO_ROOT / "tools" / "make_samples.py")
    ms = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ms)
    for i, (name, (text, pitch)) in enumerate(PERSON_GREETINGS.items()):
        backend = ms.PiperJoe(seed=100 + i)
        parts = []
        rate = backend.sample_rate
        for sentence in backend.sentences(text, 1.0):
            parts += [ms.trim_silence(sentence, rate=rate), ms.silence(0.3, rate)]
        y = np.concatenate(parts).astype(np.float32)
        if pitch != 1.0:  # play faster: pitch and formants up, a different-sounding voice
            y = soxr.resample(y, round(rate * pitch), rate).astype(np.float32)
        y = ms.phone_channel(0.7 * y / max(float(np.max(np.abs(y))), 1e-9), rate)
        out = TELEPHONY_DIR / f"{name}.flac"
        sf.write(str(out), y, RATE_HZ, subtype="PCM_16")
        print(f"{name}: {len(y) / RATE_HZ:.2f} s -> {out.relative_to(REPO_ROOT)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", type=Path, help="WAV file to write")
    parser.add_argument(
        "--render-greetings", action="store_true", help="render the Piper greetings (needs piper)"
    )
    for f in dataclasses.fields(CallSpec):
        kind = type(f.default) if f.default is not None else str
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=kind if kind in (int, float) else str)
    args = parser.parse_args(argv)
    if args.render_greetings:
        render_greetings()
        return 0
    if args.out is None:
        parser.error("give an output file or --render-greetings")
    names = [f.name for f in dataclasses.fields(CallSpec)]
    given = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    for key in ("greeting", "ringback", "after", "dtmf"):
        if given.get(key) == "none":
            given[key] = None
    built = build_call(CallSpec(**given))
    args.out.write_bytes(built.wav_bytes)
    print(json.dumps(built.truth))
    return 0


if __name__ == "__main__":
    sys.exit(main())
