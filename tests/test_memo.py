"""Last-call memos on whisper's modules: a repeat is free, and never stale."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


def _counting_memo():
    from vmgrade.asr.speedups.memo import _memo_class

    calls = []

    class Double(torch.nn.Module):
        def forward(self, x):
            calls.append(x.shape)
            return x * 2

    return _memo_class()(Double()), calls


def test_a_repeat_of_the_same_input_runs_once_and_a_written_one_again():
    memo, calls = _counting_memo()
    x = torch.randn(1, 50, 8)
    first = memo(x)
    assert memo(x) is first
    assert memo(x[0][None]) is first  # a view of it with the same layout, as whisper passes
    assert memo(x.clone()) is first  # equal values elsewhere: compared, not recomputed
    assert len(calls) == 1

    x.add_(1.0)  # written in place: the remembered output no longer holds
    assert torch.equal(memo(x), x * 2)
    assert len(calls) == 2
    x[0, 0, 0] = 5.0  # through a view: the version counter is shared
    assert torch.equal(memo(x), x * 2)
    assert len(calls) == 3


def test_other_inputs_and_forgotten_calls_are_computed():
    memo, calls = _counting_memo()
    x = torch.randn(1, 50, 8)
    memo(x)
    assert torch.equal(memo(x[:, :25]), x[:, :25] * 2)  # same address, other shape
    assert torch.equal(memo(x + 1), (x + 1) * 2)
    memo.forget()
    assert not memo.holds()
    memo(x)
    assert len(calls) == 4
