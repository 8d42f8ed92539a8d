"""Decode any voicemail recording to 16 kHz mono float32, without ffmpeg.

libsndfile (via soundfile) reads wav, flac, ogg/vorbis/opus and mp3; PyAV
(FFmpeg's libraries, shipped in its wheel) reads what libsndfile cannot:
m4a/aac, amr, webm and friends. Every problem a user can cause raises an
:class:`~vmgrade.errors.AudioError` whose ``code`` names it and whose message
names the file.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import AudioError

SAMPLE_RATE = 16000  # Hz, what Whisper and the delivery metrics expect
DEFAULT_MAX_DURATION_S = 600.0  # 10 min: far past any voicemail
SILENCE_PEAK_DBFS = -60.0  # a file whose loudest sample is below this holds no speech
MIN_DURATION_S = 0.1  # shorter than this cannot hold a word


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
    """A decoded recording: 16 kHz mono float32 samples plus source facts."""

    samples: np.ndarray = field(repr=False)
    source: SourceInfo
    sample_rate: int = SAMPLE_RATE

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def load(
    path: str | os.PathLike,
    *,
    max_duration_s: float = DEFAULT_MAX_DURATION_S,
    sample_rate: int = SAMPLE_RATE,
) -> Audio:
    """Decode ``path`` to mono float32 at ``sample_rate`` Hz.

    Parameters
    ----------
    path : str or PathLike
        Audio file in any common format (wav, flac, ogg/opus, mp3, m4a/aac,
        amr, webm).
    max_duration_s : float
        Longest recording accepted, in seconds (default 600).
    sample_rate : int
        Target sample rate in Hz (default 16000, Whisper's).

    Returns
    -------
    Audio

    Raises
    ------
    AudioError
        With ``code`` one of ``file_not_found``, ``not_a_file``,
        ``empty_file``, ``not_audio``, ``truncated``, ``zero_length``,
        ``too_long``, ``silent``.
    """
    path = Path(path)
    name = str(path)
    if not path.exists():
        raise AudioError(f"{name}: file not found", code="file_not_found", path=name)
    if not path.is_file():
        raise AudioError(f"{name}: not a regular file", code="not_a_file", path=name)
    size_bytes = path.stat().st_size
    if size_bytes == 0:
        raise AudioError(f"{name}: file is empty (0 bytes)", code="empty_file", path=name)

    _check_riff_truncation(path)
    try:
        samples, info = _decode_soundfile(path, size_bytes)
    except _NotReadable:
        samples, info = _decode_pyav(path, size_bytes)

    if samples.size == 0 or info.duration_s < MIN_DURATION_S:
        raise AudioError(
            f"{name}: audio stream has no samples (zero length)", code="zero_length", path=name
        )
    if info.duration_s > max_duration_s:
        raise AudioError(
            f"{name}: recording is {info.duration_s:.1f} s long, over the limit of "
            f"{max_duration_s:.0f} s (raise it with --max-duration)",
            code="too_long",
            path=name,
        )
    if not np.all(np.isfinite(samples)):
        raise AudioError(f"{name}: decoded samples contain NaN or infinity", code="not_audio", path=name)

    mono = samples.mean(axis=1) if samples.ndim == 2 else samples
    mono = resample(mono.astype(np.float32), info.sample_rate_hz, sample_rate)
    peak = float(np.max(np.abs(mono))) if mono.size else 0.0
    if peak <= 10 ** (SILENCE_PEAK_DBFS / 20):
        raise AudioError(
            f"{name}: recording is silent (peak below {SILENCE_PEAK_DBFS:.0f} dBFS)",
            code="silent",
            path=name,
        )
    return Audio(samples=mono, source=info, sample_rate=sample_rate)


def resample(samples: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a 1-D float array from ``orig_sr`` to ``target_sr`` Hz (soxr, high quality)."""
    if orig_sr == target_sr:
        return np.ascontiguousarray(samples, dtype=np.float32)
    import soxr

    return soxr.resample(samples, orig_sr, target_sr, quality="HQ").astype(np.float32)


class _NotReadable(Exception):
    """libsndfile cannot read this container; try PyAV."""


def _decode_soundfile(path: Path, size_bytes: int) -> tuple[np.ndarray, SourceInfo]:
    import soundfile as sf

    try:
        with sf.SoundFile(str(path)) as f:
            sr, channels, frames = f.samplerate, f.channels, f.frames
            fmt, subtype = f.format, f.subtype
            data = f.read(dtype="float32", always_2d=True)
    except sf.LibsndfileError as exc:
        raise _NotReadable(str(exc)) from exc
    except RuntimeError as exc:  # libsndfile fails mid-stream on a damaged body
        raise AudioError(
            f"{path}: audio data is damaged or truncated ({exc})", code="truncated", path=str(path)
        ) from exc
    if frames > 0 and len(data) < frames * 0.99:
        raise AudioError(
            f"{path}: file is truncated: header declares {frames / sr:.2f} s but only "
            f"{len(data) / sr:.2f} s of audio could be read",
            code="truncated",
            path=str(path),
        )
    info = SourceInfo(
        path=str(path),
        format=fmt,
        codec=subtype,
        sample_rate_hz=int(sr),
        channels=int(channels),
        duration_s=len(data) / sr if sr else 0.0,
        size_bytes=size_bytes,
        decoder="soundfile",
    )
    return data, info


def _decode_pyav(path: Path, size_bytes: int) -> tuple[np.ndarray, SourceInfo]:
    import av

    name = str(path)
    try:
        container = av.open(name)
    except (av.error.InvalidDataError, av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise AudioError(
            f"{name}: not a recognised audio file ({_first_line(exc)})", code="not_audio", path=name
        ) from exc
    with container:
        streams = container.streams.audio
        if not streams:
            raise AudioError(f"{name}: file contains no audio stream", code="not_audio", path=name)
        stream = streams[0]
        codec = stream.codec_context.name
        sr = stream.codec_context.sample_rate or stream.rate
        channels = stream.codec_context.channels
        # Decode to float planar at the native rate; soxr resamples later.
        resampler = av.AudioResampler(format="fltp", layout=None, rate=None)
        chunks: list[np.ndarray] = []
        damaged = False
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
        except (av.error.InvalidDataError, av.error.FFmpegError, EOFError) as exc:
            damaged = True
            detail = _first_line(exc)
        declared_s = (
            float(stream.duration * stream.time_base)
            if stream.duration is not None and stream.time_base is not None
            else (container.duration / 1e6 if container.duration else None)
        )
        fmt = container.format.name
    data = np.concatenate(chunks, axis=1).T if chunks else np.zeros((0, max(channels, 1)), np.float32)
    decoded_s = len(data) / sr if sr else 0.0
    if damaged and not chunks:
        raise AudioError(f"{name}: not a decodable audio file ({detail})", code="not_audio", path=name)
    if damaged or (declared_s and decoded_s < declared_s * 0.9 and declared_s - decoded_s > 0.5):
        raise AudioError(
            f"{name}: file is truncated or damaged: decoded {decoded_s:.2f} s"
            + (f" of a declared {declared_s:.2f} s" if declared_s else ""),
            code="truncated",
            path=name,
        )
    info = SourceInfo(
        path=name,
        format=fmt,
        codec=codec,
        sample_rate_hz=int(sr),
        channels=int(data.shape[1]) if data.ndim == 2 else 1,
        duration_s=decoded_s,
        size_bytes=size_bytes,
        decoder="pyav",
    )
    return data.astype(np.float32), info


def _check_riff_truncation(path: Path) -> None:
    """Raise if a RIFF/WAVE file's data chunk claims more bytes than the file holds.

    libsndfile quietly reads what is there, so a cut-off upload would pass as
    a shorter recording.
    """
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        size = path.stat().st_size
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                available = size - pos - 8
                # 0 and 0xFFFFFFFF mean "unknown length" (streamed writers)
                if chunk_size not in (0, 0xFFFFFFFF) and available < chunk_size:
                    raise AudioError(
                        f"{path}: file is truncated: WAV data chunk declares {chunk_size} bytes "
                        f"but only {available} are present",
                        code="truncated",
                        path=str(path),
                    )
                return
            pos += 8 + chunk_size + (chunk_size & 1)
        raise AudioError(
            f"{path}: file is truncated: WAV header has no data chunk",
            code="truncated",
            path=str(path),
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
