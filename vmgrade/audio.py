"""Decode any voicemail recording to 16 kHz mono float32, without ffmpeg.

libsndfile (via soundfile) reads wav, flac, ogg/vorbis/opus and mp3; PyAV
(FFmpeg's libraries, shipped in its wheel) reads what libsndfile cannot:
m4a/aac, amr, webm and friends. Every problem a user can cause raises an
:class:`~vmgrade.errors.AudioError` whose ``code`` names it and whose message
names the file.

Cost is bounded whatever the file holds: a duration the header declares over
the limit is refused before decoding, and decoding runs in blocks of at most
``BLOCK_SAMPLES`` samples, downmixed and resampled as they come, stopping as
soon as the limit is passed (headers lie; a 2 MB FLAC can hold hours of
8-channel silence).

Decoding runs in a child process (:mod:`vmgrade.isolate`): a decoder that crashes on a
crafted file costs that file a ``decoder_crashed`` error, a decode past
:data:`DECODE_TIMEOUT_S` is killed (``decode_timeout``) and one whose allocations pass the
child's address-space cap (800 MB) fails as ``decode_over_budget``, never taking the
calling process (a CLI run, a batch worker, the web server) with it. On the PyAV path each
decoded frame is bounded too (:data:`MAX_FRAME_BYTES`), and ALAC's declared frame length is
read from its header before anything is decoded.

``load(..., keep_channels=True)`` also keeps both sides of a two-channel file
(dialer exports put the rep on one side, the far end on the other) as
``Audio.channels``; mono files and files of more channels keep only the mix,
so the cost is paid only where a side can be chosen.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .errors import AudioError, printable
from .isolate import CALL_TIMEOUT_S, ChildError, ChildFailed, Isolated, IsolatedPool

SAMPLE_RATE = 16000  # Hz, what Whisper and the delivery metrics expect
DEFAULT_MAX_DURATION_S = 600.0  # 10 min: far past any voicemail
SILENCE_PEAK_DBFS = -60.0  # a file whose loudest sample is below this holds no speech
MIN_DURATION_S = 0.1  # shorter than this cannot hold a word
BLOCK_SAMPLES = 1 << 20  # samples (all channels) decoded per block: 4 MB of float32
MAX_KEPT_CHANNELS = 2  # a dialer export's rep + far end; more channels are mixed as always
# Which side of a two-channel file to grade (the pipeline's GradeOptions.channel, --channel, the
# batch manifest's and the web upload's "channel"): auto (vmgrade.calls.pick_channel), a side, the mix.
CHANNEL_CHOICES = ("auto", "left", "right", "mix")
UNKNOWN_FRAMES = 1 << 62  # libsndfile reports SF_COUNT_MAX frames when a header leaves the length open
DECODE_TIMEOUT_S = CALL_TIMEOUT_S  # wall clock per file: a real decode of 10 min of audio takes ~1 s
# One decoded frame, all channels, as 32-bit samples: real codecs produce at most ~65 k samples a
# frame (FLAC's limit; AAC 1024, Opus 5760), a few MB at 8 channels. ALAC lets a header declare
# 16.7 M, which FFmpeg allocates (470 MB at 7 channels) before anything can be checked.
MAX_FRAME_BYTES = 64 * 2**20
MAX_CHANNELS = 64  # more than any recording setup; a header may claim thousands
# Codec frames hold 2.5 ms (Opus at its shortest) to 120 ms of audio; a stream of 1-sample frames
# costs a Python step each, 20 s for 600 k of them in a 5 MB file. Past this many frames their
# average must reach MIN_FRAME_S.
FRAMES_BEFORE_RATE_CHECK = 2000
MIN_FRAME_S = 0.001
ALAC_COOKIE = b"\x00\x00\x00\x24alac"  # ALAC's magic cookie atom: its size (36) and type
ALAC_COOKIES_CHECKED = 8  # a file holds one per ALAC track
MAX_RIFF_CHUNKS = 4096  # a real WAV has a handful before its data; a crafted one millions of empty ones
# Float files can hold samples past full scale; a player clips them. Up to +1 dB is an editor's
# overshoot, graded as is; past it the level (and so every loudness figure) is not a recording's.
OVER_RANGE_PEAK = 10 ** (1 / 20)


@dataclass(frozen=True)
class SourceInfo:
    """What the file was before decoding."""

    path: str
    format: str  # container, e.g. "WAV", "FLAC", "mp4"
    codec: str  # e.g. "PCM_16", "aac", "opus"
    sample_rate_hz: int
    channels: int
    duration_s: float
    size_bytes: int
    decoder: str  # "soundfile" or "pyav"


@dataclass(frozen=True)
class Audio:
    """A decoded recording: 16 kHz mono float32 samples plus source facts.

    ``samples`` is always the mono mix.  ``channels`` holds the two sides,
    shape (2, n) at ``sample_rate``, of a two-channel file loaded with
    ``keep_channels=True``; None otherwise.
    """

    samples: np.ndarray = field(repr=False)
    source: SourceInfo
    sample_rate: int = SAMPLE_RATE
    channels: np.ndarray | None = field(default=None, repr=False)

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def load(
    path: str | os.PathLike,
    *,
    max_duration_s: float = DEFAULT_MAX_DURATION_S,
    sample_rate: int = SAMPLE_RATE,
    keep_channels: bool = False,
    isolate: bool = True,
    decoder: Isolated | IsolatedPool | None = None,
) -> Audio:
    """Decode ``path`` to mono float32 at ``sample_rate`` Hz.

    Peak memory is a few blocks plus the output (``max_duration_s`` of mono
    samples at ``sample_rate``, three times that for a two-channel file kept
    with ``keep_channels``), whatever the file's channel count or length.

    Parameters
    ----------
    path : str or PathLike
        Audio file in any common format (wav, flac, ogg/opus, mp3, m4a/aac,
        amr, webm).
    max_duration_s : float
        Longest recording accepted, in seconds (default 600).
    sample_rate : int
        Target sample rate in Hz (default 16000, Whisper's).
    keep_channels : bool
        Also keep the two sides of a two-channel file as ``Audio.channels``
        (shape (2, n)); other files are unaffected.
    isolate : bool
        Decode in the child process (default). False decodes in this process, where a
        decoder crash would end it: for code that is itself such a child.
    decoder : Isolated or IsolatedPool, optional
        The child (or children) to decode in; default this process's own (one child, calls
        taking turns). The web server checks uploads in a pool of its own.

    Returns
    -------
    Audio

    Raises
    ------
    AudioError
        With ``code`` one of ``file_not_found``, ``symlink_loop``, ``not_a_file``,
        ``unreadable``, ``empty_file``, ``not_audio``, ``unsupported_codec``,
        ``truncated``, ``zero_length``, ``too_long``, ``silent``, ``out_of_range``,
        ``decoder_crashed``, ``decode_timeout``, ``decode_over_budget``, ``internal_error``
        (an unexpected failure while decoding: a bug, named in the message).
    """
    name = printable(os.fspath(path))
    kwargs = dict(path=os.fspath(path), max_duration_s=max_duration_s, sample_rate=sample_rate,
                  keep_channels=keep_channels)
    if not isolate:
        return decode(**kwargs)
    # The child keeps the parent's working directory from its start; a relative path is the caller's.
    kwargs["open_path"] = os.path.abspath(kwargs["path"])
    try:
        return (decoder or _DECODER).call("vmgrade.audio", "decode", kwargs, timeout_s=DECODE_TIMEOUT_S)
    except ChildFailed as exc:
        raise _child_error(name, exc) from None
    except ChildError as exc:  # a bug in decoding this file: still this file's error record, named
        raise AudioError(f"{name}: decoding failed unexpectedly ({exc})", code="internal_error",
                         path=name) from None


def start_decoder() -> None:
    """Start the decoding child process now, so its start overlaps other work (a model load)."""
    _DECODER.start()


def stop_decoder() -> None:
    """Stop the decoding child process (the next :func:`load` starts a new one)."""
    _DECODER.stop()


_DECODER = Isolated()
_CHILD_ERRORS = {  # ChildFailed.reason: (code, what the message says)
    "crashed": ("decoder_crashed", "the decoder crashed on this file"),
    "timeout": ("decode_timeout", "decoding took too long and was stopped"),
    "memory": ("decode_over_budget", "decoding needs more memory than a recording may take"),
}


def _child_error(name: str, exc: ChildFailed) -> AudioError:
    code, what = _CHILD_ERRORS[exc.reason]
    return AudioError(f"{name}: {what} ({exc.detail})", code=code, path=name)


def decode(
    path: str | os.PathLike,
    *,
    max_duration_s: float = DEFAULT_MAX_DURATION_S,
    sample_rate: int = SAMPLE_RATE,
    keep_channels: bool = False,
    open_path: str | os.PathLike | None = None,
) -> Audio:
    """:func:`load`'s work, in this process: what the decoding child runs.

    ``open_path`` is the file to open when it differs from ``path``, the name messages
    and :class:`SourceInfo` give (the child gets an absolute path).
    """
    name = printable(os.fspath(path))
    opened = Path(open_path if open_path is not None else path)
    size_bytes = _check_file(opened, name)
    _check_riff_truncation(opened, name)
    try:
        mix, info = _decode_soundfile(opened, name, size_bytes, max_duration_s, sample_rate, keep_channels)
    except _NotReadable:
        mix, info = _decode_pyav(opened, name, size_bytes, max_duration_s, sample_rate, keep_channels)
    info = replace(info, path=str(Path(path)))

    if mix.frames == 0 or info.duration_s < MIN_DURATION_S:
        raise AudioError(
            f"{name}: audio stream has no samples (zero length)", code="zero_length", path=name
        )
    if not mix.finite:
        raise AudioError(f"{name}: decoded samples contain NaN or infinity", code="not_audio", path=name)
    if mix.peak > OVER_RANGE_PEAK:
        raise AudioError(
            f"{name}: samples reach {20 * np.log10(mix.peak):+.1f} dB over full scale (a float file "
            "out of range; a player would clip it): normalise it and try again",
            code="out_of_range", path=name,
        )
    mono = mix.samples()
    peak = float(np.max(np.abs(mono))) if mono.size else 0.0
    if peak <= 10 ** (SILENCE_PEAK_DBFS / 20):
        raise AudioError(
            f"{name}: recording is silent (peak below {SILENCE_PEAK_DBFS:.0f} dBFS)",
            code="silent",
            path=name,
        )
    return Audio(samples=mono, source=info, sample_rate=sample_rate, channels=mix.sides(len(mono)))


def resample(samples: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a 1-D float array from ``orig_sr`` to ``target_sr`` Hz (soxr, high quality)."""
    if orig_sr == target_sr:
        return np.ascontiguousarray(samples, dtype=np.float32)
    import soxr

    return soxr.resample(samples, orig_sr, target_sr, quality="HQ").astype(np.float32)


