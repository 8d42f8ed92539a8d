"""The speaker encoder in numpy (and on torch) against Resemblyzer's own, on the bundled speech."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from conftest import ROOT
from threadpoolctl import threadpool_info

from vmgrade import fileio
from vmgrade.audio import load, resample
from vmgrade.calls import spectra, voice_encoder
from vmgrade.calls.speakers import FRAME_S, MEL_BANDS, MEL_WINDOW_SAMPLES, RATE_HZ, WINDOW_FRAMES
from vmgrade.errors import ModelError
from vmgrade.fileio import CACHE_ENV

pytestmark = pytest.mark.skipif(voice_encoder.model_path() is None, reason="resemblyzer is not installed")


def _windows(name: str, count: int = 12) -> np.ndarray:
    """Mel windows of a bundled recording, as the speaker check feeds the encoder."""
    audio = load(ROOT / "samples" / name)
    y = np.asarray(audio.samples, dtype=np.float32)
    if audio.sample_rate != RATE_HZ:
        y = resample(y, audio.sample_rate, RATE_HZ).astype(np.float32)
    y *= 10 ** (-30 / 20) / np.sqrt(np.mean(y**2))
    mel = spectra.mel_power(y, RATE_HZ, MEL_WINDOW_SAMPLES, int(RATE_HZ * FRAME_S), MEL_BANDS)
    starts = np.linspace(0, len(mel) - WINDOW_FRAMES, count).astype(int)
    return np.stack([mel[i : i + WINDOW_FRAMES] for i in starts])


def _resemblyzers(windows: np.ndarray) -> np.ndarray:
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings():  # its audio module imports a SciPy namespace deprecated in 1.x
        warnings.simplefilter("ignore", DeprecationWarning)
        import resemblyzer

    model = resemblyzer.VoiceEncoder("cpu", verbose=False, weights_fpath=voice_encoder.model_path())
    with torch.inference_mode():
        return model(torch.from_numpy(windows)).numpy()


@pytest.mark.parametrize("name", ["before_practice.wav", "call_export_mulaw.wav"])
def test_the_embeddings_are_resemblyzers(name):
    windows = _windows(name)
    ref = _resemblyzers(windows)
    enc = voice_encoder.encoder()
    for ours in (enc._embed_numpy(windows), enc._embed_torch(windows), enc.embed(windows)):
        assert ours.shape == (len(windows), voice_encoder.EMBEDDING_DIM) and ours.dtype == np.float32
        np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-5)


def test_a_grading_process_embeds_without_torch():
    voice_encoder.encoder()  # the weights are in the model cache from here on
    code = ("import sys; from vmgrade.audio import load; from vmgrade.calls import segment_call; "
            "from vmgrade.calls.speakers import embed_runs; "
            f"a = load({str(ROOT / 'samples' / 'before_practice.wav')!r}); "
            "runs = embed_runs(a.samples, a.sample_rate, segment_call(a.samples, a.sample_rate).speech); "
            "print(len(runs.vectors), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    runs, torch_loaded = out.stdout.split()
    assert int(runs) > 0 and torch_loaded == "False"


def test_the_numpy_pass_leaves_the_blas_pool_as_it_was():
    windows = _windows("before_practice.wav", count=3)
    before = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    voice_encoder.encoder()._embed_numpy(windows)
    with voice_encoder._one_blas_thread():
        assert all(p["num_threads"] == 1 for p in threadpool_info() if p["user_api"] == "blas")
    assert [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"] == before


def test_the_weights_cache_is_written_reused_and_replaced_when_damaged(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    path = voice_encoder.model_path()
    first = voice_encoder._cached_weights(path)
    (cached,) = tmp_path.glob("resemblyzer-*.npz")
    stamp = cached.stat().st_mtime_ns
    again = voice_encoder._cached_weights(path)
    assert cached.stat().st_mtime_ns == stamp  # read, not written again
    assert all(np.array_equal(first[k], again[k]) for k in first)
    for damage in (b"not an npz", cached.read_bytes()[:1000]):  # garbage, and a torn zip
        cached.write_bytes(damage)
        assert all(np.array_equal(first[k], v) for k, v in voice_encoder._cached_weights(path).items())
    with np.load(cached) as npz:  # written again, whole
        assert set(first) <= set(npz.files)


def test_weights_that_are_not_the_pinned_ones_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    altered = tmp_path / "pretrained.pt"
    data = bytearray(voice_encoder.model_path().read_bytes())
    data[len(data) // 2] ^= 0xFF
    altered.write_bytes(bytes(data))
    with pytest.raises(ModelError) as err:
        voice_encoder._cached_weights(altered)
    assert err.value.code == "model_corrupt" and str(altered) in err.value.message


def test_a_weights_hash_is_remembered_while_the_file_is_unchanged(tmp_path, monkeypatch):
    weights, stamp = tmp_path / "weights.bin", tmp_path / "cache" / "weights.verified"
    weights.write_bytes(b"first")
    first = fileio.remembered_hash(weights, stamp)
    assert first == fileio.content_hash(weights) and stamp.is_file()

    def no_reading(path):
        raise AssertionError("hashed again")

    monkeypatch.setattr(fileio, "content_hash", no_reading)
    assert fileio.remembered_hash(weights, stamp) == first  # from the stamp
    monkeypatch.undo()
    weights.write_bytes(b"other")  # a changed file (size, mtime) is hashed again
    assert fileio.remembered_hash(weights, stamp) == fileio.content_hash(weights) != first
    stamp.write_text("garbage", encoding="utf-8")
    assert fileio.remembered_hash(weights, stamp) == fileio.content_hash(weights)


def test_more_windows_than_a_batch_embed_as_their_parts():
    windows = _windows("strong_wideband.flac", count=voice_encoder.EMBED_BATCH + 5)
    enc = voice_encoder.encoder()
    whole = enc.embed(windows)
    parts = np.concatenate([enc.embed(windows[:7]), enc.embed(windows[7:])])
    assert whole.shape == (len(windows), voice_encoder.EMBEDDING_DIM)
    np.testing.assert_allclose(whole, parts, rtol=0, atol=1e-6)
