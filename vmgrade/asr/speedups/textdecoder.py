"""Whisper's text decoder over a key/value cache that can be cut back to a prefix.

whisper keeps its decoder's keys and values in forward hooks and assumes that
a pass over several tokens starts at position 0 (its causal mask is not
offset). Drafting and checking tokens (:mod:`vmgrade.asr.speedups.speculative`) and probing
alternatives at earlier positions (:mod:`vmgrade.asr.speedups.filler_probe`) need passes that
continue a cache, and caches cut back to a prefix: :func:`forward` runs the
same blocks and weights with the mask offset by the cached positions.
"""

from __future__ import annotations

import contextlib
import itertools


def turns_of(model):
    """The lock that ``model``'s decoder passes outside a batch hold (a no-op where it has none).

    Set as ``model.decoder_turns`` where several threads transcribe at once
    (:class:`vmgrade.asr.speedups.cross_file.SharedDecoding`): whisper's own decoding and its
    word alignment hook the shared modules, so they run one at a time.
    """
    turns = getattr(model, "decoder_turns", None)
    return turns if turns is not None else contextlib.nullcontext()


class KVCache:
    """Keys and values per attention projection: self-attention ones grow with the text, truncatable."""

    def __init__(self):
        self.text: dict = {}  # projection module -> (1, positions, n_state)
        self.audio: dict = {}
        self.length = 0

    def truncate(self, length: int) -> None:
        """Keep the first ``length`` text positions (the audio entries stay)."""
        self.restore(self.text, min(length, self.length))

    def restore(self, text: dict, length: int) -> None:
        """Take the first ``length`` positions of ``text`` (an earlier :attr:`text`) as the text entries."""
        self.text = {m: v[:, :length] for m, v in text.items()}
        self.length = length


def forward(decoder, tokens: list[int], xa, cache: KVCache):
    """Logits of ``decoder`` for ``tokens`` following the ``cache.length`` cached ones.

    whisper's own attention assumes a multi-token input starts at position 0
    (its causal mask is not offset), so continuing passes go through here:
    the same blocks and weights, with the mask offset by the cached positions.

    Parameters
    ----------
    decoder : torch.nn.Module
        whisper's ``TextDecoder``, a :mod:`vmgrade.asr.speedups.quantize` decoder, or its draft.
    tokens : list of int
        The new tokens (positions ``cache.length`` onwards).
    xa : torch.Tensor, shape (1, n_audio_ctx, n_audio_state)
        The window's encoding.
    cache : KVCache
        Extended in place by the new positions.

    Returns
    -------
    torch.Tensor, shape (1, len(tokens), n_vocab)
    """
    import torch

    offset, n = cache.length, len(tokens)
    ids = torch.tensor([tokens], device=xa.device)
    x = decoder.token_embedding(ids) + decoder.positional_embedding[offset : offset + n]
    x = x.to(xa.dtype)
    visible = torch.ones(n, offset + n, dtype=torch.bool, device=xa.device).tril(diagonal=offset)
    fill_audio(decoder, xa, cache)
    for block in decoder.blocks:
        attn = block.attn
        q, k, v = _self_projections(attn, block.attn_ln(x))
        k = _grow(cache.text, attn.key, k)
        v = _grow(cache.text, attn.value, v)
        x = x + attn.out(_attend(attn, q, k, v, visible))
        attn = block.cross_attn
        q = attn.query(block.cross_attn_ln(x))
        x = x + attn.out(_attend(attn, q, cache.audio[attn.key], cache.audio[attn.value], None))
        x = x + block.mlp(block.mlp_ln(x))
    cache.length = offset + n
    return _logits(decoder, x)


def fill_audio(decoder, xa, cache: KVCache) -> None:
    """Project the window's encoding ``xa`` to ``cache``'s cross-attention keys and values, once.

    :func:`forward` does this on a cache's first pass; a caller that hands its pass to
    :func:`forward_many` in another thread does it first, in its own thread, where its
    last-call memos hold its window's projections.
    """
    heads_dtype = getattr(decoder, "audio_heads_dtype", None)
    for block in decoder.blocks:
        attn = block.cross_attn
        if attn.key not in cache.audio:
            k, v = attn.key(xa), attn.value(xa)
            if heads_dtype is not None:  # the draft's own projections: stored as its attention reads them
                k, v = (_heads(t, attn.n_head).to(heads_dtype).contiguous() for t in (k, v))
            cache.audio[attn.key], cache.audio[attn.value] = k, v


