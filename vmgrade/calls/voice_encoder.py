"""Resemblyzer's GE2E speaker encoder, run in numpy: speaker embeddings without importing torch.

The model is a 3-layer LSTM (40 mel bands in, 256 units) whose last hidden state goes
through a linear layer, a ReLU and an L2 norm (``resemblyzer.VoiceEncoder.forward``).
Its weights ship inside the pinned pip package ``resemblyzer==0.1.4`` (``pretrained.pt``,
17 MB; sha256 checked); nothing is downloaded.

Why numpy: the speaker check runs before the recogniser on every file, and under the
``ctranslate2`` engine nothing else needs torch, whose import took 1.0 s of a 3.6-s cold
CLI grade on the Xeon host (docs/performance.md). torch reads ``pretrained.pt`` once, on
the first use on a machine; the weights are then kept as ``.npz`` in the model cache,
named by the file's sha256, and later processes read them with numpy alone.

Where torch is loaded anyway (the ``openai-whisper`` engine), the same weights run on
torch's fused LSTM instead: on one thread (a batch worker's) it takes 0.12 s for a
23-s message's 40 windows where numpy's step-by-step products take 0.21 s; on two
threads numpy takes 0.13 s. Both give Resemblyzer's embeddings to float rounding
(``tests/test_voice_encoder.py``).
"""

from __future__ import annotations

import contextlib
import sys
import threading
from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..fileio import cache_dir, cached_arrays, remembered_hash

# --------------------------------------------------------------------------
# Constants (units in names)
# --------------------------------------------------------------------------
MODEL_PACKAGE = "resemblyzer"
MODEL_PIP = "resemblyzer==0.1.4"
WEIGHTS_FILE = "pretrained.pt"
WEIGHTS_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"
LAYERS = 3
MEL_BANDS = 40
HIDDEN = 256
EMBEDDING_DIM = 256
# Windows embedded at once (about 1 MB of gate inputs and outputs each): a 23-s message has about
# 40; a 10-min recording's 900 at once would hold 0.9 GB
EMBED_BATCH = 64
# Bumped when the cached file's layout changes: an old file is then converted again.
CACHE_VERSION = 1

_LOCK = threading.Lock()
_ENCODER: list = []


def model_path() -> Path | None:
    """The weights inside the installed package, or None when it is not installed (not imported)."""
    import importlib.util

    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / WEIGHTS_FILE
    return path if path.is_file() else None


def _expected_shapes() -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for layer in range(LAYERS):
        inputs = MEL_BANDS if layer == 0 else HIDDEN
        shapes[f"lstm.weight_ih_l{layer}"] = (4 * HIDDEN, inputs)
        shapes[f"lstm.weight_hh_l{layer}"] = (4 * HIDDEN, HIDDEN)
        shapes[f"lstm.bias_ih_l{layer}"] = (4 * HIDDEN,)
        shapes[f"lstm.bias_hh_l{layer}"] = (4 * HIDDEN,)
    shapes["linear.weight"] = (EMBEDDING_DIM, HIDDEN)
    shapes["linear.bias"] = (EMBEDDING_DIM,)
    return shapes


def _cached_weights(path: Path) -> dict[str, np.ndarray]:
    """The checkpoint's tensors as float32 arrays: from the model cache, else converted and kept there.

    ``path`` is checked against :data:`WEIGHTS_SHA256` (its hash remembered while the file is
    unchanged); the cache file is named by that hash, so every installation of the pinned
    package shares one. A missing, damaged or read-only cache only costs the conversion
    (about 1.5 s with torch's import).

    Raises
    ------
    ModelError
        ``model_corrupt``: the weights file is not the pinned one, or torch cannot read it.
    """
    try:
        digest = remembered_hash(path, cache_dir() / f"resemblyzer-{WEIGHTS_SHA256[:12]}.verified")
    except OSError as exc:
        raise ModelError(f"{path}: speaker-encoder weights unreadable ({exc}); reinstall: pip install "
                         f"--force-reinstall --no-deps {MODEL_PIP}", code="model_not_found") from exc
    if digest != WEIGHTS_SHA256:
        raise ModelError(f"{path}: speaker-encoder weights do not match the pinned {MODEL_PIP} "
                         f"(sha256 {digest[:12]}...); reinstall: pip install --force-reinstall --no-deps "
                         f"{MODEL_PIP}", code="model_corrupt")
    shapes = _expected_shapes()
    return cached_arrays(cache_dir() / f"resemblyzer-{WEIGHTS_SHA256[:16]}-v{CACHE_VERSION}.npz", shapes,
                         lambda: _convert(path, shapes))