class _Mixdown:
    """Downmixes and resamples decoded blocks as they arrive; refuses once past the limit.

    soxr's stream gives the same samples as :func:`resample` on the whole signal.
    With ``keep_sides``, the two sides of a two-channel stream are resampled
    alongside the mix (a second stream; the mix is computed exactly as without).
    """

    def __init__(self, name: str, sr_in: int, sr_out: int, max_duration_s: float, keep_sides: bool = False):
        self.name, self.sr_in, self.sr_out, self.max_duration_s = name, sr_in, sr_out, max_duration_s
        self.frames = 0  # at the source rate, all channels counted once
        self.finite = True
        self.peak = 0.0  # largest |sample| at the source rate, any channel
        self._out: list[np.ndarray] = []
        self._stream = None
        self._keep_sides = keep_sides
        self._sides: list[np.ndarray] | None = None  # (n, 2) blocks while every block has two channels
        self._sides_stream = None
        if sr_in != sr_out:
            import soxr

            self._stream = soxr.ResampleStream(sr_in, sr_out, 1, dtype="float32", quality="HQ")

    def add(self, block: np.ndarray) -> None:
        """Append a (frames, channels) block."""
        self.frames += len(block)
        if self.frames > self.max_duration_s * self.sr_in:
            raise AudioError(
                f"{self.name}: recording is longer than the limit of {self.max_duration_s:.0f} s "
                "(raise it with --max-duration)",
                code="too_long",
                path=self.name,
            )
        self.finite = self.finite and bool(np.isfinite(block).all())
        if self.finite and block.size:
            self.peak = max(self.peak, float(np.max(np.abs(block))))
        mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
        mono = np.ascontiguousarray(mono, dtype=np.float32)
        self._out.append(self._stream.resample_chunk(mono) if self._stream else mono.copy())
        if self._keep_sides:
            self._add_sides(block)

    def _add_sides(self, block: np.ndarray) -> None:
        if block.shape[1] != MAX_KEPT_CHANNELS:  # mono or more channels: the mix alone
            self._keep_sides, self._sides = False, None
            return
        if self._sides is None:
            self._sides = []
            if self.sr_in != self.sr_out:
                import soxr

                self._sides_stream = soxr.ResampleStream(
                    self.sr_in, self.sr_out, MAX_KEPT_CHANNELS, dtype="float32", quality="HQ"
                )
        both = np.ascontiguousarray(block, dtype=np.float32)
        self._sides.append(self._sides_stream.resample_chunk(both) if self._sides_stream else both.copy())

    def sides(self, n: int) -> np.ndarray | None:
        """The two sides, shape (2, ``n``) like the mix, or None (not kept, or not two channels)."""
        if not self._keep_sides or self._sides is None:
            return None
        if self._sides_stream is not None:
            self._sides.append(self._sides_stream.resample_chunk(np.zeros((0, 2), np.float32), last=True))
            self._sides_stream = None
        both = np.concatenate(self._sides) if self._sides else np.zeros((0, 2), np.float32)
        self._sides = [both]
        out = np.zeros((MAX_KEPT_CHANNELS, n), np.float32)
        m = min(n, len(both))
        out[:, :m] = both[:m].T
        return out

    def samples(self) -> np.ndarray:
        """All output samples (flushes the resampler)."""
        if self._stream is not None:
            self._out.append(self._stream.resample_chunk(np.zeros(0, np.float32), last=True))
            self._stream = None
        out = np.concatenate(self._out) if self._out else np.zeros(0, np.float32)
        self._out = [out]
        return out


