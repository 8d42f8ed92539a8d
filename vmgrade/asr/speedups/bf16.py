"""Whisper's encoder in bfloat16 on CPUs with native bf16 matrix units (Intel AMX).

The encoder's matrix products (1,500 frames x 512 x 2,048 for base) are most
of a 30-s window's encoding. Under ``torch.autocast`` they run in bfloat16
with fp32 accumulation, while layer norms, softmax and the output stay fp32,
as openai-whisper's own fp16 path on a GPU keeps its layer norms. On the
development machine's AMX cores the encoder took 0.14 s instead of 0.40 s
(2 threads); the encodings differ by 1.5% (relative norm); transcripts of
every sample were the same words, word starts moved by 1 ms on average
(at most 70 ms), and the corpus WER was the same (docs/performance.md).

Where the CPU has no bf16 matrix hardware, emulated bf16 would be slower than
fp32, so the encoder stays fp32 there (:func:`cpu_has_native_bf16`).
"""

from __future__ import annotations

import functools


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (AMX tiles), as torch reports it."""
    import torch

    try:
        return bool(torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):  # a torch without the query: assume not
        return False


def bf16_encoder(encoder):
    """Wrap a Whisper encoder so it runs under bf16 autocast and returns fp32 features."""
    # autocast keeps the bf16 copy of every weight that requires a gradient for the
    # whole call (40 MB for base); without that flag each copy lives for its own layer
    encoder.requires_grad_(False)
    store_products_in_bf16(encoder)
    return _bf16_class()(encoder)


def store_products_in_bf16(encoder) -> None:
    """Keep the encoder's linear and convolution weights and biases in bf16, once.

    Under autocast (and whisper's own ``weight.to(x.dtype)``) every call made these very
    bf16 copies again, reading the fp32 weights each window (80 MB for base): stored
    converted, the encodings are bit for bit the same. Layer norms and the positional
    embedding stay fp32, as autocast runs them. The fp32 pages of a memory-mapped
    checkpoint are handed back: the process holds 40 MB of bf16 instead of 80 of fp32.
    """
    import torch

    from ..weights import release_mapped_pages

    for module in encoder.modules():
        if not isinstance(module, (torch.nn.Linear, torch.nn.Conv1d)):
            continue
        for name in ("weight", "bias"):
            fp32 = getattr(module, name)
            if fp32 is None or fp32.dtype != torch.float32:
                continue
            setattr(module, name, torch.nn.Parameter(fp32.detach().to(torch.bfloat16), requires_grad=False))
            release_mapped_pages(fp32)


@functools.cache
def _bf16_class():
    import torch

    class Bf16Encoder(torch.nn.Module):
        """``inner`` under CPU bf16 autocast; its output cast back to fp32 for the decoder."""

        def __init__(self, inner: torch.nn.Module):
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return self.inner(x).float()

    return Bf16Encoder
