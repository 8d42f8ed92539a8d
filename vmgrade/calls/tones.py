"""Tone detection for call recordings: beeps, ringback, DTMF and other call-progress tones.

A telephone tone is one or two sinusoids held steady; speech is harmonic-rich
(a vowel spreads its energy over F0 and its harmonics) and glides in pitch.
Each frame of a long-window power spectrum (128 ms: 7.8 Hz bins, so 440 and
480 Hz are separate peaks) is summarised by its two strongest spectral peaks
and the share of the telephone band's energy they hold.  A frame whose single
peak holds most of the energy is a *single* tone; one whose two peaks do is a
*dual* tone.  Runs of such frames at a stable frequency become tone events,
named by their frequencies and length (:func:`detect_tones`).  Edges are then
refined on the 10 ms track of the tone's own band energy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..vad import POWER_FLOOR, power_spectrogram, sliding_frames

# --------------------------------------------------------------------------
# Constants (units in names)
# --------------------------------------------------------------------------
TONE_WINDOW_S = 0.128  # 7.8 Hz bins: resolves 440/480 Hz (US ringback) and 400/450 Hz (UK)
TONE_HOP_S = 0.020  # frame step of the tone track; edges are refined on the 10 ms VAD track
BAND_HZ = (80.0, 3400.0)  # the energy a tone must dominate, a voice's F0 included (not just > 300 Hz)
PEAK_SEARCH_HZ = (300.0, 2000.0)  # every tone we name lies here (beeps, ringback, DTMF, SIT)
EDGE_GUARD_HZ = 8.0  # a "peak" on the search range's edge is a slope (speech energy below 300 Hz)
PEAK_HALF_WIDTH_BINS = 3  # Hann main lobe is +-2 bins; +-3 also takes the leakage of a slight glide
SINGLE_SHARE = 0.80  # one peak holding >= 80% of the band: a near-pure tone (speech measured <= 0.62)
DUAL_SHARE = 0.80  # two peaks holding >= 80%, each >= DUAL_MIN_SHARE: a dual tone
DUAL_MIN_SHARE = 0.08  # the weaker tone of a pair (call-progress pairs are within 3 dB of each other)
MIN_TONE_DBFS = -50.0  # quieter frames are not examined (keeps silence and hiss out)
FREQ_JITTER = 0.015  # a run's frames stay within 1.5% of its median frequency (speech glides more)
FREQ_MATCH = 0.03  # named tones match within 3% (DTMF receivers accept 1.5%, reject 3.5%)
EDGE_DROP_DB = 12.0  # refined edges: where the tone's band energy falls this far below its median
TONE_SHARE = 0.92  # a run's median share: tones measured >= 0.97, speech runs <= 0.90 (docs/calls.md)
BEEP_SHARE = 0.97  # a lone tone must be purer still: held vowels of the greetings reached 0.954
TONE_SPREAD = 0.01  # a run's frequencies stay within 1% of their median (speech runs glide 2-8%)
MIN_UNNAMED_S = 0.5  # a tone matching no known one counts only when held this long
MIN_RUN_S = 0.06  # shorter tonal runs are ignored (a DTMF digit lasts >= 40 ms, usually 70-100 ms)
BEEP_HZ = (350.0, 1600.0)  # mailbox beeps: about 400-1,500 Hz
BEEP_MAX_SECOND_HARMONIC_DB = -40.0  # a beep's 2 x f (generated: < -97 dB); a held vowel's: -17 to -31 dB
BEEP_MAX_GLIDE = 0.002  # first third to last third of a beep, relative (generated: 0; held vowels >= 0.27%)
HARMONIC_BAND_HZ = 12.0  # +- this around f and 2f when comparing their energy
BEEP_DURATION_S = (0.12, 1.6)  # beeps last 0.15-1.5 s; the margin covers edge refinement
# shortest tone of each kind, s: vowels held on one pitch make tonal runs of up to ~0.15 s (docs/calls.md)
MIN_DURATION_S = {"beep": BEEP_DURATION_S[0], "ringback": 0.25, "dtmf": 0.04, "tone": 0.2}
UNNAMED = ("single", "dual", "harmonic")  # names of tones that match no known one

# Special information tones (ITU-T E.180/Q.35): three ascending segments of 274-380 ms from these
# bands (low and high variants), before an intercept announcement.
SIT_HZ = (913.8, 985.2, 1370.6, 1428.5, 1776.7)
SIT_MATCH = 0.03
SIT_MAX_GAP_S = 0.1
RINGBACK_PAIRS_HZ = {"ringback_us": (440.0, 480.0), "ringback_uk": (400.0, 450.0)}
PROGRESS_PAIRS_HZ = {"busy_reorder": (480.0, 620.0), "dial_tone": (350.0, 440.0)}
DTMF_ROWS_HZ = (697.0, 770.0, 852.0, 941.0)
DTMF_COLS_HZ = (1209.0, 1336.0, 1477.0, 1633.0)
DTMF_KEYS = ("123A", "456B", "789C", "*0#D")


@dataclass(frozen=True)
class Tone:
    """One detected tone event.

    Attributes
    ----------
    kind : str
        ``"beep"``, ``"ringback"``, ``"dtmf"`` or ``"tone"`` (other call-progress tones).
    start_s, end_s : float
        Refined edges, s.
    freqs_hz : tuple of float
        The one or two frequencies, Hz.
    name : str
        Finer name: ``ringback_us``, ``dtmf_5``, ``busy_reorder``, ``beep``, ``single``, ...
    """

    kind: str
    start_s: float
    end_s: float
    freqs_hz: tuple[float, ...]
    name: str = ""
    share: float = field(default=0.0, compare=False)  # median band share of the peak(s)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "name": self.name,
            "start_s": round(float(self.start_s), 3),
            "end_s": round(float(self.end_s), 3),
            "freqs_hz": [round(float(f), 1) for f in self.freqs_hz],
            "share": round(float(self.share), 3),
        }


# --------------------------------------------------------------------------
# Frame features
# --------------------------------------------------------------------------


def _interpolated_peak(log_power: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Sub-bin peak positions by a parabola through the log power at k-1, k, k+1."""
    rows = np.arange(len(k))
    a = log_power[rows, k - 1]
    b = log_power[rows, k]
    c = log_power[rows, k + 1]
    den = a - 2 * b + c
    delta = np.where(np.abs(den) > 1e-9, 0.5 * (a - c) / np.where(den == 0, 1, den), 0.0)
    return k + np.clip(delta, -0.5, 0.5)