def _too_long_declared(name: str, declared_s: float, max_duration_s: float) -> AudioError:
    return AudioError(
        f"{name}: recording is {declared_s:.1f} s long, over the limit of "
        f"{max_duration_s:.0f} s (raise it with --max-duration)",
        code="too_long",
        path=name,
    )


class _NotReadable(Exception):
    """libsndfile cannot read this container; try PyAV."""


def _decode_soundfile(
    path: Path, name: str, size_bytes: int, max_duration_s: float, sample_rate: int,
    keep_channels: bool = False,
) -> tuple[_Mixdown, SourceInfo]:
    import soundfile as sf

    try:
        # bytes: libsndfile gets the name as the OS has it, valid UTF-8 or not
        with sf.SoundFile(os.fsencode(path)) as f:
            sr, channels, frames = f.samplerate, f.channels, f.frames
            fmt, subtype = f.format, f.subtype
            if frames >= UNKNOWN_FRAMES:
                frames = 0
            elif frames / sr > max_duration_s:
                raise _too_long_declared(name, frames / sr, max_duration_s)
            mix = _Mixdown(name, int(sr), sample_rate, max_duration_s, keep_channels)
            block = np.empty((max(1, BLOCK_SAMPLES // channels), channels), np.float32)
            while True:
                data = f.read(dtype="float32", always_2d=True, out=block)
                if len(data) == 0:
                    break
                mix.add(data)
    except sf.LibsndfileError as exc:
        raise _NotReadable(str(exc)) from exc
    except RuntimeError as exc:  # libsndfile fails mid-stream on a damaged body
        raise AudioError(
            f"{name}: audio data is damaged or truncated ({exc})", code="truncated", path=name
        ) from exc
    if frames > 0 and mix.frames < frames * 0.99:
        raise AudioError(
            f"{name}: file is truncated: header declares {frames / sr:.2f} s but only "
            f"{mix.frames / sr:.2f} s of audio could be read",
            code="truncated",
            path=name,
        )
    info = SourceInfo(
        path=str(path),
        format=fmt,
        codec=subtype,
        sample_rate_hz=int(sr),
        channels=int(channels),
        duration_s=mix.frames / sr if sr else 0.0,
        size_bytes=size_bytes,
        decoder="soundfile",
    )
    return mix, info


def _decode_pyav(
    path: Path, name: str, size_bytes: int, max_duration_s: float, sample_rate: int,
    keep_channels: bool = False,
) -> tuple[_Mixdown, SourceInfo]:
    import av

    _check_alac_cookie(path, name)  # FFmpeg allocates ALAC's declared frames when it opens the file
    try:
        container = av.open(os.fspath(path))
    except (av.error.InvalidDataError, av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise AudioError(
            f"{name}: not a recognised audio file ({_first_line(exc)})", code="not_audio", path=name
        ) from exc
    with container:
        streams = container.streams.audio
        if not streams:
            raise AudioError(f"{name}: file contains no audio stream", code="not_audio", path=name)
        stream = streams[0]
        fmt = container.format.name
        if stream.codec_context is None:  # FFmpeg knows the container but has no decoder for the codec
            raise AudioError(
                f"{name}: the audio codec in this {fmt} file is not supported", code="unsupported_codec",
                path=name,
            )
        codec = stream.codec_context.name
        sr = stream.codec_context.sample_rate or stream.rate
        if not sr:
            raise AudioError(f"{name}: audio stream declares no sample rate", code="not_audio", path=name)
        declared_s = (
            float(stream.duration * stream.time_base)
            if stream.duration is not None and stream.time_base is not None
            else (container.duration / 1e6 if container.duration else None)
        )
        if declared_s and declared_s > max_duration_s:
            raise _too_long_declared(name, declared_s, max_duration_s)
        declared_channels = _pyav_channels(stream.codec_context)
        if declared_channels > MAX_CHANNELS:
            raise AudioError(f"{name}: audio stream declares {declared_channels} channels (at most "
                             f"{MAX_CHANNELS} are read)", code="decode_over_budget", path=name)
        _check_declared_frame(name, codec, stream.codec_context, declared_channels)
        mix = _Mixdown(name, int(sr), sample_rate, max_duration_s, keep_channels)
        channels = 0
        # Decode to packed float at the native rate (one plane: PyAV's per-plane access crashes on
        # exactly 8 channels, a 7.1 phone recording); the mixdown resamples.
        resampler = av.AudioResampler(format="flt", layout=None, rate=None)
        damaged = False
        pending: list[np.ndarray] = []  # codec frames are small (AAC: 1024): mixed a block at a time
        pending_frames = 0
        try:
            for n_frames, frame in enumerate(container.decode(stream), 1):
                if n_frames == 1 and frame.sample_rate and frame.sample_rate != sr:
                    # the header's rate was not the decoder's (HE-AAC doubles it): the frames' rules
                    sr = frame.sample_rate
                    mix = _Mixdown(name, int(sr), sample_rate, max_duration_s, keep_channels)
                _check_same_format(name, frame, sr, channels)
                channels = frame.layout.nb_channels
                _check_frame_bytes(name, frame.samples, channels, frame.format.bytes)
                if n_frames == FRAMES_BEFORE_RATE_CHECK:
                    _check_frame_rate(name, mix.frames + pending_frames, n_frames, sr)
                for out in resampler.resample(frame):
                    if pending and out.layout.nb_channels != pending[-1].shape[1]:
                        pending_frames = _flush(mix, pending)
                    pending.append(_packed(out).copy())
                    pending_frames += out.samples
                if pending_frames * channels >= BLOCK_SAMPLES // 16:
                    pending_frames = _flush(mix, pending)
            for out in resampler.resample(None):
                pending.append(_packed(out).copy())
            _flush(mix, pending)
        except (av.error.InvalidDataError, av.error.FFmpegError, EOFError, ValueError) as exc:
            damaged = True
            detail = _first_line(exc)
            _flush(mix, pending)  # what decoded before the damage counts (truncated, not not_audio)
    decoded_s = mix.frames / sr
    if damaged and not mix.frames:
        raise AudioError(f"{name}: not a decodable audio file ({detail})", code="not_audio", path=name)
    if damaged or (declared_s and decoded_s < declared_s * 0.9 and declared_s - decoded_s > 0.5):
        raise AudioError(
            f"{name}: file is truncated or damaged: decoded {decoded_s:.2f} s"
            + (f" of a declared {declared_s:.2f} s" if declared_s else ""),
            code="truncated",
            path=name,
        )
    info = SourceInfo(
        path=str(path),
        format=fmt,
        codec=codec,
        sample_rate_hz=int(sr),
        channels=channels or 1,
        duration_s=decoded_s,
        size_bytes=size_bytes,
        decoder="pyav",
    )
    return mix, info


def _flush(mix: _Mixdown, pending: list[np.ndarray]) -> int:
    """Hand the pending frames to ``mix`` as one block; empties ``pending`` and returns 0."""
    if pending:
        mix.add(pending[0] if len(pending) == 1 else np.concatenate(pending))
        pending.clear()
    return 0


def _check_same_format(name: str, frame, sr: float, channels: int) -> None:
    """Refuse a stream whose sample rate or channel count changes midway (ADTS streams joined
    end to end can): the mixdown runs at one rate, and a new resampler would splice two recordings."""
    rate, count = frame.sample_rate, frame.layout.nb_channels
    if (channels and count != channels) or (rate and rate != sr):
        raise AudioError(
            f"{name}: the audio changes format midway ({sr:g} Hz, {channels or count} channel(s), then "
            f"{rate:g} Hz, {count}): not supported; export it again as one recording",
            code="unsupported_codec", path=name,
        )


def _check_frame_rate(name: str, samples: int, frames: int, sr: float) -> None:
    """Refuse a stream whose frames average under :data:`MIN_FRAME_S` (each frame costs a decode step)."""
    if samples < frames * sr * MIN_FRAME_S:
        raise AudioError(
            f"{name}: its first {frames} frames hold {samples / frames:.1f} samples each on average "
            f"(under {MIN_FRAME_S * 1000:g} ms): decoding it would take too long",
            code="decode_over_budget", path=name,
        )


def _packed(frame) -> np.ndarray:
    """A packed-float PyAV frame as a (samples, channels) array (a view, no copy)."""
    return frame.to_ndarray().reshape(frame.samples, frame.layout.nb_channels)


def _pyav_channels(codec_context) -> int:
    layout = getattr(codec_context, "layout", None)
    return int(getattr(layout, "nb_channels", 0) or getattr(codec_context, "channels", 0) or 0)


def _check_frame_bytes(name: str, samples: int, channels: int, sample_bytes: int) -> None:
    """Refuse a frame over :data:`MAX_FRAME_BYTES` before it is converted or copied."""
    size = samples * max(channels, 1) * max(sample_bytes, 4)
    if size > MAX_FRAME_BYTES:
        raise AudioError(
            f"{name}: a frame of {samples} samples x {channels} channels would take "
            f"{size / 2**20:.0f} MB to decode (at most {MAX_FRAME_BYTES / 2**20:.0f} MB a frame)",
            code="decode_over_budget", path=name,
        )


def _check_declared_frame(name: str, codec: str, codec_context, channels: int) -> None:
    """Refuse a stream whose header declares frames over the budget, before any is decoded.

    ALAC's magic cookie (FFmpeg's extradata: size, 'alac', version, then the config) states
    the most samples a frame holds, and FFmpeg's decoder allocates that much per frame.
    """
    declared = int(getattr(codec_context, "frame_size", 0) or 0)
    extradata = codec_context.extradata or b""
    if codec == "alac" and len(extradata) >= 16:
        declared = max(declared, struct.unpack(">I", extradata[12:16])[0])
    if declared:
        _check_frame_bytes(name, declared, channels, 4)


def _check_alac_cookie(path: Path, name: str) -> None:
    """Refuse an ALAC magic cookie declaring frames over the budget, found in the raw bytes.

    FFmpeg reads the cookie and allocates buffers for its frame length while it opens the file
    (370 MB for 16.7 M samples), before :func:`_check_declared_frame` can see the stream. The
    cookie's layout is the same in mp4, CAF and Matroska: size 36, ``alac``, version, then
    ``frameLength`` (uint32) and, 9 bytes on, ``numChannels``.
    """
    import mmap

    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            at = data.find(ALAC_COOKIE)
            for _ in range(ALAC_COOKIES_CHECKED):
                if at < 0 or at + len(ALAC_COOKIE) + 14 > len(data):
                    return
                config = at + len(ALAC_COOKIE) + 4  # past the version
                frame_samples = struct.unpack(">I", data[config:config + 4])[0]
                channels = max(1, data[config + 9])
                _check_frame_bytes(name, frame_samples, channels, 4)
                at = data.find(ALAC_COOKIE, at + 1)
    except (OSError, ValueError):  # an empty or unmappable file: the decoder says what it is
        return


def _check_file(path: Path, name: str) -> int:
    """Size in bytes of a regular, readable file; else the AudioError that says why not."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError, ValueError) as exc:  # ValueError: a NUL in the name
        raise AudioError(f"{name}: file not found", code="file_not_found", path=name) from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise AudioError(f"{name}: symbolic link loop (the link points back at itself)",
                             code="symlink_loop", path=name) from exc
        raise _unreadable(name, exc) from exc
    if not stat.S_ISREG(st.st_mode):  # before any open: a FIFO or device would block or never end
        raise AudioError(f"{name}: not a regular file", code="not_a_file", path=name)
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as exc:
        raise _unreadable(name, exc) from exc
    if st.st_size == 0:
        raise AudioError(f"{name}: file is empty (0 bytes)", code="empty_file", path=name)
    return st.st_size


def _unreadable(name: str, exc: OSError) -> AudioError:
    return AudioError(f"{name}: cannot read the file ({exc.strerror or exc})", code="unreadable", path=name)


def _check_riff_truncation(path: Path, name: str) -> None:
    """Raise if a RIFF/WAVE file's data chunk claims more bytes than the file holds.

    libsndfile quietly reads what is there, so a cut-off upload would pass as
    a shorter recording.
    """
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        size = os.fstat(f.fileno()).st_size
        pos = 12
        for _ in range(MAX_RIFF_CHUNKS):
            if pos + 8 > size:
                break
            f.seek(pos)
            chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                available = size - pos - 8
                # 0 and 0xFFFFFFFF mean "unknown length" (streamed writers)
                if chunk_size not in (0, 0xFFFFFFFF) and available < chunk_size:
                    raise AudioError(
                        f"{name}: file is truncated: WAV data chunk declares {chunk_size} bytes "
                        f"but only {available} are present",
                        code="truncated",
                        path=name,
                    )
                return
            pos += 8 + chunk_size + (chunk_size & 1)
        else:
            raise AudioError(
                f"{name}: not a recognised audio file: WAV header has over {MAX_RIFF_CHUNKS} chunks "
                "before its data",
                code="not_audio",
                path=name,
            )
        raise AudioError(
            f"{name}: file is truncated: WAV header has no data chunk",
            code="truncated",
            path=name,
        )


def _first_line(exc: BaseException) -> str:
    # FFmpeg's errors end with the path it opened (the child's absolute one): its reason alone
    text = (getattr(exc, "strerror", None) or str(exc)).strip().splitlines()
    return text[0] if text else type(exc).__name__
