"""Whisper's word alignment made lighter: DTW in numpy instead of numba, the median filter in blocks.

openai-whisper aligns words to audio with a DTW over a (tokens x frames)
cost matrix, jitted by numba. Loading numba's compiled code, even from its
disk cache, first initialises numba's CPU target: about 0.6 s of every cold
start, for a kernel that runs in milliseconds. This version walks the matrix
by anti-diagonals (every cell of one depends only on the two before), so
each step is a few vector operations; on a 30-s window (about 130 tokens x
1,500 frames) it takes tens of milliseconds and gives the same path as
whisper's kernel: the same float32 costs, the same tie-breaking.

Before the DTW, whisper smooths the alignment heads' attention with a median
filter that sorts a 7-wide window around every cell at once: for a 30-s
window (8 heads x 130 tokens x 1,500 frames) that is about 130 MB of
temporary values and indices, the highest point of a whole grade's memory.
:func:`median_filter` runs whisper's own filter on blocks of rows (the filter
works along the frames of each row alone), so the values are the same and the
temporaries a few MB.

The pass that feeds them (:func:`find_alignment`) keeps only the attention of
the alignment heads and the probabilities of the tokens said: whisper's own
keeps every layer's cross-attention (6 layers x 8 heads x tokens x 1,500
frames for base) and a softmax over the whole vocabulary at every token, some
70-100 MB a window at the grade's highest point. The word times are the same.
"""

from __future__ import annotations

import functools

import numpy as np

# rows (head x token) smoothed per call of whisper's median filter: about 2 MB of temporaries
MEDIAN_BLOCK_ROWS = 32
# token rows per log-sum-exp in the alignment pass: 32 x 51,865 logits, about 7 MB of temporaries
LOGSUMEXP_BLOCK_ROWS = 32
# whisper's trace codes: which neighbour a cell's cheapest path came from
DIAGONAL, UP, LEFT = 0, 1, 2


def dtw(x: np.ndarray) -> np.ndarray:
    """The cheapest monotonic path through cost matrix ``x``, as whisper's ``dtw_cpu`` returns it.

    Parameters
    ----------
    x : np.ndarray, shape (n_tokens, n_frames)
        Alignment cost (whisper passes negated attention weights).

    Returns
    -------
    np.ndarray, shape (2, path_length), int
        Row 0: token indices, row 1: frame indices, from the start.
    """
    x = np.asarray(x, dtype=np.float64)
    n, m = x.shape
    cost = np.full((n + 1, m + 1), np.inf, dtype=np.float32)
    trace = np.full((n + 1, m + 1), -1, dtype=np.int8)
    cost[0, 0] = 0
    for d in range(2, n + m + 1):
        i = np.arange(max(1, d - m), min(n, d - 1) + 1)
        j = d - i
        c0, c1, c2 = cost[i - 1, j - 1], cost[i - 1, j], cost[i, j - 1]
        # strict comparisons, the left neighbour on ties: whisper's order
        diag = (c0 < c1) & (c0 < c2)
        up = ~diag & (c1 < c0) & (c1 < c2)
        step = np.where(diag, DIAGONAL, np.where(up, UP, LEFT))
        best = np.where(diag, c0, np.where(up, c1, c2))
        cost[i, j] = x[i - 1, j - 1] + best  # float64 sum rounded to float32, as numba stores it
        trace[i, j] = step
    return _backtrace(trace)


def _backtrace(trace: np.ndarray) -> np.ndarray:
    i, j = trace.shape[0] - 1, trace.shape[1] - 1
    trace[0, :] = LEFT
    trace[:, 0] = UP
    path = []
    while i > 0 or j > 0:
        path.append((i - 1, j - 1))
        step = trace[i, j]
        if step == DIAGONAL:
            i, j = i - 1, j - 1
        elif step == UP:
            i -= 1
        elif step == LEFT:
            j -= 1
        else:
            raise ValueError(f"DTW trace has no step at ({i}, {j})")
    return np.array(path[::-1]).T


def median_filter(x, filter_width: int):
    """whisper's ``median_filter`` over the last axis of ``x``, a block of rows at a time.

    Parameters
    ----------
    x : torch.Tensor, shape (..., n_frames)
        Rows to smooth, each on its own (whisper passes heads x tokens x frames).
    filter_width : int
        Odd window length, frames.

    Returns
    -------
    torch.Tensor
        The same values as ``whisper.timing.median_filter(x, filter_width)``.
    """
    import torch

    whole = whisper_median_filter()
    if x.is_cuda:
        if _has_triton():
            return whole(x, filter_width)  # whisper's GPU kernel
        return median_filter(x.cpu(), filter_width).to(x.device)  # without triton whisper's would fail
    if x.ndim < 2:
        return whole(x, filter_width)
    rows = x.reshape(-1, x.shape[-1])
    blocks = [whole(rows[i : i + MEDIAN_BLOCK_ROWS][None], filter_width)[0]
              for i in range(0, len(rows), MEDIAN_BLOCK_ROWS)]
    return torch.cat(blocks).reshape(x.shape) if blocks else x


_WHISPER_MEDIAN_FILTER: list = []  # whisper's own filter, kept when it is replaced
_WHISPER_FIND_ALIGNMENT: list = []  # and its own alignment pass


def whisper_median_filter():
    """openai-whisper's own ``median_filter``, replaced or not."""
    import whisper.timing

    return _WHISPER_MEDIAN_FILTER[0] if _WHISPER_MEDIAN_FILTER else whisper.timing.median_filter


