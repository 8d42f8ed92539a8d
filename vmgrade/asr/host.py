"""What this machine offers the recognisers: the CPU, the instruction sets that matter, the libraries.

Speed figures from two machines compare only with these beside them: the same code ran 1.5x
faster on one host and the faster-whisper yardstick 2.4x (issue 30). ``vmgrade models --info``
and ``bench/goals.py`` print them.

Instruction sets and the CPU's name are as the operating system gives them (``/proc/cpuinfo``;
elsewhere torch's own probes), the kernels as torch dispatches them. Nothing here loads a model.
"""

from __future__ import annotations

import importlib.util
import platform
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .threads import cpu_cores, idle_cores

# (name shown, /proc/cpuinfo flag, torch.cpu probe used where there is no cpuinfo): the instruction
# sets Whisper's kernels gain from: wide vectors, int8 dot products (VNNI), bf16, and matrix
# tiles (AMX).
ISA = (
    ("avx2", "avx2", "_is_avx2_supported"),
    ("avx512", "avx512f", "_is_avx512_supported"),
    ("avx512_vnni", "avx512_vnni", "_is_avx512_vnni_supported"),
    ("avx_vnni", "avx_vnni", None),
    ("avx512_bf16", "avx512_bf16", "_is_avx512_bf16_supported"),
    ("amx_bf16", "amx_bf16", "_is_amx_tile_supported"),
    ("amx_int8", "amx_int8", None),
)
CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class HostInfo:
    """The machine and the libraries that set the recognisers' speed.

    Attributes
    ----------
    cpu_model : str
        The CPU's name (``/proc/cpuinfo``, else :func:`platform.processor`).
    cores : int
        Cores this process may run on; ``idle_cores``: of those, how many the 1-minute load
        average leaves idle.
    isa : dict of str to bool
        Instruction sets (``avx2``, ``avx512``, ``avx512_vnni``, ``avx_vnni``, ``avx512_bf16``,
        ``amx_bf16``, ``amx_int8``): every one from ``/proc/cpuinfo``; elsewhere those torch can
        probe (none without torch).
    torch_version, torch_kernels : str
        torch's version and the CPU kernel level it dispatches to (``DEFAULT``, ``AVX2``,
        ``AVX512``, …).
    onednn_version : str or None
        The oneDNN (MKL-DNN) torch was built with.
    ctranslate2_version : str or None
        None when the ``fast`` extra is not installed; ``ctranslate2_compute_types``: the
        compute types it offers on this CPU (``int8``, ``int8_bfloat16``, …).
    blas : list of str
        The BLAS and OpenMP thread pools loaded (threadpoolctl): the package that ships each,
        the library, its version, the kernel architecture it picked, its threads.
    """

    cpu_model: str
    cores: int
    idle_cores: float
    isa: dict[str, bool] = field(default_factory=dict)
    torch_version: str | None = None
    torch_kernels: str | None = None
    onednn_version: str | None = None
    ctranslate2_version: str | None = None
    ctranslate2_compute_types: list[str] = field(default_factory=list)
    blas: list[str] = field(default_factory=list)
    quantized_engine: str | None = None

    def passes(self) -> list[str]:
        """Which kernels each pass of each engine runs on this host, as the loaders choose them.

        openai-whisper: the encoder in bf16 only on AMX (emulated bf16 is slower than fp32);
        the draft decoder and the vocabulary projection in int8 (torch's dynamic int8 matmul,
        VNNI dot products where the CPU has them), its cross-attention over the window in bf16 on
        AMX (:func:`vmgrade.asr.speedups.quantize.draft_attention_dtype`); the checks of the draft,
        the filler probe and word alignment in fp32 (openai-whisper's transcripts). ctranslate2:
        int8 throughout. The speaker check: fp32 under either engine.
        """
        vnni = self.isa.get("avx512_vnni") or self.isa.get("avx_vnni") or self.isa.get("amx_int8")
        int8 = (f"int8 (torch {self.quantized_engine or '?'} engine, "
                f"{'VNNI dot products' if vnni else 'no VNNI: 16-bit pair sums'})")
        amx_bf16 = "bf16 (oneDNN, AMX tiles)" if self.isa.get("amx_bf16") else None
        encoder = amx_bf16 or f"fp32 (torch's {self.torch_kernels or '?'} kernels)"
        draft_attention = amx_bf16 or "fp32"
        out = []
        if self.torch_version:
            out += [f"openai-whisper encoder: {encoder}",
                    f"openai-whisper draft decoder, vocabulary projection: {int8}",
                    f"openai-whisper draft's attention over the window: {draft_attention}",
                    "openai-whisper draft checks, filler probe, word alignment: fp32"]
        if self.ctranslate2_version:
            out.append("ctranslate2 encoder and decoder: int8 (CTranslate2 int8_float32 on the CPU)")
        # vmgrade.calls.voice_encoder: torch's fused LSTM where the recogniser has loaded torch
        out.append("speaker check: fp32, on torch's LSTM with openai-whisper, in numpy (one BLAS thread) "
                   "with ctranslate2")
        return out

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        """The facts as short ``name: value`` lines, for a terminal or a benchmark's header."""
        found = [name for name, present in self.isa.items() if present]
        if found:
            sets = ", ".join(found)
        else:
            sets = f"none of {', '.join(self.isa)}" if self.isa else "unknown (no torch)"
        lines = [f"cpu: {self.cpu_model}, {self.cores} cores ({self.idle_cores:.1f} idle)",
                 f"instruction sets: {sets}"]
        if self.torch_version:
            lines.append(f"torch {self.torch_version}: {self.torch_kernels} kernels, oneDNN "
                         f"{self.onednn_version or 'unknown'}")
        if self.ctranslate2_version:
            lines.append(f"ctranslate2 {self.ctranslate2_version}: "
                         f"{', '.join(self.ctranslate2_compute_types) or 'no CPU compute types'}")
        else:
            lines.append("ctranslate2: not installed (pip install \".[fast]\")")
        lines.extend(f"thread pool of {pool}" for pool in self.blas)
        lines.extend(f"kernels: {line}" for line in self.passes())
        return lines


