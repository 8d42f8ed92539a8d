"""Two-channel dialer exports and live conversations.

* :func:`pick_channel`: the rep's side of a two-channel export is the one that
  speaks after the beep (or, with no beep, the one whose speech comes later).
  Each 10 ms frame of speech is credited to the channel that is at least
  ``DOMINANCE_DB`` louder than the others, so the far end's echo of the rep
  (crosstalk, sidetone) does not count as the far end speaking.
* :func:`conversation_evidence`: two parties taking turns on two channels: the
  turns are the dominant channel's runs.  A voicemail has one party after the
  beep: at most a greeting, the message and a closing prompt, so two switches
  at most.  (One channel: voices by speaker embeddings, :mod:`vmgrade.calls.speakers`.)
"""

from __future__ import annotations

import numpy as np

from ..vad import HOP_S, POWER_FLOOR, detect_speech, power_spectrogram, voiced_frames
from .tones import detect_tones

# --------------------------------------------------------------------------
# Constants (units in names)
# --------------------------------------------------------------------------
ANALYSIS_RATE_HZ = 8000  # as the segmentation: tones and speech band fit below 4 kHz
DOMINANCE_DB = 6.0  # a frame belongs to a channel this much louder than the rest (echo is >= 10 dB down)
SAME_CORRELATION = 0.9  # channels this correlated carry the same audio: mix them
SILENT_DBFS = -55.0  # a channel whose loudest 10 ms frame is below this carries nothing
MIN_REP_SPEECH_S = 1.0  # the chosen channel must hold this much speech after the boundary
# A channel speaks when it holds this much voiced speech (VAD speech whose frames are voiced): line
# noise at -55 dBFS with -42 dBFS peaks, hiss and hum hold ~0; one short sentence holds > 1 s.
MIN_VOICED_SPEECH_S = 0.5
CLEAR_MARGIN = 2.0  # ... and this many times the other's
MIN_TURN_S = 0.4  # shorter runs are backchannels ("mm-hm") or blips, not turns
MIN_SWITCHES = 3  # A-B-A-B: a voicemail has greeting, message and at most a closing prompt
MIN_PARTY_TURNS = 2
MIN_PARTY_SPEECH_S = 2.0


