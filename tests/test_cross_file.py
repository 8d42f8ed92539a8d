"""Cross-file batching (vmgrade.asr.speedups.cross_file): files transcribed at once share model calls."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import SAMPLES

from vmgrade.asr.speedups.cross_file import Rendezvous, _Call


def _call(row, key=("k",)) -> _Call:
    return _Call("generate", key, None, [row], {})


def _sums(runs: list[list[int]]):
    """A batched call that adds one to each row and records the batch's rows."""
    def run(group: list[_Call]) -> None:
        runs.append([c.rows[0] for c in group])
        for c in group:
            c.result, c.done = c.rows[0] + 1, True
    return run


def _in_threads(n: int, body) -> list:
    results: list = [None] * n
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, body(i))) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    return results


def test_calls_of_every_thread_taking_part_run_as_one_batch():
    rendezvous, runs = Rendezvous(), []
    arrived = threading.Barrier(3)

    def body(i: int) -> int:
        with rendezvous.taking_part():
            arrived.wait()  # all three take part before any calls
            return rendezvous.call(_call(i * 10), _sums(runs))

    assert _in_threads(3, body) == [1, 11, 21]
    assert len(runs) == 1 and sorted(runs[0]) == [0, 10, 20]
    assert list(rendezvous.batches) == [3]


def test_a_thread_still_working_is_waited_for_and_one_that_left_is_not():
    rendezvous, runs = Rendezvous(), []
    joined = threading.Barrier(3)

    def body(i: int) -> int | None:
        with rendezvous.taking_part():
            joined.wait()
            if i == 2:
                return None  # leaves without a call: the others must not wait for it
            if i == 1:
                time.sleep(0.3)  # busy between calls: thread 0 waits for it
            return rendezvous.call(_call(i), _sums(runs))

    assert _in_threads(3, body) == [1, 2, None]
    assert runs == [[0, 1]] or runs == [[1, 0]]


def test_unlike_calls_run_in_groups_of_their_own():
    rendezvous, runs = Rendezvous(), []
    joined = threading.Barrier(4)

    def body(i: int) -> int:
        with rendezvous.taking_part():
            joined.wait()
            return rendezvous.call(_call(i, key=("prompt length", i % 2)), _sums(runs))

    assert _in_threads(4, body) == [1, 2, 3, 4]
    assert sorted(sorted(r) for r in runs) == [[0, 2], [1, 3]]


def test_an_error_reaches_only_the_thread_whose_call_failed():
    rendezvous = Rendezvous()
    joined = threading.Barrier(2)

    def run(group: list[_Call]) -> None:
        for c in group:
            if c.rows[0] < 0:
                c.error = ValueError("bad row")
            else:
                c.result = c.rows[0]
            c.done = True

    def body(i: int):
        with rendezvous.taking_part():
            joined.wait()
            try:
                return rendezvous.call(_call(-1 if i else 5), run)
            except ValueError as exc:
                return str(exc)

    assert _in_threads(2, body) == [5, "bad row"]


def _alone_and_at_once(transcriber) -> list[tuple]:
    """Three samples' transcripts one at a time and in three threads at once, paired; the same texts."""
    from vmgrade.audio import load

    clips = [load(SAMPLES / name) for name in ("followup_phone.wav", "before_practice.wav",
                                                "strong_wideband.flac")]
    alone = [transcriber.transcribe(a) for a in clips]
    transcriber.rendezvous.batches.clear()
    together = _in_threads(3, lambda i: transcriber.transcribe(clips[i]))
    assert max(transcriber.rendezvous.batches) >= 2  # some calls did run batched
    assert [b.text for b in together] == [a.text for a in alone]
    return list(zip(alone, together, strict=True))


@pytest.mark.slow
def test_files_transcribed_at_once_read_as_they_do_alone(tiny):
    """Three samples in three threads: batched decoding and alignment, the same words and times."""
    for a, b in _alone_and_at_once(tiny):
        assert [(w.word, w.start, w.end) for w in b.words] == [(w.word, w.start, w.end) for w in a.words]
        assert [round(w.probability, 2) for w in b.words] == pytest.approx(
            [round(w.probability, 2) for w in a.words], abs=0.02)


@pytest.fixture(scope="module")
def tiny():
    pytest.importorskip("faster_whisper")
    from vmgrade.asr.transcribe import CTranslate2Transcriber, TranscribeOptions

    return CTranslate2Transcriber("tiny.en", TranscribeOptions(threads=1, initial_prompt=None))


@pytest.mark.slow
def test_a_batch_grading_files_at_once_gives_the_grades_of_one_at_a_time(tmp_path, tiny):
    """Four files, a worker process grading three at once then one, against one at a time here."""
    import json
    import shutil

    from vmgrade.batch import BatchOptions, run_batch
    from vmgrade.pipeline import GradeOptions, Grader

    calls = tmp_path / "calls"
    calls.mkdir()
    for name in ("followup_phone.wav", "before_practice.wav", "after_practice.wav", "rambling_phone.wav"):
        shutil.copy(SAMPLES / name, calls / name)
    options = GradeOptions(engine="ctranslate2", model="tiny.en", threads=1)

    def graded(out, grader=None, **kwargs) -> dict[str, tuple]:
        run = run_batch([calls], BatchOptions(out=out, history=False, progress=False, **kwargs),
                        echo=lambda _: None, grader=grader)
        assert run.graded == 4 and run.failed == 0
        rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
        return {r["file"]: (r["grade"], r["score"], r["transcript"]["text"])
                for r in rows}

    one_at_a_time = graded(tmp_path / "one", files_at_once=1,
                           grader=Grader(options, transcriber=tiny))
    in_a_worker = graded(tmp_path / "three", files_at_once=3, workers=1, grade=options)
    assert in_a_worker == one_at_a_time


@pytest.mark.slow
def test_openai_whisper_files_transcribed_at_once_read_as_they_do_alone(transcriber):
    """The default engine: three files in three threads share draft and check passes, same words."""
    for a, b in _alone_and_at_once(transcriber):
        assert [w.word for w in b.words] == [w.word for w in a.words]
        # the idle cores may differ between the runs, and the thread count with them
        times = [t for w in b.words for t in (w.start, w.end)]
        assert times == pytest.approx([t for w in a.words for t in (w.start, w.end)], abs=0.021)
        assert [w.probability for w in b.words] == pytest.approx([w.probability for w in a.words], abs=0.01)