def use_light_alignment() -> None:
    """Make openai-whisper's word alignment use :func:`dtw` and :func:`median_filter` (idempotent)."""
    import whisper.timing

    whisper.timing.dtw_cpu = dtw
    if not _has_triton():
        # on a GPU whisper tries its triton kernel first and fails on the import where triton is
        # not installed (the README installs openai-whisper without it): go straight to this one
        whisper.timing.dtw_cuda = lambda x: dtw(x.double().cpu().numpy())
    if not _WHISPER_MEDIAN_FILTER:
        _WHISPER_MEDIAN_FILTER.append(whisper.timing.median_filter)
        whisper.timing.median_filter = median_filter
        _WHISPER_FIND_ALIGNMENT.append(whisper.timing.find_alignment)
        whisper.timing.find_alignment = find_alignment


def whisper_find_alignment():
    """openai-whisper's own ``find_alignment``, replaced or not."""
    import whisper.timing

    return _WHISPER_FIND_ALIGNMENT[0] if _WHISPER_FIND_ALIGNMENT else whisper.timing.find_alignment


def find_alignment(model, tokenizer, text_tokens: list[int], mel, num_frames: int, *,
                   medfilt_width: int = 7, qk_scale: float = 1.0) -> list:
    """``whisper.timing.find_alignment``, holding only what its word timings are made of.

    The same decoder pass over the window's text, the same smoothing and DTW
    over the alignment heads' cross-attention; but a layer's attention is
    cut to its alignment heads as it comes out, and each token's probability
    is its logit against the row's log-sum-exp rather than a copy of the whole
    softmax. What decoding freed just before is handed back first: this pass
    is a grade's highest point of memory.

    Returns
    -------
    list of whisper.timing.WordTiming
        One per word (times in seconds from the window's start).
    """
    import torch
    from whisper.model import disable_sdpa
    from whisper.timing import TOKENS_PER_SECOND, WordTiming

    from ...memory import release_freed_memory
    from .textdecoder import turns_of

    if len(text_tokens) == 0:
        return []
    release_freed_memory()
    start = len(tokenizer.sot_sequence)
    tokens = torch.tensor([*tokenizer.sot_sequence, tokenizer.no_timestamps, *text_tokens, tokenizer.eot],
                          device=model.device)
    pairs = [tuple(p) for p in model.alignment_heads.indices().T.tolist()]  # (layer, head), whisper's order
    heads_of: dict[int, list[int]] = {}
    for layer, head in pairs:
        heads_of.setdefault(layer, []).append(head)
    kept: dict[int, torch.Tensor] = {}

    def keeper(layer: int):
        index = torch.tensor(heads_of[layer], device=model.device)
        # outs: (output, attention logits of shape (1, heads, tokens, frames)) with SDPA off
        return lambda _module, _inputs, outs: kept.__setitem__(layer, outs[-1][0].index_select(0, index))

    blocks = model.decoder.blocks
    # the hooks and disable_sdpa() reach every thread using the model: one pass at a time
    with turns_of(model):
        hooks = [blocks[layer].cross_attn.register_forward_hook(keeper(layer)) for layer in heads_of]
        try:
            with torch.no_grad(), disable_sdpa():
                logits = model(mel.unsqueeze(0), tokens.unsqueeze(0))[0]
                said = logits[start : start + len(text_tokens), : tokenizer.eot]
                chosen = said[torch.arange(len(text_tokens)), torch.tensor(text_tokens, device=said.device)]
                # in blocks of rows: a whole logsumexp would hold another copy of the logits
                norm = torch.cat([torch.logsumexp(said[i : i + LOGSUMEXP_BLOCK_ROWS], dim=-1)
                                  for i in range(0, len(said), LOGSUMEXP_BLOCK_ROWS)])
                text_token_probs = torch.exp(chosen - norm).tolist()
                del logits, said
        finally:
            for hook in hooks:
                hook.remove()

    weights = torch.stack([kept[layer][heads_of[layer].index(head)] for layer, head in pairs])
    kept.clear()
    weights = weights[:, :, : num_frames // 2]
    weights = (weights * qk_scale).softmax(dim=-1)
    std, mean = torch.std_mean(weights, dim=-2, keepdim=True, unbiased=False)
    weights = median_filter((weights - mean) / std, medfilt_width)
    matrix = weights.mean(axis=0)[start:-1]
    text_indices, time_indices = dtw(-matrix.double().cpu().numpy())

    words, word_tokens = tokenizer.split_to_word_tokens(text_tokens + [tokenizer.eot])
    if len(word_tokens) <= 1:  # the end-of-text token alone: no words
        return []
    bounds = np.pad(np.cumsum([len(t) for t in word_tokens[:-1]]), (1, 0))
    jumps = np.pad(np.diff(text_indices), (1, 0), constant_values=1).astype(bool)
    jump_times = time_indices[jumps] / TOKENS_PER_SECOND
    starts, ends = jump_times[bounds[:-1]], jump_times[bounds[1:]]
    probabilities = [np.mean(text_token_probs[i:j]) for i, j in zip(bounds[:-1], bounds[1:], strict=True)]
    return [WordTiming(*fields)
            for fields in zip(words, word_tokens, starts, ends, probabilities, strict=False)]


@functools.cache
def _has_triton() -> bool:
    import importlib.util

    return importlib.util.find_spec("triton") is not None
