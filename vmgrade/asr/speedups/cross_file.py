"""Cross-file batching: files transcribed at once in one process share decoder passes.

CTranslate2 on a CPU decodes one token at a time for one file at a time, and a step for
one file costs almost what a step for several does: on the 2-core host, greedy decoding of
two 23-s voicemails' windows took 1.54 s batched against 2.22-2.30 s one after the other
(1 thread; docs/performance.md, "Cross-file batching"). So when several threads transcribe
at once through one model, each keeps faster-whisper's own per-file loop (seeking,
thresholds, the hallucination-silence skip, word alignment) unchanged, and its model calls
(:meth:`generate` and :meth:`align`) meet at a :class:`Rendezvous`: once every thread
transcribing is waiting on one, their calls run as one batched call and each thread gets
its own row back. Encoding stays per file: batched encoder passes took as long per window
as single ones on this CPU (1.17 / 1.26 / 1.28 s at batch 1 / 2 / 4), and the encoder runs
on its own replica with every idle core.

A thread that is not transcribing (or the only one) calls straight through, so a single
file costs what it did. The shells run several files per process to use it
(:mod:`vmgrade.batch.workers`).

openai-whisper's draft-and-check decoding meets the same way (:class:`SharedDecoding`): the
proposals of every file's int8 draft run as one pass, and the fp32 checks as another, the
weights read once for all (docs/performance.md, "Cross-file batching").
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BATCHES_KEPT = 1000  # batch sizes remembered (Rendezvous.batches)


@dataclass
class _Call:
    """One thread's model call, waiting for its batch."""

    method: str
    key: tuple  # calls with equal keys can share a batch
    features: Any  # a CTranslate2 StorageView of batch size 1 (encoder output)
    rows: list  # the per-row argument: prompts (generate) or text tokens (align)
    kwargs: dict
    num_frames: list[int] = field(default_factory=list)  # align only
    done: bool = False
    result: Any = None
    error: BaseException | None = None


class Rendezvous:
    """Where the threads transcribing at once meet; a batch runs when all of them wait.

    ``join`` and ``leave`` (or :meth:`taking_part`) bracket a thread's transcription. A call
    made by a thread taking part waits until every thread taking part is waiting too (or has
    left), then one of them runs the waiting calls, grouped by method and arguments, one
    batched call a group. The model runs one batch at a time, so nothing else waits on it.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._members: set[int] = set()
        self._waiting: list[_Call] = []
        self._running = False
        # the sizes of the latest batched calls (tests and benchmarks read them); bounded, as a
        # web worker's child runs for days
        self.batches: deque[int] = deque(maxlen=BATCHES_KEPT)

    @contextmanager
    def taking_part(self) -> Iterator[None]:
        """Take part in batching for the duration of the ``with`` block."""
        self.join()
        try:
            yield
        finally:
            self.leave()

    def join(self) -> None:
        with self._cond:
            self._members.add(threading.get_ident())

    def leave(self) -> None:
        with self._cond:
            self._members.discard(threading.get_ident())
            self._cond.notify_all()  # those waiting may now be everyone

    def member(self) -> bool:
        """Whether the calling thread takes part."""
        with self._cond:
            return threading.get_ident() in self._members

    def others(self) -> int:
        """How many threads other than the calling one take part."""
        with self._cond:
            return len(self._members - {threading.get_ident()})

    def call(self, call: _Call, run: Callable[[list[_Call]], None]) -> Any:
        """Wait for ``call``'s batch and return its result (``run`` runs one group of calls)."""
        with self._cond:
            self._waiting.append(call)
            while not call.done:
                if not self._running and len(self._waiting) >= len(self._members):
                    batch, self._waiting = self._waiting, []
                    self._running = True
                    self._cond.release()
                    try:
                        for group in _groups(batch):
                            self.batches.append(len(group))
                            run(group)
                    finally:
                        self._cond.acquire()
                        self._running = False
                        self._cond.notify_all()
                else:
                    self._cond.wait()
        if call.error is not None:
            raise call.error
        return call.result


def _groups(calls: list[_Call]) -> list[list[_Call]]:
    groups: dict[tuple, list[_Call]] = defaultdict(list)
    for c in calls:
        groups[(c.method, c.key)].append(c)
    return list(groups.values())


def _key(kwargs: dict) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in kwargs.items()))


