"""Who is speaking: speaker embeddings over the speech of a recording.

A live call has two or more people taking turns; a call recording has the
far end's greeting, then the rep; a two-channel export has the rep on one
side.  Pitch alone cannot tell these apart (one voice drops for a number read
slowly; a telephone high-pass moves the pitch tracker's octave), so voices
are compared by a speaker-embedding model:

* Model: the GE2E speaker encoder of Resemblyzer (a 3-layer LSTM over 40 mel
  bands, 256-d, L2-normed), trained on thousands of speakers (LibriSpeech,
  VoxCeleb 1 and 2).  Its weights ship inside the pinned pip package
  ``resemblyzer==0.1.4`` (``pretrained.pt``, 17 MB; sha256 checked); nothing
  is downloaded.  It runs in numpy, or on torch where the recogniser has
  loaded it (:mod:`vmgrade.calls.voice_encoder`).
* Runs: the VAD's speech, joined over short gaps, cut into pieces of at most
  ``MAX_RUN_S`` (a turn change without a pause); a run counts when it lasts
  ``MIN_RUN_S`` and is voiced (line noise and hum make no voiced frames).
  Each run is embedded as the mean of its 1.6-s windows (the encoder's partial
  utterance).  Runs, not single windows: one window of one voice wanders with
  the phonemes in it (pairs as low as 0.39), a run's mean does not.
* Channel: every file is embedded through a sharp telephone band, so a voice
  wideband and on the phone compare alike and one set of thresholds holds.
* Voices: the runs are split in two by average linkage, and again within each
  side, while a split stands (:func:`_split_two`): both sides hold real speech
  and their centroids are unlike one voice's.

Figures (``python bench/recording_kinds.py``): docs/calls.md.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from ..vad import voiced_frames
from . import spectra
from .voice_encoder import EMBEDDING_DIM, encoder

# --------------------------------------------------------------------------
# Constants (units in names)
# --------------------------------------------------------------------------
RATE_HZ = 16000  # the encoder's rate (its mel frames are 10 ms at 16 kHz)
WINDOW_FRAMES = 160  # the encoder's partial utterance: 160 mel frames of 10 ms = 1.6 s
FRAME_S = 0.01
MEL_WINDOW_SAMPLES = 400  # the encoder's mel frames: 25-ms windows every FRAME_S, 40 bands
MEL_BANDS = 40
WINDOW_HOP_S = 0.4  # windows inside a run (resemblyzer's own rate); ~0.2 s of encoder per 30 s, 2 cores
RUN_JOIN_GAP_S = 0.25  # speech closer than this is one run (a breath inside a phrase)
MIN_RUN_S = 0.8  # shorter runs ("mm-hm", a blip) are not embedded
MAX_RUN_S = 3.0  # longer runs are cut: a turn may change without a pause
MIN_RUN_VOICED = 0.25  # a run counts when a quarter of its frames are voiced (noise and hum: ~0)
CHANNEL_BAND_HZ = (300.0, 3400.0)  # every file is compared on a sharp telephone band ...
CHANNEL_ORDER = 8  # ... whatever its own channel was
BAND_PAD_S = 0.25  # zeros after each block filtered in the frequency domain (the band-pass rings ~12 ms)
BAND_FFT_SIZE = 1 << 16  # the blocks' FFT size: 4.1 s at 16 kHz, 3.8 s of it signal
SPEECH_LEVEL_DBFS = -30.0  # the level the encoder was trained at (Resemblyzer normalises its input so)
# A split into two voices stands when both sides hold MIN_PARTY_S over MIN_PARTY_RUNS runs, and their
# centroids are below SAME_VOICE_MIN_SIMILARITY and at least SPLIT_MIN_GAP below each side's cohesion
# (its runs' mean similarity to its own centroid).  On the tuning files (11 corpus speakers, the
# samples; clean, a sharp phone band, car noise at 5 dB): two people 0.65-0.78 apart, gap >= 0.13;
# one voice split by a change of style (fast, then slow and quiet; a TTS voice sped up) 0.73-0.93,
# but then its smaller side held <= 2.3 s.
SAME_VOICE_MIN_SIMILARITY = 0.80
SPLIT_MIN_GAP = 0.12
# Or, closer (two voices of one synthesiser embed 0.79-0.88 alike), with their median pitch apart:
# one voice split by style, noise or a phone band measured <= 0.31 octave apart on the labelled set's
# single-voice files; two voices of different pitch 0.68-1.35 octave.
PITCH_SPLIT_MAX_SIMILARITY = 0.85
PITCH_SPLIT_MIN_GAP = 0.08
PITCH_SPLIT_MIN_OCT = 0.5
MIN_PARTY_S = 3.0
MIN_PARTY_RUNS = 2
MAX_PARTIES = 4  # voices told apart at most (a conference call; more are counted as four)
MIN_SWITCHES = 3  # A-B-A-B: a voicemail has at most greeting, message and a closing prompt
MIN_PARTY_TURNS = 2
F0_RANGE_HZ = (70.0, 400.0)  # adult speaking pitch, for the per-run YIN
YIN_FRAME = 800  # 50 ms at 16 kHz: two periods of a 40 Hz margin below the lowest F0
ROUND = 3

class _RunPitch:
    """Median F0 (Hz) of speech runs by YIN (librosa's, :func:`spectra.yin`), computed per run on first
    request and kept.

    YIN, not the voicing autocorrelation: on a sharp phone band the fundamental is gone and an
    autocorrelation peak lands an octave off, which would split one voice in two.
    """

    def __init__(self, y: np.ndarray, spans_s: np.ndarray) -> None:
        self._y, self._spans = y, spans_s
        self._f0: dict[int, float] = {}

    def __call__(self, indices: np.ndarray) -> float:
        """The median F0 over the voiced frames of runs ``indices`` (NaN when none is voiced)."""
        values = []
        for i in (int(k) for k in indices):
            if i not in self._f0:
                a, b = (int(t * RATE_HZ) for t in self._spans[i])
                seg = self._y[a:b]
                f0 = np.array([np.nan])
                if len(seg) > YIN_FRAME:
                    f0 = spectra.yin(seg, F0_RANGE_HZ[0], F0_RANGE_HZ[1], RATE_HZ, frame_length=YIN_FRAME,
                                     hop_length=int(RATE_HZ * FRAME_S))
                # YIN answers every frame; a frame at the range's edge is unvoiced or noise
                f0 = f0[(f0 > F0_RANGE_HZ[0] * 1.05) & (f0 < F0_RANGE_HZ[1] * 0.95)]
                self._f0[i] = float(np.median(f0)) if f0.size else float("nan")
            values.append(self._f0[i])
        finite = [v for v in values if np.isfinite(v)]
        return float(np.median(finite)) if finite else float("nan")


@dataclass(frozen=True)
class VoiceRuns:
    """Speaker embeddings of the speech runs of one signal.

    Attributes
    ----------
    spans_s : np.ndarray, shape (n, 2)
        Run edges, s, on the clock of the signal given.
    vectors : np.ndarray, shape (n, 256)
        L2-normed mean embedding of each run.
    """

    spans_s: np.ndarray
    vectors: np.ndarray
    # each run's median F0 (Hz) by YIN, computed only when asked (a close split): pitch is a second
    # feature, never alone; None: no signal kept
    pitch: _RunPitch | None = None

    def __len__(self) -> int:
        return len(self.spans_s)

    @property
    def durations_s(self) -> np.ndarray:
        return self.spans_s[:, 1] - self.spans_s[:, 0] if len(self) else np.zeros(0)

    def between(self, start_s: float, end_s: float) -> VoiceRuns:
        """The runs whose middle lies in [start_s, end_s)."""
        mid = self.spans_s.mean(axis=1) if len(self) else np.zeros(0)
        keep = (mid >= start_s) & (mid < end_s)
        return VoiceRuns(self.spans_s[keep], self.vectors[keep])

    def centroid(self) -> np.ndarray | None:
        """The unit mean of the runs' embeddings, weighted by length (None when there are none)."""
        if not len(self):
            return None
        return _unit((self.vectors * self.durations_s[:, None]).sum(axis=0))


def phone_band_response(freqs_hz: np.ndarray, sample_rate_hz: int = RATE_HZ,
                        band_hz: tuple[float, float] = CHANNEL_BAND_HZ,
                        order: int = CHANNEL_ORDER) -> np.ndarray:
    """The frequency response of a digital Butterworth band-pass, in closed form.

    The filter ``scipy.signal.butter(order, band_hz, "bandpass", fs=sample_rate_hz)`` designs:
    the analog prototype ``prod(-p / (s - p))`` over its poles ``p`` on the unit circle,
    moved to the band by ``s -> (s**2 + W1 W2) / ((W2 - W1) s)``, and to the digital clock by
    the bilinear transform, which is exact on the frequency axis: ``s = j tan(pi f / fs)``.
    Written out so that a grade does not import ``scipy.signal`` for one filter (0.5-0.6 s
    of every cold CLI grade, docs/performance.md); ``tests/test_spectra.py`` checks it
    against scipy's own design.

    Parameters
    ----------
    freqs_hz : np.ndarray
        Frequencies, Hz, 0 to ``sample_rate_hz / 2``.
    sample_rate_hz : int
    band_hz : (low, high)
        The -3 dB edges, Hz.
    order : int
        The prototype's order (the band-pass has twice as many poles).

    Returns
    -------
    np.ndarray, complex
        The response (gain 0 to 1, and phase) at each frequency.
    """
    warp = np.tan(np.pi * np.asarray(freqs_hz, dtype=np.float64) / sample_rate_hz)
    w1, w2 = (np.tan(np.pi * f / sample_rate_hz) for f in band_hz)
    poles = np.exp(1j * np.pi * (2 * np.arange(order) + order + 1) / (2 * order))
    with np.errstate(divide="ignore", invalid="ignore"):
        s = 1j * (warp**2 - w1 * w2) / ((w2 - w1) * warp)
        response = np.ones_like(s)
        for pole in poles:
            response *= -pole / (s - pole)
    return np.where(warp > 0, response, 0.0)  # 0 Hz: none through


def _phone_band(y: np.ndarray) -> np.ndarray:
    """``y`` through a sharp telephone band: :func:`phone_band_response` applied block by block.

    Overlap-add: blocks of ``BAND_FFT_SIZE - pad`` samples, each zero-padded to
    ``BAND_FFT_SIZE``, filtered by multiplying spectra, their tails added onto the next. The
    padding (``BAND_PAD_S``), longer than the filter rings, keeps each block's circular
    convolution from wrapping its tail onto its start, so the output is that of the filter
    run sample by sample from rest (``sosfilt``) to float rounding, in memory proportional
    to the file and one block.
    """
    x = np.asarray(y, dtype=np.float64)
    size = BAND_FFT_SIZE
    step = size - int(BAND_PAD_S * RATE_HZ)
    response = _band_response(size)
    out = np.zeros(len(x) + size)
    for start in range(0, len(x), step):
        out[start : start + size] += np.fft.irfft(np.fft.rfft(x[start : start + step], size) * response, size)
    return out[: len(x)].astype(np.float32)


@functools.cache
def _band_response(size: int) -> np.ndarray:
    """:func:`phone_band_response` on the bins of a ``size``-point real FFT."""
    return phone_band_response(np.fft.rfftfreq(size, 1.0 / RATE_HZ))


def speech_runs(speech, duration_s: float) -> list[tuple[float, float]]:
    """The runs to embed: ``speech`` joined over gaps < ``RUN_JOIN_GAP_S``, cut to <= ``MAX_RUN_S``,
    those shorter than ``MIN_RUN_S`` dropped.  Times in s."""
    joined: list[list[float]] = []
    for s, e in sorted((max(0.0, float(s)), min(duration_s, float(e))) for s, e in speech):
        if e <= s:
            continue
        if joined and s - joined[-1][1] < RUN_JOIN_GAP_S:
            joined[-1][1] = max(joined[-1][1], e)
        else:
            joined.append([s, e])
    runs = []
    for s, e in joined:
        pieces = max(1, int(np.ceil((e - s) / MAX_RUN_S)))
        step = (e - s) / pieces
        runs += [(s + i * step, s + (i + 1) * step) for i in range(pieces)]
    return [(s, e) for s, e in runs if e - s >= MIN_RUN_S]


def embed_runs(samples: np.ndarray, sample_rate_hz: int, speech) -> VoiceRuns:
    """Speaker embeddings of the speech runs of ``samples``.

    Parameters
    ----------
    samples : np.ndarray, shape (n,)
        Mono float audio.
    sample_rate_hz : int
    speech : sequence of (start_s, end_s)
        Speech intervals on the clock of ``samples`` (tones already removed).

    Returns
    -------
    VoiceRuns
        Empty when no run holds enough voiced speech.
    """
    y = np.asarray(samples, dtype=np.float32)
    if sample_rate_hz != RATE_HZ:
        from ..audio import resample

        y = resample(y, sample_rate_hz, RATE_HZ)
    empty = VoiceRuns(np.zeros((0, 2)), np.zeros((0, EMBEDDING_DIM), np.float32))
    runs = speech_runs(speech, len(y) / RATE_HZ)
    if not runs:
        return empty
    voiced = voiced_frames(y, RATE_HZ)
    runs = [(s, e) for s, e in runs if voiced[int(s / FRAME_S) : int(e / FRAME_S)].mean() >= MIN_RUN_VOICED]
    if not runs:
        return empty
    speech_y = np.concatenate([y[int(s * RATE_HZ) : int(e * RATE_HZ)] for s, e in runs])
    rms = float(np.sqrt(np.mean(speech_y**2)))
    if rms > 0:
        y = y * (10 ** (SPEECH_LEVEL_DBFS / 20) / rms)
    # the encoder's input features, as Resemblyzer's wav_to_mel_spectrogram computes them
    mel = spectra.mel_power(_phone_band(y), RATE_HZ, n_fft=MEL_WINDOW_SAMPLES,
                            hop_length=int(RATE_HZ * FRAME_S), n_mels=MEL_BANDS)
    if len(mel) < WINDOW_FRAMES:
        mel = np.pad(mel, ((0, WINDOW_FRAMES - len(mel)), (0, 0)))
    step = int(round(WINDOW_HOP_S / FRAME_S))
    windows, owner = [], []
    for k, (s, e) in enumerate(runs):
        a, b = int(s / FRAME_S), int(e / FRAME_S)
        if b - a < WINDOW_FRAMES:  # a short run: one window centred on it
            a = int(np.clip((a + b) // 2 - WINDOW_FRAMES // 2, 0, len(mel) - WINDOW_FRAMES))
            b = a + WINDOW_FRAMES
        for i in range(a, b - WINDOW_FRAMES + 1, step):
            windows.append(mel[i : i + WINDOW_FRAMES])
            owner.append(k)
    vectors = encoder().embed(np.stack(windows))
    owner_arr = np.asarray(owner)
    means = np.stack([_unit(vectors[owner_arr == k].mean(axis=0)) for k in range(len(runs))])
    spans = np.asarray(runs, float)
    return VoiceRuns(spans, means.astype(np.float32), _RunPitch(y, spans))


def _split_two(
    vectors: np.ndarray, durations_s: np.ndarray, idx: np.ndarray, pitch: _RunPitch | None = None
) -> np.ndarray | None:
    """The top split of an average-linkage tree of the runs (labels 0/1), or None when one voice.

    ``idx``: the runs' indices in the whole recording (for ``pitch``).
    """
    n = len(vectors)
    if n < 2 * MIN_PARTY_RUNS:
        return None
    from scipy.cluster.hierarchy import fcluster, linkage

    distances = np.clip(1.0 - vectors @ vectors.T, 0.0, 2.0)
    tree = linkage(distances[np.triu_indices(n, 1)], method="average")
    labels = fcluster(tree, t=2, criterion="maxclust") - 1
    sides = [labels == k for k in (0, 1)]
    if any(np.sum(m) < MIN_PARTY_RUNS or durations_s[m].sum() < MIN_PARTY_S for m in sides):
        return None
    c0, c1 = (_unit((vectors[m] * durations_s[m, None]).sum(axis=0)) for m in sides)
    between = float(np.dot(c0, c1))
    cohesion = min(float(np.mean(vectors[m] @ c)) for m, c in zip(sides, (c0, c1)))
    if between < SAME_VOICE_MIN_SIMILARITY and cohesion - between >= SPLIT_MIN_GAP:
        return labels
    # a closer pair of voices stands only with pitch as a second, independent feature: two voices of one
    # synthesiser embed alike, but a man and a woman of it do not speak at one pitch
    closer = between < PITCH_SPLIT_MAX_SIMILARITY and cohesion - between >= PITCH_SPLIT_MIN_GAP
    if pitch is not None and closer:
        f0 = [pitch(idx[m]) for m in sides]
        if all(np.isfinite(f0)) and abs(np.log2(f0[0] / f0[1])) >= PITCH_SPLIT_MIN_OCT:
            return labels
    return None


def _clusters(vectors: np.ndarray, durations_s: np.ndarray, idx: np.ndarray, pitch: _RunPitch | None = None,
              depth: int = 0) -> np.ndarray:
    """Voice labels of the runs: split in two while a split stands (at most ``MAX_PARTIES`` voices)."""
    labels = np.zeros(len(vectors), int)
    split = _split_two(vectors, durations_s, idx, pitch) if depth < MAX_PARTIES - 1 else None
    if split is None:
        return labels
    offset = 0
    for k in (0, 1):
        sub_idx = np.flatnonzero(split == k)
        sub = _clusters(vectors[sub_idx], durations_s[sub_idx], idx[sub_idx], pitch, depth + 1)
        labels[sub_idx] = sub + offset
        offset += int(sub.max()) + 1
    return labels


@dataclass(frozen=True)
class Voices:
    """The distinct voices of a recording and when each speaks.

    Attributes
    ----------
    parties : int
        Distinct voices found.
    turns : tuple of (party, start_s, end_s)
        Consecutive runs of one party, merged; parties numbered by first appearance.
    party_speech_s : dict
        Speech per party, s.
    centroid_similarity : float or None
        Cosine similarity of the two largest parties' centroids (None with one).
    runs : int
        Runs analysed.
    """

    parties: int
    turns: tuple[tuple[int, float, float], ...]
    party_speech_s: dict = field(default_factory=dict)
    centroid_similarity: float | None = None
    runs: int = 0

    @property
    def switches(self) -> int:
        return max(0, len(self.turns) - 1)

    def taking_turns(self) -> bool:
        """Two or more voices alternating, each more than once: the evidence of a live conversation."""
        per_party = {p: sum(1 for q, _, _ in self.turns if q == p) for p in range(self.parties)}
        return (
            self.parties >= 2
            and self.switches >= MIN_SWITCHES
            and sum(1 for v in per_party.values() if v >= MIN_PARTY_TURNS) >= 2
        )

    def to_dict(self) -> dict:
        return {
            "method": "speaker_embeddings",
            "voices": self.parties,
            "switches": self.switches,
            "turns": [[p, round(s, 2), round(e, 2)] for p, s, e in self.turns],
            "party_speech_s": {str(k): round(v, 2) for k, v in self.party_speech_s.items()},
            "centroid_similarity": None if self.centroid_similarity is None
            else round(self.centroid_similarity, ROUND),
            "runs": self.runs,
        }


def voices(runs: VoiceRuns) -> Voices:
    """Group the runs into voices and read off the turns.

    Parameters
    ----------
    runs : VoiceRuns

    Returns
    -------
    Voices
        ``parties`` 0 when there is no run.
    """
    n = len(runs)
    if n == 0:
        return Voices(0, ())
    durations = runs.durations_s
    labels = _clusters(runs.vectors, durations, np.arange(n), runs.pitch)
    order: dict[int, int] = {}
    for k in labels:
        order.setdefault(int(k), len(order))
    party = np.array([order[int(k)] for k in labels])
    turns: list[list] = []
    for p, (s, e) in zip(party, runs.spans_s):
        if turns and turns[-1][0] == p:
            turns[-1][2] = float(e)
        else:
            turns.append([int(p), float(s), float(e)])
    speech = {int(p): float(durations[party == p].sum()) for p in np.unique(party)}
    sim = None
    if len(speech) >= 2:
        big = sorted(speech, key=speech.get, reverse=True)[:2]
        cents = [_unit((runs.vectors[party == p] * durations[party == p, None]).sum(axis=0)) for p in big]
        sim = float(np.dot(cents[0], cents[1]))
    return Voices(len(speech), tuple((p, s, e) for p, s, e in turns), speech, sim, n)


def similarity(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    """Cosine similarity of two unit vectors (None when either is missing)."""
    if a is None or b is None:
        return None
    return float(np.dot(a, b))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)