def host_info() -> HostInfo:
    """What this machine offers: see :class:`HostInfo`. Imports torch (and ctranslate2 where installed)."""
    flags = cpu_flags()
    isa = {name: flag in flags for name, flag, _ in ISA} if flags is not None else {}
    torch_version, kernels, onednn, quantized = None, None, None, None
    try:
        import torch

        torch_version = torch.__version__
        quantized = torch.backends.quantized.engine
        kernels = torch.backends.cpu.get_cpu_capability()
        if flags is None:  # no /proc/cpuinfo (macOS, Windows): what torch can tell
            for name, _, probe in ISA:
                check = getattr(torch.cpu, probe, None) if probe else None
                if check is not None:
                    isa[name] = bool(check())
        found = re.search(r"(?:oneDNN|MKL-DNN) v([\d.]+)", torch.__config__.show())
        onednn = found.group(1) if found else None
    except ImportError:
        pass
    ct2_version, ct2_types = None, []
    if importlib.util.find_spec("ctranslate2") is not None:
        import ctranslate2

        ct2_version = ctranslate2.__version__
        ct2_types = sorted(ctranslate2.get_supported_compute_types("cpu"))
    return HostInfo(cpu_model=cpu_model(), cores=cpu_cores(), idle_cores=idle_cores(), isa=isa,
                    torch_version=torch_version, torch_kernels=kernels, onednn_version=onednn,
                    ctranslate2_version=ct2_version, ctranslate2_compute_types=ct2_types,
                    blas=_blas_pools(), quantized_engine=quantized)


def cpu_model(cpuinfo: Path = CPUINFO) -> str:
    """The CPU's name: the first ``model name`` of ``cpuinfo`` (Linux), else what Python knows."""
    return _cpuinfo_field(cpuinfo, "model name") or platform.processor() or platform.machine() or "unknown"


def cpu_flags(cpuinfo: Path = CPUINFO) -> set[str] | None:
    """The first CPU's ``flags`` in ``cpuinfo`` (Linux), or None where there is no such file."""
    flags = _cpuinfo_field(cpuinfo, "flags")
    return set(flags.split()) if flags is not None else None


def _cpuinfo_field(cpuinfo: Path, name: str) -> str | None:
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name and value.strip():
            return value.strip()
    return None


def _blas_pools() -> list[str]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    pools = []
    for pool in threadpool_info():
        details = [pool.get("internal_api"), pool.get("version"), pool.get("architecture")]
        shown = " ".join(str(d) for d in details if d)
        pools.append(f"{_package_of(pool.get('filepath') or '')}: {shown}, {pool.get('num_threads')} threads")
    return pools


def _package_of(library_path: str) -> str:
    """The installed package a shared library ships in (``numpy`` for ``…/numpy.libs/libopenblas.so``)."""
    parts = Path(library_path).parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts and parts.index(marker) + 1 < len(parts):
            return parts[parts.index(marker) + 1].removesuffix(".libs")
    return Path(library_path).name or "?"
