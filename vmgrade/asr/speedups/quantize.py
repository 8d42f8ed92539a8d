"""Int8 vocabulary projection for openai-whisper's text decoder, exact where it decides.

Each decoding step multiplies the decoder state by the whole token-embedding
matrix (51,865 x 512 for the multilingual base model): 106 MB of fp32 weights
read per token. On a 2-core CPU that is about 13 ms of a 31-ms step, bound by
memory bandwidth, not arithmetic. Stored as int8 (one scale per token row) the
matrix is 26 MB and the product takes about 0.5 ms.

Int8 logits are approximations, so for every position the ``top_k`` highest
tokens, and every special and timestamp token, are recomputed in fp32 from the
original weights: the greedy or beam choice, whisper's timestamp rules and the
no-speech probability see exact values; only the softmax normaliser counts the
remaining (improbable) tokens at int8 precision. ``bench/goals.py`` shows the
transcripts of the corpus unchanged and the time saved.

The rest of the decoder stays fp32: int8 there (dynamic activation
quantisation) moved the corpus WER by several words, and bf16 was slower than
fp32 for one token at a time. The encoder runs in bf16 where the CPU has AMX
(:mod:`vmgrade.asr.speedups.bf16`), else fp32 (docs/performance.md).
"""

from __future__ import annotations

import functools
import warnings

from ..weights import release_mapped_pages

# Tokens recomputed exactly at each position: at least the beam (+1 for
# whisper's beam search, which takes beam_size + 1 candidates per beam).
RESCORE_TOP_K = 16


def int8_vocab_decoder(decoder, first_special_token: int, top_k: int = RESCORE_TOP_K):
    """Wrap whisper's ``TextDecoder`` so its vocabulary projection runs in int8.

    Parameters
    ----------
    decoder : whisper.model.TextDecoder
        The fp32 decoder; its blocks are shared, not copied.
    first_special_token : int
        Token id of end-of-text: it and every id above it (language, task,
        no-speech and timestamp tokens) are always computed exactly.
    top_k : int
        Highest-scoring tokens per position recomputed exactly.

    Returns
    -------
    torch.nn.Module or None
        A drop-in decoder, or None where this torch build has no int8 CPU
        kernels (the caller keeps the fp32 decoder).
    """
    try:
        vocab = _int8_linear(decoder.token_embedding.weight)
    except (RuntimeError, AttributeError, NotImplementedError):
        return None
    wrapped = _int8_vocab_decoder_class()(decoder, vocab, first_special_token, top_k)
    release_vocab_pages(wrapped)
    return wrapped


def release_vocab_pages(decoder) -> None:
    """Let the kernel take back the fp32 token-embedding rows a decoder has read so far.

    With the int8 projection, decoding reads a few fp32 rows per step (the
    input tokens and the rescored ones), but over many files the rows read
    add up (46 MB of the 106 MB after three voicemails); released after the
    packing and after each transcription they cost a page fault when read
    again. A decoder without the int8 projection reads the whole matrix every
    step: nothing to release.
    """
    if type(decoder).__name__ == "Int8VocabDecoder":
        release_mapped_pages(decoder.token_embedding.weight)