def tone_spectrogram(y: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Hann-windowed power spectra (TONE_WINDOW_S long, TONE_HOP_S apart) up to the band's top.

    The :func:`vmgrade.vad.power_spectrogram` framing and scaling, with a float32
    ``scipy.fft`` (7x faster than ``numpy.fft`` at these sizes) and only the bins
    below ``BAND_HZ[1]`` kept.
    """
    import scipy.fft

    n_fft = int(round(TONE_WINDOW_S * sr))
    hop = int(round(TONE_HOP_S * sr))
    win = np.hanning(n_fft + 1)[:-1].astype(np.float32)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    top = int(np.searchsorted(freqs, BAND_HZ[1])) + PEAK_HALF_WIDTH_BINS + 1
    spec = scipy.fft.rfft(sliding_frames(y, n_fft, hop) * win, axis=1)[:, :top]
    power = spec.real**2 + spec.imag**2
    power *= 2.0 / (n_fft * float(np.sum(win**2)))
    return power.astype(np.float32, copy=False), freqs[:top]


def tone_features(y: np.ndarray, sr: int) -> dict[str, np.ndarray]:
    """Per-frame peak frequencies and band shares of the two strongest spectral peaks.

    Parameters
    ----------
    y : np.ndarray, mono float
    sr : int, Hz

    Returns
    -------
    dict of np.ndarray, one value per TONE_HOP_S frame
        ``f1_hz``, ``f2_hz`` (peak frequencies, Hz), ``share1`` (share of the
        band energy within +-3 bins of the strongest peak), ``share2`` (the
        same for the second peak), ``level_db`` (band level, dBFS) and
        ``times_s`` (frame centres, s).
    """
    power, freqs = tone_spectrogram(y, sr)
    bin_hz = float(freqs[1])
    band = (freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1])
    total = np.maximum(power[:, band].sum(axis=1), POWER_FLOOR)
    lo, hi = np.searchsorted(freqs, PEAK_SEARCH_HZ)
    search = power[:, lo:hi]
    w = PEAK_HALF_WIDTH_BINS
    # energy within +-w bins of every bin (a box sum), so each peak's share is one lookup
    csum = np.concatenate([np.zeros((len(power), 1), np.float32), np.cumsum(power, axis=1)], axis=1)
    idx = np.arange(lo, hi)
    box = csum[:, np.minimum(idx + w + 1, power.shape[1])] - csum[:, np.maximum(idx - w, 0)]
    k1 = np.argmax(search, axis=1)
    rows = np.arange(len(power))
    e1 = box[rows, k1]
    masked = search.copy()
    for d in range(-(w + 1), w + 2):  # the second peak lies outside the first one's lobe
        masked[rows, np.clip(k1 + d, 0, masked.shape[1] - 1)] = 0.0
    k2 = np.argmax(masked, axis=1)
    # the second box minus what it shares with the first (peaks 5 bins apart overlap by 2)
    ov_lo = np.maximum(k1, k2) - w + lo
    ov_hi = np.minimum(k1, k2) + w + 1 + lo
    overlap = np.where(
        ov_hi > ov_lo,
        csum[rows, np.clip(ov_hi, 0, power.shape[1])] - csum[rows, np.clip(ov_lo, 0, power.shape[1])],
        0.0,
    )
    e2 = box[rows, k2] - overlap
    log_power = np.log(np.maximum(power, POWER_FLOOR))
    f1 = _interpolated_peak(log_power, k1 + lo) * bin_hz
    f2 = _interpolated_peak(log_power, k2 + lo) * bin_hz
    return {
        "f1_hz": f1,
        "f2_hz": f2,
        "share1": e1 / total,
        "share2": e2 / total,
        "level_db": 10.0 * np.log10(total),
        "times_s": np.arange(len(power)) * TONE_HOP_S,
    }


# --------------------------------------------------------------------------
# Runs and naming
# --------------------------------------------------------------------------


def _match(freqs: tuple[float, float], pair: tuple[float, float]) -> bool:
    lo, hi = sorted(freqs)
    return abs(lo - pair[0]) <= FREQ_MATCH * pair[0] and abs(hi - pair[1]) <= FREQ_MATCH * pair[1]


def name_tone(freqs_hz: tuple[float, ...], duration_s: float) -> tuple[str, str]:
    """(kind, name) of a tone from its frequencies (Hz) and length (s)."""
    if len(freqs_hz) == 2:
        f = (float(freqs_hz[0]), float(freqs_hz[1]))
        if abs(f[1] / f[0] - round(f[1] / f[0])) < 0.02:
            return "tone", "harmonic"  # a tone and its overtone: a buzzer-like prompt tone
        for name, pair in RINGBACK_PAIRS_HZ.items():
            if _match(f, pair):
                return "ringback", name
        for name, pair in PROGRESS_PAIRS_HZ.items():
            if _match(f, pair):
                return "tone", name
        for r, row in enumerate(DTMF_ROWS_HZ):
            for c, col in enumerate(DTMF_COLS_HZ):
                if _match(f, (row, col)):
                    return "dtmf", f"dtmf_{DTMF_KEYS[r][c]}"
        return "tone", "dual"
    f = float(freqs_hz[0])
    if BEEP_HZ[0] <= f <= BEEP_HZ[1] and BEEP_DURATION_S[0] <= duration_s <= BEEP_DURATION_S[1]:
        return "beep", "beep"
    return "tone", "single"


def _runs(labels: np.ndarray, f1: np.ndarray, f2: np.ndarray) -> list[tuple[int, int]]:
    """[a, b) frame runs of one tonal label whose frequencies stay steady."""
    runs = []
    n = len(labels)
    i = 0
    while i < n:
        if labels[i] == 0:
            i += 1
            continue
        j = i + 1
        while (
            j < n
            and labels[j] == labels[i]
            and abs(f1[j] - f1[j - 1]) <= FREQ_JITTER * f1[j - 1]
            and (labels[i] == 1 or abs(f2[j] - f2[j - 1]) <= FREQ_JITTER * f2[j - 1])
        ):
            j += 1
        runs.append((i, j))
        i = j
    return runs


def _refine(a_s: float, b_s: float, freqs_hz, y: np.ndarray, sr: int, short) -> tuple[float, float]:
    """Tighten a run's edges on the 10 ms track of energy near its frequencies."""
    power, freqs, hop_s = short
    near = np.zeros(len(freqs), bool)
    for f in freqs_hz:
        near |= np.abs(freqs - f) <= 40.0
    track = 10.0 * np.log10(np.maximum(power[:, near].sum(axis=1), POWER_FLOOR))
    # the long window smears each edge by up to half its length
    pad = TONE_WINDOW_S / 2 + hop_s
    lo = max(0, int(round((a_s - pad) / hop_s)))
    hi = min(len(track), int(round((b_s + pad) / hop_s)) + 1)
    inner = track[int(round(a_s / hop_s)) : max(int(round(b_s / hop_s)), int(round(a_s / hop_s)) + 1)]
    if inner.size == 0 or hi <= lo:
        return a_s, b_s
    keep = track[lo:hi] >= float(np.median(inner)) - EDGE_DROP_DB
    on = np.flatnonzero(keep)
    if on.size == 0:
        return a_s, b_s
    return (lo + on[0] - 0.5) * hop_s, min(len(y) / sr, (lo + on[-1] + 0.5) * hop_s)


def detect_tones(
    y: np.ndarray, sr: int, short_spectrum: tuple[np.ndarray, np.ndarray, float] | None = None
) -> tuple[list[Tone], dict[str, np.ndarray]]:
    """Tone events in time order, and the frame features they came from.

    Parameters
    ----------
    y : np.ndarray, mono float
    sr : int, Hz
    short_spectrum : (power, freqs_hz, hop_s), optional
        The 10 ms VAD power spectrogram, reused to refine edges.

    Returns
    -------
    tones : list of Tone
    features : dict of np.ndarray (see :func:`tone_features`)
    """
    feats = tone_features(y, sr)
    if short_spectrum is None:
        power, freqs = power_spectrogram(y, sr)
        short_spectrum = (power, freqs, 0.010)
    tones: list[Tone] = []
    for run in tone_runs(feats):
        at_edge = any(
            f <= PEAK_SEARCH_HZ[0] + EDGE_GUARD_HZ or f >= PEAK_SEARCH_HZ[1] - EDGE_GUARD_HZ
            for f in run["freqs_hz"]
        )
        if at_edge or run["share"] < TONE_SHARE or run["spread"] > TONE_SPREAD:
            continue  # speech: harmonics share the energy, or the pitch glides
        freqs = run["freqs_hz"]
        a_s, b_s = run["start_s"], run["end_s"]
        s, e = _refine(a_s, b_s, freqs, y, sr, short_spectrum)
        kind, name = name_tone(freqs, e - s)
        if kind == "beep" and (run["share"] < BEEP_SHARE or _voice_like(y, sr, s, e, freqs[0])):
            continue  # a held vowel dominated by one harmonic (a high voice's second), or by its F0
        if e - s < (MIN_UNNAMED_S if name in UNNAMED else MIN_DURATION_S[kind]):
            continue  # shorter than any tone of that name: a held vowel's harmonics
        tones.append(Tone(kind, s, e, freqs, name, run["share"]))
    return _special_information(_merge(tones)), feats


def _special_information(tones: list[Tone]) -> list[Tone]:
    """Two or three lone tones in a row on the SIT frequencies (an intercept: "the number you have
    dialled...") are one call-progress signal, not beeps."""
    out = list(tones)
    for i in range(len(out) - 1):
        a, b = out[i], out[i + 1]
        if len(a.freqs_hz) == len(b.freqs_hz) == 1 and b.start_s - a.end_s <= SIT_MAX_GAP_S:
            fa, fb = a.freqs_hz[0], b.freqs_hz[0]
            if fa < fb and any(abs(fa - x) <= SIT_MATCH * x for x in SIT_HZ) and any(
                    abs(fb - x) <= SIT_MATCH * x for x in SIT_HZ):
                for k in (i, i + 1):
                    t = out[k]
                    out[k] = Tone("tone", t.start_s, t.end_s, t.freqs_hz, "sit", t.share)
    return out


def _voice_like(y: np.ndarray, sr: int, start_s: float, end_s: float, freq_hz: float) -> bool:
    """True when a lone tone has what no beep has: a second harmonic, or a glide over its length.

    A vowel sung or held on one pitch, its first formant on F0, can hold 98% of
    the band in one peak; but the glottal source still puts energy at 2 x F0
    (measured -17 to -31 dB on such vowels) and its pitch drifts (0.27-0.4%
    first third to last).  A generated beep has neither (2 x f below -97 dB,
    PCM or G.711; drift 0), and clipping adds odd harmonics, not the second.
    """
    seg = np.asarray(y[int(start_s * sr) : int(end_s * sr)], dtype=np.float64)
    if len(seg) < 64:
        return False
    n_fft = 1 << int(np.ceil(np.log2(len(seg) * 4)))
    power = np.abs(np.fft.rfft(seg * np.hanning(len(seg)), n_fft)) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)

    def band(centre_hz: float) -> float:
        m = np.abs(freqs - centre_hz) <= HARMONIC_BAND_HZ
        return float(power[m].sum()) + POWER_FLOOR

    if 2 * freq_hz < sr / 2 - HARMONIC_BAND_HZ:
        if 10 * np.log10(band(2 * freq_hz) / band(freq_hz)) >= BEEP_MAX_SECOND_HARMONIC_DB:
            return True
    third = len(seg) // 3

    def peak_hz(x: np.ndarray) -> float:
        n = 1 << int(np.ceil(np.log2(len(x) * 8)))
        p = np.abs(np.fft.rfft(x * np.hanning(len(x)), n))
        f = np.fft.rfftfreq(n, 1.0 / sr)
        m = np.abs(f - freq_hz) <= FREQ_MATCH * freq_hz
        return float(f[m][np.argmax(p[m])]) if m.any() else freq_hz

    glide = abs(peak_hz(seg[-third:]) - peak_hz(seg[:third])) / freq_hz
    return glide > BEEP_MAX_GLIDE