def forward_many(decoder, calls: list[tuple[list[int], object, KVCache]]) -> list:
    """:func:`forward` for several ``(tokens, xa, cache)`` at once, the linear layers shared.

    A decoder step on a CPU is bound by reading the weights, and their products with every
    call's new positions side by side read them once. Attention stays per call: each has its
    own cached text and its own window. The caches must hold their audio keys and values
    (:func:`fill_audio`); each is extended only when the whole pass has succeeded.

    Returns
    -------
    list of torch.Tensor, shape (1, len(tokens), n_vocab)
        One per call, in order.
    """
    import torch

    counts = [len(tokens) for tokens, _, _ in calls]
    offsets = [cache.length for _, _, cache in calls]
    rows = [slice(end - n, end) for n, end in zip(counts, itertools.accumulate(counts))]
    xa0 = calls[0][1]
    ids = torch.tensor([[t for tokens, _, _ in calls for t in tokens]], device=xa0.device)
    positions = torch.cat([torch.arange(o, o + n) for o, n in zip(offsets, counts)]).to(xa0.device)
    x = (decoder.token_embedding(ids) + decoder.positional_embedding[positions]).to(xa0.dtype)
    masks = [torch.ones(n, o + n, dtype=torch.bool, device=xa0.device).tril(diagonal=o)
             for o, n in zip(offsets, counts)]
    texts = [dict(cache.text) for _, _, cache in calls]  # staged: the caches change at the end
    for block in decoder.blocks:
        attn = block.attn
        q, k, v = _self_projections(attn, block.attn_ln(x))
        out = []
        for r, text, mask in zip(rows, texts, masks):
            text[attn.key] = _joined(text.get(attn.key), k[:, r])
            text[attn.value] = _joined(text.get(attn.value), v[:, r])
            out.append(_attend(attn, q[:, r], text[attn.key], text[attn.value], mask))
        x = x + attn.out(torch.cat(out, dim=1))
        attn = block.cross_attn
        q = attn.query(block.cross_attn_ln(x))
        out = [_attend(attn, q[:, r], cache.audio[attn.key], cache.audio[attn.value], None)
               for r, (_, _, cache) in zip(rows, calls)]
        x = x + attn.out(torch.cat(out, dim=1))
        x = x + block.mlp(block.mlp_ln(x))
    logits = _logits(decoder, x)
    for (_, _, cache), text, o, n in zip(calls, texts, offsets, counts):
        cache.text, cache.length = text, o + n
    return [logits[:, r] for r in rows]


def _self_projections(attn, h):
    """Self-attention's queries, keys and values of ``h``: in one product where the layer has
    them side by side (the draft's ``qkv``: one int8 call instead of three), else three."""
    qkv = getattr(attn, "qkv", None)
    if qkv is None:
        return attn.query(h), attn.key(h), attn.value(h)
    return qkv(h).chunk(3, dim=-1)


def _logits(decoder, x):
    x = decoder.ln(x).float()
    if hasattr(decoder, "project"):  # vmgrade.asr.speedups.quantize's decoders
        return decoder.project(x)
    return x @ decoder.token_embedding.weight.to(x.dtype).T  # whisper's own TextDecoder


def _attend(attn, q, k, v, mask):
    """Attention of ``q`` (batch, positions, n_state) over ``k``, ``v``: the same shape, or already
    split into heads (batch, heads, positions, head size), in their own dtype (the draft's audio)."""
    import torch.nn.functional as F

    heads = attn.n_head
    if k.ndim == 3:
        k, v = _heads(k, heads), _heads(v, heads)
    a = F.scaled_dot_product_attention(_heads(q, heads).to(k.dtype), k, v, attn_mask=mask)
    return a.to(q.dtype).permute(0, 2, 1, 3).flatten(start_dim=2)


def _heads(t, heads: int):
    """(batch, positions, n_state) as (batch, heads, positions, head size), a view."""
    return t.view(*t.shape[:2], heads, -1).permute(0, 2, 1, 3)


def _joined(old, new):
    import torch

    return new if old is None else torch.cat([old, new], dim=1)


def _grow(store: dict, module, new):
    store[module] = _joined(store.get(module), new)
    return store[module]
