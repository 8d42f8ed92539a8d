"""Dynamic time warping for whisper's word alignment, in numpy instead of numba.

openai-whisper aligns words to audio with a DTW over a (tokens x frames)
cost matrix, jitted by numba. Loading numba's compiled code, even from its
disk cache, first initialises numba's CPU target: about 0.6 s of every cold
start, for a kernel that runs in milliseconds. This version walks the matrix
by anti-diagonals (every cell of one depends only on the two before), so
each step is a few vector operations; on a 30-s window (about 130 tokens x
1,500 frames) it takes tens of milliseconds and gives the same path as
whisper's kernel: the same float32 costs, the same tie-breaking.
"""

from __future__ import annotations

import numpy as np

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


def use_numpy_dtw() -> None:
    """Make openai-whisper's word alignment use :func:`dtw` (idempotent)."""
    import whisper.timing

    whisper.timing.dtw_cpu = dtw
