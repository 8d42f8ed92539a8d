"""Filler words without the filler prompt's side effects on the other words.

Whisper leaves "um" and "uh" out of its transcripts unless its prompt contains
some, and a prompt that does also nudges other words: on the shared corpus it
raised the WER of openai-whisper base from 0.043 to 0.065 (clean) and from
0.071 to 0.096 (phone). So, per 30-s window:

1. decode without a prompt: the words plain openai-whisper writes;
2. one teacher-forced decoder pass with the filler prompt in front of those
   tokens gives, at every position, what the prompted model would say next;
   where that is a filler (directly, or after the comma or full stop it
   wants first), the filler is inserted there;
3. whisper's word alignment then times the inserted fillers like any word.

The pass costs one decoder forward over the window's tokens plus one
single-token step per comma probe, against a whole second decode for the
prompted transcript.
"""

from __future__ import annotations

from dataclasses import replace

from .textdecoder import KVCache, forward, turns_of

# Hesitations inserted (every casing and spacing that is one token).
FILLER_WORDS = ("um", "uh", "umm", "uhm", "hmm")
# The prompted model often writes a comma or full stop before a filler ("from, uh, Ledgerline").
PAUSE_MARKS = (",", ".")
# Teacher-forced passes per window at most: the second finds fillers the first
# one's made likely; a third found none on the samples or the corpus's
# disfluent clips (clean and phone).
MAX_PASSES = 2


def filler_token_ids(tokenizer) -> frozenset[int]:
    """Token ids that spell one filler word on their own."""
    ids = set()
    for word in FILLER_WORDS:
        for variant in (word, word.capitalize()):
            for spelling in (" " + variant, variant):
                encoded = tokenizer.encode(spelling)
                if len(encoded) == 1:
                    ids.add(encoded[0])
    return frozenset(ids)


def decode_with_fillers(model, mel, options, decode):
    """``decode(model, mel, options)`` without the prompt, then fillers placed by the prompted model.

    Parameters
    ----------
    model : whisper.Whisper
    mel : torch.Tensor, shape (n_mels, 3000)
        One 30-s window.
    options : whisper.DecodingOptions
        ``options.prompt`` (token ids or text) is the filler prompt; None
        decodes as usual.
    decode : callable
        whisper's ``decode`` function, or one with its signature
        (:func:`vmgrade.asr.speedups.speculative.decode`).

    Returns
    -------
    whisper.DecodingResult
        The unprompted result, with the inserted fillers in ``tokens`` and ``text``.
    """
    from whisper.tokenizer import get_tokenizer

    prompt = options.prompt
    result = decode(model, mel, replace(options, prompt=None))
    if not prompt or not result.tokens:
        return result
    language = result.language or options.language
    tokenizer = get_tokenizer(model.is_multilingual, num_languages=model.num_languages, language=language,
                              task=options.task)
    if isinstance(prompt, str):
        prompt = tokenizer.encode(" " + prompt.strip())
    with turns_of(model):  # its passes are whole windows, not batched with other files'
        tokens = insert_fillers(model, result.audio_features, list(prompt), list(result.tokens), tokenizer)
    if tokens == list(result.tokens):
        return result
    text = tokenizer.decode([t for t in tokens if t < tokenizer.eot])
    return replace(result, tokens=tokens, text=text)


def insert_fillers(model, audio_features, prompt: list[int], tokens: list[int], tokenizer) -> list[int]:
    """``tokens`` with a filler wherever the ``prompt``-ed model would say one next.

    Parameters
    ----------
    model : whisper.Whisper
    audio_features : torch.Tensor, shape (n_audio_ctx, n_audio_state)
        The window's encoding.
    prompt : list of int
        The filler prompt's tokens.
    tokens : list of int
        The unprompted decode (text and timestamp tokens, no start or end markers).
    tokenizer : whisper.tokenizer.Tokenizer

    Returns
    -------
    list of int
    """
    fillers = filler_token_ids(tokenizer)
    marks = {tokenizer.encode(m)[0] for m in PAUSE_MARKS}
    comma = tokenizer.encode(",")[0]
    prefix = [tokenizer.sot_prev, *prompt[-(model.dims.n_text_ctx // 2 - 1):], *tokenizer.sot_sequence]
    xa = audio_features[None].to(model.decoder.positional_embedding.dtype)
    cache = KVCache()  # its audio keys and values are computed in the first pass only
    # A filler makes the next more likely, as in a prompted decode, so look
    # again with the inserted ones in the context until no more appear.
    for _ in range(MAX_PASSES):
        if len(prefix) + len(tokens) + 3 * len(tokens) // 8 > model.dims.n_text_ctx:
            break
        insert = _filler_positions(model, xa, prefix, tokens, fillers, marks, tokenizer.eot, cache)
        if not insert:
            break
        out: list[int] = []
        for j, token in enumerate(tokens):
            if j in insert:
                # a comma after the filler when a word follows, as the prompted model writes it
                out += insert[j] + ([comma] if token < tokenizer.eot and token not in marks else [])
            out.append(token)
        tokens = out
    return tokens


def _filler_positions(model, xa, prefix, tokens, fillers, marks, eot, cache) -> dict[int, list[int]]:
    """``{j: tokens to insert before tokens[j]}`` from one teacher-forced pass (+ mark probes)."""
    import torch

    insert: dict[int, list[int]] = {}
    with torch.no_grad():
        cache.truncate(0)
        logits = forward(model.decoder, prefix + tokens, xa, cache)[0]
        full = cache.text
        choices = logits[len(prefix) - 1 : -1].argmax(-1).tolist()  # choices[j] predicts tokens[j]
        for j, (actual, choice) in enumerate(zip(tokens, choices)):
            recent = [i for i in range(max(0, j - 6), j) if tokens[i] < eot][-2:]  # the last two text tokens
            since = recent[0] if recent else j
            if (actual in fillers or any(tokens[i] in fillers for i in recent)
                    or any(k in insert for k in range(since, j))):
                continue  # a filler is already here (segment timestamps between do not count)
            if choice in fillers:
                insert[j] = [choice]
            elif choice in marks and choice != actual and actual < eot:
                # what would follow the mark? one step from the cached prefix
                cache.restore(full, len(prefix) + j)
                after = int(forward(model.decoder, [choice], xa, cache)[0, -1].argmax())
                if after in fillers:
                    insert[j] = [choice, after]
    return insert
