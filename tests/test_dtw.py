"""The numpy DTW against the recurrence it implements (whisper's ``dtw_cpu``, cell by cell)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SAMPLES

from vmgrade.asr.speedups.dtw import dtw


def reference_dtw(x: np.ndarray) -> np.ndarray:
    """whisper's kernel, written out in plain Python: float32 costs, strict comparisons, left on ties."""
    n, m = x.shape
    cost = np.full((n + 1, m + 1), np.inf, dtype=np.float32)
    trace = -np.ones((n + 1, m + 1), dtype=np.float32)
    cost[0, 0] = 0
    for j in range(1, m + 1):
        for i in range(1, n + 1):
            c0, c1, c2 = cost[i - 1, j - 1], cost[i - 1, j], cost[i, j - 1]
            if c0 < c1 and c0 < c2:
                c, t = c0, 0
            elif c1 < c0 and c1 < c2:
                c, t = c1, 1
            else:
                c, t = c2, 2
            cost[i, j] = x[i - 1, j - 1] + c
            trace[i, j] = t
    i, j = n, m
    trace[0, :], trace[:, 0] = 2, 1
    path = []
    while i > 0 or j > 0:
        path.append((i - 1, j - 1))
        t = trace[i, j]
        i, j = (i - 1, j - 1) if t == 0 else (i - 1, j) if t == 1 else (i, j - 1)
    return np.array(path[::-1]).T


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (4, 7), (30, 200)])
def test_same_path_as_the_recurrence(shape):
    x = np.random.default_rng(sum(shape)).standard_normal(shape)
    assert np.array_equal(dtw(x.copy()), reference_dtw(x.copy()))


def test_same_path_on_ties():
    """Equal costs everywhere, and costs rounded to few values: the tie-breaking decides."""
    assert np.array_equal(dtw(np.zeros((6, 15))), reference_dtw(np.zeros((6, 15))))
    x = np.round(np.random.default_rng(1).standard_normal((20, 90)), 1)
    assert np.array_equal(dtw(x.copy()), reference_dtw(x.copy()))


def test_path_follows_a_clear_diagonal():
    cost = np.ones((3, 6))
    for token, frames in enumerate([(0, 1), (2, 3), (4, 5)]):
        cost[token, list(frames)] = 0.0
    rows, cols = dtw(cost)
    assert list(rows) == [0, 0, 1, 1, 2, 2] and list(cols) == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("shape", [(8, 130, 1500), (3, 5, 40), (70, 3), (2, 4, 3), (33, 9)])
def test_block_median_filter_gives_whispers_values(shape):
    """Row blocks, whole-array: the same numbers (the filter works along each row alone)."""
    import torch

    from vmgrade.asr.speedups.dtw import median_filter, whisper_median_filter

    x = torch.from_numpy(np.random.default_rng(len(shape)).standard_normal(shape).astype(np.float32))
    x[..., ::5] = 0.25  # ties
    assert torch.equal(median_filter(x, 7), whisper_median_filter()(x, 7))


@pytest.mark.slow
def test_lean_alignment_pass_gives_whispers_word_timings(transcriber):
    """The alignment pass that keeps only the alignment heads: whisper's words, times and probabilities."""
    import torch
    import whisper
    from whisper.tokenizer import get_tokenizer

    from vmgrade.asr.speedups.dtw import find_alignment, whisper_find_alignment
    from vmgrade.audio import load

    model = transcriber.model
    tokenizer = get_tokenizer(model.is_multilingual, num_languages=model.num_languages)
    for name in ("followup_phone.wav", "strong_wideband.flac"):
        samples = load(SAMPLES / name).samples[: 30 * 16000]
        mel = whisper.log_mel_spectrogram(torch.from_numpy(whisper.pad_or_trim(samples)), model.dims.n_mels)
        tokens = tokenizer.encode(" " + transcriber.transcribe(load(SAMPLES / name)).text)
        num_frames = len(samples) // whisper.audio.HOP_LENGTH
        ours = find_alignment(model, tokenizer, tokens, mel, num_frames)
        theirs = whisper_find_alignment()(model, tokenizer, tokens, mel, num_frames)
        assert len(ours) == len(theirs) > 20
        assert [(w.word, w.tokens, w.start, w.end) for w in ours] == [
            (w.word, w.tokens, w.start, w.end) for w in theirs]
        assert [w.probability for w in ours] == pytest.approx([w.probability for w in theirs], abs=1e-4)