def _prepare(channels: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    x = np.asarray(channels, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise ValueError(f"channels must have shape (n_channels, n), got {x.shape}")
    if sample_rate_hz == ANALYSIS_RATE_HZ:
        return x
    from ..audio import resample

    return np.stack([resample(np.ascontiguousarray(c), sample_rate_hz, ANALYSIS_RATE_HZ) for c in x])


def _band_levels_db(x: np.ndarray) -> np.ndarray:
    """(n_channels, n_frames) speech-band level, dBFS, on the 10 ms VAD frames."""
    out = []
    for c in x:
        power, freqs = power_spectrogram(c, ANALYSIS_RATE_HZ)
        band = (freqs >= 100.0) & (freqs <= 3400.0)
        out.append(10.0 * np.log10(np.maximum(power[:, band].sum(axis=1), POWER_FLOOR)))
    return np.stack(out)


def _correlation(x: np.ndarray) -> float:
    a, b = x[0] - x[0].mean(), x[1] - x[1].mean()
    den = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
    return float(np.dot(a, b) / den) if den > 0 else 1.0


def _mix_analysis(x: np.ndarray):
    """Speech mask of the mix with tones removed, the tones, and the last beep's end (or None)."""
    mix = x.mean(axis=0)
    power, freqs = power_spectrogram(mix, ANALYSIS_RATE_HZ)
    speech, _ = detect_speech(mix, ANALYSIS_RATE_HZ, vad="energy", power=power, freqs_hz=freqs)
    tones, _ = detect_tones(mix, ANALYSIS_RATE_HZ, (power, freqs, HOP_S))
    n = power.shape[0]
    mask = np.zeros(n, bool)
    times = np.arange(n) * HOP_S
    for s, e in speech:
        mask |= (times >= s) & (times < e)
    for t in tones:
        mask &= ~((times >= t.start_s - 0.03) & (times < t.end_s + 0.03))
    beeps = [t for t in tones if t.kind == "beep"]
    return mix, mask, times, tones, (beeps[-1].end_s if beeps else None)


def pick_channel(channels: np.ndarray, sample_rate_hz: int) -> tuple[int | None, dict]:
    """The rep's channel of a multi-channel recording, or None to mix.

    Parameters
    ----------
    channels : np.ndarray, shape (n_channels, n)
    sample_rate_hz : int

    Returns
    -------
    index : int or None
        The rep's channel; None when the file is mono, the channels carry the
        same audio, or neither side clearly holds the message.
    evidence : dict
        ``reason`` and the per-channel figures behind it.
    """
    x = _prepare(channels, sample_rate_hz)
    if x.shape[0] < 2:
        return None, {"reason": "mono"}
    if x.shape[0] == 2 and _correlation(x) >= SAME_CORRELATION:
        return None, {"reason": "same_audio", "correlation": round(_correlation(x), 3)}
    levels = _band_levels_db(x)
    peaks = levels.max(axis=1)
    live = [c for c in range(len(x)) if peaks[c] >= SILENT_DBFS]
    evidence: dict = {"peak_dbfs": [round(float(p), 1) for p in peaks]}
    if len(live) == 1:
        return live[0], {**evidence, "reason": "only_channel_with_sound"}
    if not live:
        return None, {**evidence, "reason": "silent"}
    # by speech, not energy: a side of line noise or hum is never the rep's, however loud
    voiced_s = [_voiced_speech_s(x[c]) if c in live else 0.0 for c in range(len(x))]
    evidence["voiced_speech_s"] = [round(v, 2) for v in voiced_s]
    talking = [c for c in live if voiced_s[c] >= MIN_VOICED_SPEECH_S]
    if len(talking) == 1:
        return talking[0], {**evidence, "reason": "only_channel_with_speech"}
    if not talking:
        return None, {**evidence, "reason": "no_speech"}
    _, mask, times, _, beep_end = _mix_analysis(x)
    n = min(levels.shape[1], len(mask))
    levels, mask, times = levels[:, :n], mask[:n], times[:n]
    dominant = _dominant(levels)
    speech_s = [float(np.sum(mask & (dominant == c)) * HOP_S) for c in range(len(x))]
    evidence["speech_s"] = [round(s, 2) for s in speech_s]
    if beep_end is not None:
        after = mask & (times >= beep_end)
        score = [float(np.sum(after & (dominant == c)) * HOP_S) for c in range(len(x))]
        evidence.update(beep_end_s=round(beep_end, 3), speech_after_beep_s=[round(s, 2) for s in score])
        reason = "speaks_after_beep"
    else:
        # no beep: the far end's greeting comes first, the rep's message after it
        centre = [
            float(np.median(times[mask & (dominant == c)])) if np.any(mask & (dominant == c)) else -1.0
            for c in range(len(x))
        ]
        evidence["speech_centre_s"] = [round(c, 2) for c in centre]
        best = int(np.argmax(centre))
        if speech_s[best] >= MIN_REP_SPEECH_S:
            return best, {**evidence, "reason": "speaks_last"}
        return None, {**evidence, "reason": "unclear"}
    order = np.argsort(score)[::-1]
    best, second = int(order[0]), int(order[1])
    if score[best] >= MIN_REP_SPEECH_S and score[best] >= CLEAR_MARGIN * score[second]:
        return best, {**evidence, "reason": reason}
    return None, {**evidence, "reason": "unclear"}


def _voiced_speech_s(y: np.ndarray) -> float:
    """Seconds of one channel that the VAD calls speech and whose frames are voiced."""
    power, freqs = power_spectrogram(y, ANALYSIS_RATE_HZ)
    speech, _ = detect_speech(y, ANALYSIS_RATE_HZ, vad="energy", power=power, freqs_hz=freqs)
    voiced = voiced_frames(y, ANALYSIS_RATE_HZ)
    times = np.arange(len(voiced)) * HOP_S
    in_speech = np.zeros(len(voiced), bool)
    for s, e in speech:
        in_speech |= (times >= s) & (times < e)
    return float(np.sum(in_speech & voiced) * HOP_S)


def _dominant(levels: np.ndarray) -> np.ndarray:
    """Per frame, the channel >= DOMINANCE_DB above every other, else -1."""
    best = np.argmax(levels, axis=0)
    top = levels.max(axis=0)
    others = np.where(np.arange(len(levels))[:, None] == best[None, :], -np.inf, levels).max(axis=0)
    return np.where(top - others >= DOMINANCE_DB, best, -1)


def _runs(labels: np.ndarray, times: np.ndarray) -> list[tuple[int, float, float]]:
    """(label, start_s, end_s) runs of labels >= 0, bridging unlabelled frames, short runs dropped."""
    idx = np.flatnonzero(labels >= 0)
    runs: list[list] = []
    for i in idx:
        lab, t = int(labels[i]), float(times[i])
        if runs and runs[-1][0] == lab:
            runs[-1][2] = t + HOP_S
        else:
            runs.append([lab, t, t + HOP_S])
    turns: list[list] = []
    for lab, s, e in runs:
        if e - s < MIN_TURN_S:
            continue
        if turns and turns[-1][0] == lab:
            turns[-1][2] = e
        else:
            turns.append([lab, s, e])
    return [(int(a), float(b), float(c)) for a, b, c in turns]


def conversation_evidence(channels: np.ndarray, sample_rate_hz: int) -> dict | None:
    """Evidence that a recording is a live conversation (two parties taking turns), else None.

    Parameters
    ----------
    channels : np.ndarray, shape (n_channels, n)
        The recording as decoded, two or more channels.
    sample_rate_hz : int

    Returns
    -------
    dict or None
        ``method`` (``"channels"``), ``turns`` [(party, start_s, end_s)],
        ``switches`` and per-party speech; None for a voicemail, a mono file or
        channels that carry the same audio.  Only speech after the last beep
        counts: a mailbox has one party there.
    """
    x = _prepare(channels, sample_rate_hz)
    if x.shape[0] < 2 or _correlation(x[:2]) >= SAME_CORRELATION:
        return None
    _, mask, times, _, beep_end = _mix_analysis(x)
    start_s = beep_end or 0.0
    levels = _band_levels_db(x)
    n = min(levels.shape[1], len(mask))
    labels = np.where(mask[:n] & (times[:n] >= start_s), _dominant(levels[:, :n]), -1)
    turns, evidence = _runs(labels, times[:n]), {"method": "channels"}
    switches = max(0, len(turns) - 1)
    parties = {lab for lab, _, _ in turns}
    per_party = {p: [e - s for lab, s, e in turns if lab == p] for p in parties}
    evidence.update(
        switches=switches,
        turns=[[lab, round(s, 2), round(e, 2)] for lab, s, e in turns],
        party_speech_s={str(p): round(sum(v), 2) for p, v in per_party.items()},
    )
    if beep_end is not None:
        evidence["after_beep_s"] = round(beep_end, 3)
    taking_turns = (
        switches >= MIN_SWITCHES
        and len(parties) >= 2
        and all(len(v) >= MIN_PARTY_TURNS and sum(v) >= MIN_PARTY_SPEECH_S for v in per_party.values())
    )
    return evidence if taking_turns else None
