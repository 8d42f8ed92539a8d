"""Whisper's text decoder over a key/value cache that can be cut back to a prefix.

whisper keeps its decoder's keys and values in forward hooks and assumes that
a pass over several tokens starts at position 0 (its causal mask is not
offset). Drafting and checking tokens (:mod:`vmgrade.asr.speedups.speculative`) and probing
alternatives at earlier positions (:mod:`vmgrade.asr.speedups.filler_probe`) need passes that
continue a cache, and caches cut back to a prefix: :func:`forward` runs the
same blocks and weights with the mask offset by the cached positions.
"""

from __future__ import annotations


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
    import torch.nn.functional as F

    offset, n = cache.length, len(tokens)
    ids = torch.tensor([tokens], device=xa.device)
    x = decoder.token_embedding(ids) + decoder.positional_embedding[offset : offset + n]
    x = x.to(xa.dtype)
    visible = torch.ones(n, offset + n, dtype=torch.bool, device=xa.device).tril(diagonal=offset)
    for block in decoder.blocks:
        layers = ((block.attn, block.attn_ln, None), (block.cross_attn, block.cross_attn_ln, xa))
        for attn, norm, source in layers:
            h = norm(x)
            q = attn.query(h)
            if source is None:
                k = _grow(cache.text, attn.key, attn.key(h))
                v = _grow(cache.text, attn.value, attn.value(h))
            else:
                if attn.key not in cache.audio:
                    cache.audio[attn.key], cache.audio[attn.value] = attn.key(source), attn.value(source)
                k, v = cache.audio[attn.key], cache.audio[attn.value]
            heads = attn.n_head
            q, k, v = (t.view(*t.shape[:2], heads, -1).permute(0, 2, 1, 3) for t in (q, k, v))
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=visible if source is None else None)
            x = x + attn.out(a.permute(0, 2, 1, 3).flatten(start_dim=2))
        x = x + block.mlp(block.mlp_ln(x))
    cache.length = offset + n
    x = decoder.ln(x).float()
    if hasattr(decoder, "project"):  # vmgrade.asr.speedups.quantize's decoders
        return decoder.project(x)
    return x @ decoder.token_embedding.weight.to(x.dtype).T  # whisper's own TextDecoder


def _grow(store: dict, module, new):
    import torch

    store[module] = new if module not in store else torch.cat([store[module], new], dim=1)
    return store[module]