class BatchingWhisper:
    """A ``ctranslate2.models.Whisper`` whose :meth:`generate` and :meth:`align` batch across threads.

    Stands in for faster-whisper's ``WhisperModel.model``; every other attribute is the
    wrapped model's. Calls from a thread outside the :class:`Rendezvous`, and calls of more
    than one row, go straight through.

    Parameters
    ----------
    model : ctranslate2.models.Whisper
        The loaded model (on the CPU: encoder outputs are joined in numpy).
    rendezvous : Rendezvous
        Where the transcribing threads meet.
    """

    def __init__(self, model, rendezvous: Rendezvous):
        self._model = model
        self.rendezvous = rendezvous

    def __getattr__(self, name: str):
        return getattr(self._model, name)

    def generate(self, features, prompts, **kwargs):
        if len(prompts) != 1 or not self.rendezvous.member():
            return self._model.generate(features, prompts, **kwargs)
        # prompts of one length batch without padding questions
        call = _Call("generate", (len(prompts[0]),) + _key(kwargs), features, list(prompts), kwargs)
        return self.rendezvous.call(call, self._run)

    def align(self, features, start_sequence, text_tokens, num_frames, **kwargs):
        if len(text_tokens) != 1 or not self.rendezvous.member():
            return self._model.align(features, start_sequence, text_tokens, num_frames, **kwargs)
        frames = list(num_frames) if isinstance(num_frames, list | tuple) else [int(num_frames)]
        call = _Call("align", (tuple(start_sequence),) + _key(kwargs), features, list(text_tokens),
                     dict(kwargs, start_sequence=list(start_sequence)), frames)
        return self.rendezvous.call(call, self._run)

    def _run(self, group: list[_Call]) -> None:
        """Run one group of like calls as one batched call; a failed batch is retried call by call."""
        try:
            results = self._batched(group)
        except Exception:  # noqa: BLE001 - one bad row must cost only its own file
            for c in group:
                try:
                    c.result = self._batched([c])
                except Exception as exc:  # noqa: BLE001 - raised in the caller's thread
                    c.error = exc
                c.done = True
            return
        for c, r in zip(group, results, strict=True):
            c.result, c.done = [r], True

    def _batched(self, group: list[_Call]) -> list:
        import ctranslate2

        if len(group) == 1:
            features = group[0].features
        else:
            features = ctranslate2.StorageView.from_array(
                np.ascontiguousarray(np.concatenate([np.asarray(c.features) for c in group])))
        rows = [c.rows[0] for c in group]
        first = group[0]
        if first.method == "generate":
            return self._model.generate(features, rows, **first.kwargs)
        kwargs = dict(first.kwargs)
        start_sequence = kwargs.pop("start_sequence")
        frames = [c.num_frames[0] for c in group]
        return self._model.align(features, start_sequence, rows, frames, **kwargs)


class SharedDecoding:
    """openai-whisper's decoder passes of threads transcribing at once, run as one batched pass.

    The draft-and-check decoding (:mod:`vmgrade.asr.speedups.speculative`) of each file calls
    :meth:`forward`; the calls of every thread taking part meet at the :class:`Rendezvous` and
    run as one :func:`~vmgrade.asr.speedups.textdecoder.forward_many` per decoder (the draft's
    proposals together, the checks together). Passes that hook the decoder's modules
    (whisper's own decoding, word alignment) or run it whole (the filler probe) hold
    :attr:`turns`, which a batch holds too.

    Parameters
    ----------
    rendezvous : Rendezvous
        Where the transcribing threads meet.
    """

    def __init__(self, rendezvous: Rendezvous):
        self.rendezvous = rendezvous
        self.turns = threading.RLock()

    def forward(self, decoder, tokens: list[int], xa, cache):
        """:func:`~vmgrade.asr.speedups.textdecoder.forward`, batched with the other threads' calls."""
        from .textdecoder import fill_audio, forward

        if not self.rendezvous.member() or not self.rendezvous.others():
            with self.turns:  # alone: whisper's own path, as a single file always took
                return forward(decoder, tokens, xa, cache)
        with self.turns:  # here: this thread's memos hold its window's projections
            fill_audio(decoder, xa, cache)
        call = _Call("forward", (id(decoder),), xa, [list(tokens)], {"decoder": decoder, "cache": cache})
        return self.rendezvous.call(call, self._run)

    def _run(self, group: list[_Call]) -> None:
        """Run one decoder's calls as one pass; a failed pass is retried call by call."""
        from .textdecoder import forward_many

        decoder = group[0].kwargs["decoder"]
        with self.turns:
            try:
                results = forward_many(decoder, [(c.rows[0], c.features, c.kwargs["cache"]) for c in group])
            except Exception:  # noqa: BLE001 - one bad row must cost only its own file
                for c in group:
                    try:
                        c.result = forward_many(decoder, [(c.rows[0], c.features, c.kwargs["cache"])])[0]
                    except Exception as exc:  # noqa: BLE001 - raised in the caller's thread
                        c.error = exc
                    c.done = True
                return
        for c, r in zip(group, results, strict=True):
            c.result, c.done = r, True