def int8_decoders(decoder, first_special_token: int, top_k: int = RESCORE_TOP_K, *, draft: bool = True):
    """:func:`int8_vocab_decoder` and, with ``draft``, its :func:`int8_draft_decoder`, packed side by side.

    torch packs int8 weights on one core; building both at once takes the
    draft's share (about 0.3 s on 2 cores) off a cold start.

    Returns
    -------
    (decoder, draft)
        Either is None where it is not built: both where this torch build
        has no int8 CPU kernels, the draft when not asked for.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        draft_job = pool.submit(_draft_parts, decoder) if draft else None
        vocab_decoder = int8_vocab_decoder(decoder, first_special_token, top_k)
        try:
            parts = draft_job.result() if draft_job else None
        except (RuntimeError, NotImplementedError):  # no int8 CPU kernels, as for the vocabulary
            parts = None
    if vocab_decoder is None or parts is None:
        return vocab_decoder, None
    parts.project = vocab_decoder.project_int8
    return vocab_decoder, parts


def int8_draft_decoder(decoder):
    """A cheaper, approximate twin of an int8-vocabulary decoder: its blocks' linear layers in int8 too.

    Not exact (dynamic int8 activations moved the corpus WER by a few words),
    so it only proposes tokens that the exact decoder then checks
    (:func:`vmgrade.asr.speedups.textdecoder.forward` runs it). Embeddings, layer norms and
    the vocabulary are shared; only the int8 weights (a quarter of the
    blocks' fp32 size) are new.

    Parameters
    ----------
    decoder : torch.nn.Module
        What :func:`int8_vocab_decoder` returned.
    """
    draft = _draft_parts(decoder)
    draft.project = decoder.project_int8
    return draft


def _draft_parts(decoder):
    """:func:`int8_draft_decoder` without its vocabulary projection."""
    from types import SimpleNamespace as Parts

    import torch

    int8 = _int8_linear_module_class()

    def linear(layer):
        layer = getattr(layer, "inner", layer)  # under a last-call memo
        return int8(_int8_linear(layer.weight, layer.bias))

    def attention(attn):
        return Parts(query=linear(attn.query), key=linear(attn.key), value=linear(attn.value),
                     out=linear(attn.out), n_head=attn.n_head)

    def self_attention(attn):
        # queries, keys and values in one int8 product: rows are quantised one by one and the
        # input once, so each third is what its own layer gives, for one call instead of three
        parts = [getattr(m, "inner", m) for m in (attn.query, attn.key, attn.value)]
        bias = [p.bias if p.bias is not None else torch.zeros(p.weight.shape[0]) for p in parts]
        qkv = int8(_int8_linear(torch.cat([p.weight for p in parts]), torch.cat(bias)))
        # key and value only name this layer's entries in a decoding cache (textdecoder.KVCache)
        return Parts(qkv=qkv, key=("keys", qkv), value=("values", qkv), out=linear(attn.out),
                     n_head=attn.n_head)

    blocks = [
        Parts(attn=self_attention(b.attn), attn_ln=b.attn_ln, cross_attn=attention(b.cross_attn),
              cross_attn_ln=b.cross_attn_ln, mlp_ln=b.mlp_ln,
              mlp=torch.nn.Sequential(linear(b.mlp[0]), b.mlp[1], linear(b.mlp[2])))
        for b in decoder.blocks
    ]
    return Parts(token_embedding=decoder.token_embedding, positional_embedding=decoder.positional_embedding,
                 blocks=blocks, ln=decoder.ln, audio_heads_dtype=draft_attention_dtype())


def draft_attention_dtype():
    """The dtype the draft's cross-attention reads the window's keys and values in.

    A draft step is bound by reading them (:data:`vmgrade.asr.speedups.speculative.DRAFT_AUDIO_POOL`).
    Stored split into heads and contiguous, in bf16 where the CPU multiplies bf16 in hardware
    (AMX: 9 MB a step instead of 18), else fp32. Only proposals depend on it; fp32 checks them.
    """
    import torch

    from .bf16 import cpu_has_native_bf16

    return torch.bfloat16 if cpu_has_native_bf16() else torch.float32


@functools.cache
def _int8_linear_module_class():
    import torch

    class Int8Linear(torch.nn.Module):
        def __init__(self, packed):
            super().__init__()
            self.packed = packed

        def forward(self, x):
            return _int8_matmul(x, self.packed)

    return Int8Linear


def _int8_linear(weight, bias=None):
    """``weight`` (out x in) as int8 with one scale per row, packed for torch's dynamic int8 matmul."""
    import torch

    w = weight.detach().float()
    scales = (w.abs().amax(dim=1) / 127).clamp(min=1e-12).double()
    with warnings.catch_warnings():
        # quantized tensors are marked deprecated in favour of the torchao
        # package, but their CPU kernels are in the pinned torch.
        warnings.simplefilter("ignore")
        zero_points = torch.zeros(len(scales), dtype=torch.long)
        qweight = torch.quantize_per_channel(w, scales, zero_points, 0, torch.qint8)
        packed = torch.ops.quantized.linear_prepack(qweight, None if bias is None else bias.detach().float())
        _int8_matmul(torch.zeros(1, w.shape[1]), packed)  # fails here if the CPU engine is missing
    return packed


def _int8_matmul(x, packed):
    import torch

    # reduce_range: 7-bit activations, as torch's x86 engine needs without VNNI
    return torch.ops.quantized.linear_dynamic(x, packed, True)


@functools.cache
def _int8_vocab_decoder_class():
    import torch

    class Int8VocabDecoder(torch.nn.Module):
        """whisper's ``TextDecoder.forward``, with the final projection in int8 plus exact rescoring."""

        def __init__(self, decoder, vocab, first_special_token: int, top_k: int):
            super().__init__()
            # the same attributes as whisper's TextDecoder: kv-cache hooks and
            # word alignment reach into .blocks
            self.token_embedding = decoder.token_embedding
            self.positional_embedding = decoder.positional_embedding
            self.blocks = decoder.blocks
            self.ln = decoder.ln
            self.register_buffer("mask", decoder.mask, persistent=False)
            self.vocab_int8 = vocab
            n_vocab = decoder.token_embedding.weight.shape[0]
            exact_ids = torch.arange(first_special_token, n_vocab)
            self.register_buffer("exact_ids", exact_ids, persistent=False)
            # their rows, copied once (3 MB for base) rather than gathered every step
            self.register_buffer("exact_weight", decoder.token_embedding.weight[exact_ids].detach().clone(),
                                 persistent=False)
            self.top_k = top_k

        def forward(self, x, xa, kv_cache=None):
            offset = next(iter(kv_cache.values())).shape[1] if kv_cache else 0
            x = self.token_embedding(x) + self.positional_embedding[offset : offset + x.shape[-1]]
            x = x.to(xa.dtype)
            for block in self.blocks:
                x = block(x, xa, mask=self.mask, kv_cache=kv_cache)
            return self.project(self.ln(x).float())

        def project(self, x):
            """Logits from the final normalised states ``x`` (batch, positions, n_state)."""
            return self.rescore(x, self.project_int8(x))

        def project_int8(self, x):
            """Int8 logits alone, none recomputed: good enough for a draft that fp32 checks."""
            return _int8_matmul(x, self.vocab_int8)

        def rescore(self, x, logits):
            """Replace the top-k and the special tokens' int8 logits with fp32 ones."""
            weight = self.token_embedding.weight
            top = logits.topk(self.top_k, dim=-1).indices  # (batch, positions, k)
            logits.scatter_(-1, top, torch.einsum("bpd,bpkd->bpk", x, weight[top]))
            logits[..., self.exact_ids] = x @ self.exact_weight.T
            return logits

    return Int8VocabDecoder