def _convert(path: Path, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """The ``model_state`` of the (verified) checkpoint ``path``, read with torch (tensors only, no code)."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
        weights = {name: state[name].detach().numpy().astype(np.float32) for name in shapes}
    except (KeyError, RuntimeError, OSError) as exc:
        raise ModelError(f"{path}: speaker-encoder weights unreadable ({exc}); reinstall: pip install "
                         f"--force-reinstall --no-deps {MODEL_PIP}", code="model_corrupt") from exc
    for name, w in weights.items():
        if w.shape != shapes[name]:
            raise ModelError(f"{path}: speaker-encoder tensor {name} is {w.shape}, expected {shapes[name]}",
                             code="model_corrupt")
    return weights


class VoiceEncoder:
    """The GE2E encoder's forward pass in numpy (float32, on the CPU).

    Parameters
    ----------
    weights : dict of str to np.ndarray
        The PyTorch state dict's tensors (``lstm.weight_ih_l0`` ... ``linear.bias``).
    """

    _lock_numpy = threading.Lock()  # one pass at a time: each sets the process's BLAS pool and puts it back
    _lock_torch = threading.Lock()  # guards building the torch modules

    def __init__(self, weights: dict[str, np.ndarray]):
        self._weights = weights
        self._torch_model = None
        h = HIDDEN
        # PyTorch's gate order is (input, forget, cell, output); reordered to (i, f, o, g) so that the
        # three sigmoid gates are one slice, and their rows halved: sigmoid(x) = (1 + tanh(x / 2)) / 2,
        # so one tanh per step serves all four gates (and never overflows as exp does)
        order = np.r_[0 : 2 * h, 3 * h : 4 * h, 2 * h : 3 * h]
        scale = np.r_[np.full(3 * h, 0.5), np.ones(h)].astype(np.float32)
        self._layers = []
        for layer in range(LAYERS):
            w_ih = weights[f"lstm.weight_ih_l{layer}"][order] * scale[:, None]
            w_hh = weights[f"lstm.weight_hh_l{layer}"][order] * scale[:, None]
            bias = (weights[f"lstm.bias_ih_l{layer}"] + weights[f"lstm.bias_hh_l{layer}"])[order] * scale
            self._layers.append((np.ascontiguousarray(w_ih.T), np.ascontiguousarray(w_hh.T),
                                 bias.astype(np.float32)))
        self._linear_t = np.ascontiguousarray(weights["linear.weight"].T)
        self._linear_bias = weights["linear.bias"]

    def embed(self, mels: np.ndarray) -> np.ndarray:
        """Embeddings of a batch of mel windows.

        Parameters
        ----------
        mels : np.ndarray, shape (batch, frames, 40)
            Mel power spectrogram windows (Resemblyzer's input: 10-ms frames, 40 bands).

        Returns
        -------
        np.ndarray, shape (batch, 256), float32
            Non-negative, L2-normed embeddings (zero where the ReLU left nothing).
        """
        mels = np.asarray(mels, dtype=np.float32)
        if len(mels) > EMBED_BATCH:  # a long file: a batch at a time
            return np.concatenate([self.embed(mels[i : i + EMBED_BATCH])
                                   for i in range(0, len(mels), EMBED_BATCH)])
        if "torch" in sys.modules:  # loaded (or loading: the import below waits for it) by the recogniser
            return self._embed_torch(mels)
        with self._lock_numpy, _one_blas_thread():
            return self._embed_numpy(mels)

    def _embed_numpy(self, mels: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(np.swapaxes(np.asarray(mels, dtype=np.float32), 0, 1))  # time-major
        frames, batch, _ = x.shape
        h = np.zeros((batch, HIDDEN), np.float32)
        for w_ih_t, w_hh_t, bias in self._layers:
            inputs = (x.reshape(frames * batch, -1) @ w_ih_t).reshape(frames, batch, 4 * HIDDEN)
            h, x = self._run_layer(inputs, w_hh_t, bias)
        raw = np.maximum(h @ self._linear_t + self._linear_bias, 0.0)
        norm = np.linalg.norm(raw, axis=1, keepdims=True)
        return (raw / np.where(norm > 0, norm, 1.0)).astype(np.float32)

    @staticmethod
    def _run_layer(inputs: np.ndarray, w_hh_t: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One LSTM layer over time: its last hidden state and every step's (time-major)."""
        frames, batch, _ = inputs.shape
        hh = HIDDEN
        h = np.zeros((batch, hh), np.float32)
        c = np.zeros((batch, hh), np.float32)
        tanh_c = np.empty_like(c)
        gates = np.empty((batch, 4 * hh), np.float32)
        out = np.empty((frames, batch, hh), np.float32)
        for t in range(frames):
            np.matmul(h, w_hh_t, out=gates)
            gates += inputs[t]
            gates += bias
            np.tanh(gates, out=gates)
            sig = gates[:, : 3 * hh]  # (1 + tanh) / 2: the input, forget and output gates
            sig += 1.0
            sig *= 0.5
            c *= gates[:, hh : 2 * hh]
            c += gates[:, :hh] * gates[:, 3 * hh :]
            np.tanh(c, out=tanh_c)
            np.multiply(gates[:, 2 * hh : 3 * hh], tanh_c, out=h)
            out[t] = h
        return h, out

    def _embed_torch(self, mels: np.ndarray) -> np.ndarray:
        import torch

        with self._lock_torch:
            if self._torch_model is None:
                lstm = torch.nn.LSTM(MEL_BANDS, HIDDEN, LAYERS, batch_first=True)
                linear = torch.nn.Linear(HIDDEN, EMBEDDING_DIM)
                for module, prefix in ((lstm, "lstm."), (linear, "linear.")):
                    module.load_state_dict({name[len(prefix):]: torch.from_numpy(w)
                                            for name, w in self._weights.items() if name.startswith(prefix)})
                self._torch_model = (lstm.eval(), linear.eval())
        lstm, linear = self._torch_model
        with torch.inference_mode(), _one_torch_thread(torch):
            _, (hidden, _) = lstm(torch.from_numpy(mels))
            raw = torch.relu(linear(hidden[-1]))
            return (raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-30)).numpy()


@contextlib.contextmanager
def _one_blas_thread():
    """numpy's BLAS pool at one thread for the encoder's step-by-step products, then as it was.

    Two threads took 0.13 s for a 23-s message's windows on a quiet 2-core machine against
    0.21 s on one, but they wait on each other after each of its 480 small products: beside a
    model loading on the other core (a cold CLI grade) the check took 0.8-2.1 s on two.
    """
    from threadpoolctl import ThreadpoolController

    global _BLAS
    if _BLAS is None:
        _BLAS = ThreadpoolController()
    with _BLAS.limit(limits=1, user_api="blas"):
        yield


_BLAS = None


@contextlib.contextmanager
def _one_torch_thread(torch):
    """torch's pool at one thread for the encoder, then as it was.

    Its LSTM steps are a few small products each, too small to share: a 23-s message's runs
    took 165 ms on 2 threads and 112 ms on one (the Xeon host; docs/performance.md). A
    recogniser sets its own count again before it transcribes.
    """
    before = torch.get_num_threads()
    if before > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if before > 1:
            torch.set_num_threads(before)


def encoder() -> VoiceEncoder:
    """The speaker encoder, loaded once per process (thread-safe).

    Raises
    ------
    ModelError
        The package is missing (``model_not_found``) or its weights altered (``model_corrupt``).
    """
    with _LOCK:
        if not _ENCODER:
            path = model_path()
            if path is None:
                raise ModelError(f"the speaker encoder is not installed: pip install --no-deps {MODEL_PIP}",
                                 code="model_not_found")
            _ENCODER.append(VoiceEncoder(_cached_weights(path)))
        return _ENCODER[0]
