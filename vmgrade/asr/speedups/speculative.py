"""Greedy decoding with the exact fp32 result, fewer fp32 passes: an int8 draft proposes, fp32 checks.

On a CPU one decoding step of whisper's decoder is bound by reading its
weights (88 MB of fp32 blocks for base), and a pass over several tokens
reads them once. So an int8 copy of the decoder (22 MB, several times
faster a step, :func:`vmgrade.asr.speedups.quantize.int8_draft_decoder`) proposes up to
``DRAFT_TOKENS`` tokens, and one fp32 pass scores them all: each proposal is
kept while it is what fp32 greedy decoding would choose (whisper's logit
filters and greedy update applied to the fp32 logits at every position, so
timestamps, suppression and log-probabilities are whisper's own), and the
first disagreement is replaced by fp32's choice. The draft reads the
window's encoding at half its time resolution (:data:`DRAFT_AUDIO_POOL`),
which halves what its cross-attention reads. The decision rule is
whisper's greedy one on fp32 logits; only fp32 passes are saved. (Logits of
a several-token pass round differently in their last bits from one-token
passes, so average log-probabilities differ in the fourth decimal and a
near-exact tie could in principle go the other way; on the samples and the
corpus the transcripts are identical: tests/test_speculative.py, bench/goals.py.)

Only greedy decoding at temperature 0 of one window takes this path; beam
search and sampling use whisper's own decoder.
"""

from __future__ import annotations

import functools

import numpy as np

# Tokens the draft proposes per fp32 pass. The draft agrees with fp32 on most
# tokens, so long runs pay: on two samples 10 took 8% less time than 6, and
# 14-20 within the noise of 10 (a disagreement wastes the rest of a run).
DRAFT_TOKENS = 10
# The draft attends to the window's encoding averaged over this many adjacent
# positions (2: 750 of 40 ms instead of 1,500 of 20 ms). A draft step is
# bound by reading the cross-attention keys and values (36 MB a step for
# base); on three samples pairs kept as many proposals and took 4-20% off the
# transcription, while 3 and 4 cost extra fp32 passes. Transcripts stay fp32's.
DRAFT_AUDIO_POOL = 2


def decode(model, mel, options, *, draft, fallback, forward=None):
    """whisper's ``decode(model, mel, options)``, speculatively where that is exact.

    Parameters
    ----------
    model : whisper.Whisper
    mel : torch.Tensor, shape (n_mels, 3000)
    options : whisper.DecodingOptions
    draft : torch.nn.Module
        The approximate decoder proposing tokens.
    fallback : callable
        whisper's ``decode``, for what this does not cover.
    forward : callable, optional
        What runs a decoder pass, with :func:`vmgrade.asr.speedups.textdecoder.forward`'s
        signature (the default): :meth:`vmgrade.asr.speedups.cross_file.SharedDecoding.forward`
        batches it with other files'.
    """
    if mel.ndim != 2 or options.temperature != 0 or (options.beam_size or 1) != 1:
        return fallback(model, mel, options)
    return _task_class()(model, options, draft, forward).run(mel.unsqueeze(0))[0]


@functools.cache
def _task_class():
    import torch
    from whisper.decoding import DecodingTask

    from .textdecoder import KVCache, forward

    class SpeculativeDecodingTask(DecodingTask):
        """whisper's ``DecodingTask`` with a draft-and-check main loop (one window, greedy)."""

        def __init__(self, model, options, draft, forward_pass=None):
            super().__init__(model, options)
            self.draft = draft
            self.forward = forward_pass or forward

        def _main_loop(self, audio_features, tokens):
            n_ctx = self.model.dims.n_text_ctx
            sum_logprobs = torch.zeros(1, device=audio_features.device)
            no_speech_probs = [np.nan]
            seq = tokens[0].tolist()
            limit = len(seq) + self.sample_len  # whisper's loop adds at most sample_len tokens
            main, proposer = KVCache(), KVCache()
            with torch.no_grad():
                draft_features = torch.nn.functional.avg_pool1d(
                    audio_features.transpose(1, 2), DRAFT_AUDIO_POOL, ceil_mode=True
                ).transpose(1, 2)
                while True:
                    proposals = self._propose(seq, draft_features, proposer, limit)
                    main_done = main.length
                    logits = self.forward(self.model.decoder, (seq + proposals)[main_done:], audio_features,
                                          main)
                    if main_done == 0 and self.tokenizer.no_speech is not None:
                        probs_at_sot = logits[:, self.sot_index].float().softmax(dim=-1)
                        no_speech_probs = probs_at_sot[:, self.tokenizer.no_speech].tolist()
                    done = False
                    for i in range(len(proposals) + 1):
                        step = logits[:, len(seq) - 1 - main_done].clone()
                        prefix = torch.tensor([seq])
                        for logit_filter in self.logit_filters:
                            logit_filter.apply(step, prefix)
                        extended, completed = self.decoder.update(prefix, step, sum_logprobs)
                        seq.append(int(extended[0, -1]))
                        if completed or len(seq) > n_ctx or len(seq) >= limit:
                            done = True
                            break
                        if i == len(proposals) or seq[-1] != proposals[i]:
                            break  # fp32 disagreed (its token is kept) or every proposal was kept
                    if done:
                        break
                    # the last token is new to both caches; the ones before it are what they hold
                    main.truncate(len(seq) - 1)
                    proposer.truncate(len(seq) - 1)
            return torch.tensor([seq]), sum_logprobs, no_speech_probs

        def _propose(self, seq, audio_features, cache, limit) -> list[int]:
            """Up to DRAFT_TOKENS greedy tokens from the draft (whisper's filters applied)."""
            proposals: list[int] = []
            while len(proposals) < DRAFT_TOKENS and len(seq) + len(proposals) < limit:
                context = seq + proposals
                logits = self.forward(self.draft, context[cache.length:], audio_features, cache)[:, -1]
                for logit_filter in self.logit_filters:
                    logit_filter.apply(logits, torch.tensor([context]))
                proposals.append(int(logits.argmax(-1)))
                if proposals[-1] == self.tokenizer.eot:
                    break
            return proposals

    return SpeculativeDecodingTask