def tone_runs(feats: dict[str, np.ndarray]) -> list[dict]:
    """Runs of tonal frames with their median frequencies, share and frequency spread.

    ``spread`` is the largest relative deviation of a peak frequency from its
    run median over the run's inner frames (the edge frames mix tone and silence).
    """
    loud = feats["level_db"] >= MIN_TONE_DBFS
    s1, s2 = feats["share1"], feats["share2"]
    single = loud & (s1 >= SINGLE_SHARE)
    dual = loud & ~single & (s1 + s2 >= DUAL_SHARE) & (np.minimum(s1, s2) >= DUAL_MIN_SHARE)
    labels = np.where(single, 1, np.where(dual, 2, 0))
    # a dual tone's two peaks by frequency, not by strength: of two near-equal tones (ringback's
    # 440 + 480 Hz through a phone band) the stronger swaps from frame to frame
    f1, f2 = feats["f1_hz"], feats["f2_hz"]
    lo = np.where(labels == 2, np.minimum(f1, f2), f1)
    hi = np.where(labels == 2, np.maximum(f1, f2), f2)
    min_frames = max(1, int(round(MIN_RUN_S / TONE_HOP_S)))
    out = []
    for a, b in _runs(labels, lo, hi):
        if b - a < min_frames:
            continue
        inner = slice(a + 1, b - 1) if b - a > 3 else slice(a, b)
        tracks = [lo[inner]] if labels[a] == 1 else [lo[inner], hi[inner]]
        medians = [float(np.median(t)) for t in tracks]
        spread = max(float(np.max(np.abs(t - m))) / m for t, m in zip(tracks, medians))
        share = s1[inner] if labels[a] == 1 else s1[inner] + s2[inner]
        freqs = tuple(sorted(medians))
        out.append(
            {
                "start_s": a * TONE_HOP_S,
                "end_s": (b - 1) * TONE_HOP_S,
                "freqs_hz": freqs,
                "share": float(np.median(share)),
                "spread": spread,
            }
        )
    return out


def _merge(tones: list[Tone]) -> list[Tone]:
    """Join abutting pieces of one tone (a frame or two that missed the share split it)."""
    merged: list[Tone] = []
    for t in sorted(tones, key=lambda t: t.start_s):
        prev = merged[-1] if merged else None
        if (
            prev is not None
            and prev.name == t.name
            and t.start_s - prev.end_s <= 0.05
            and all(abs(p - q) <= FREQ_MATCH * p for p, q in zip(prev.freqs_hz, t.freqs_hz))
        ):
            freqs = prev.freqs_hz
            kind, name = (
                name_tone(freqs, t.end_s - prev.start_s)
                if prev.kind in ("beep", "tone")
                else (prev.kind, prev.name)
            )
            merged[-1] = Tone(kind, prev.start_s, t.end_s, freqs, name, prev.share)
        else:
            merged.append(t)
    return merged
