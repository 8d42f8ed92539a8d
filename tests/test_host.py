"""What the machine offers the recognisers (``vmgrade models --info``, bench/goals.py's header)."""

from __future__ import annotations

import subprocess
import sys

import torch
from conftest import ROOT

from vmgrade.asr.host import ISA, cpu_flags, cpu_model, host_info
from vmgrade.asr.threads import cpu_cores


def test_host_info_reports_this_machine_as_torch_sees_it():
    info = host_info()
    assert info.cores == cpu_cores() and 0 <= info.idle_cores <= info.cores
    assert info.torch_version == torch.__version__
    assert info.torch_kernels == torch.backends.cpu.get_cpu_capability()
    flags = cpu_flags()
    if flags is not None:  # Linux: every instruction set, as the kernel lists them
        assert list(info.isa) == [name for name, _, _ in ISA]
        assert info.isa["avx2"] == ("avx2" in flags) == torch.cpu._is_avx2_supported()
    if "MKL-DNN v" in torch.__config__.show() or "oneDNN v" in torch.__config__.show():
        assert info.onednn_version and info.onednn_version[0].isdigit()
    assert any("numpy" in pool for pool in info.blas)  # numpy's BLAS is loaded by then
    lines = info.lines()
    assert lines[0].startswith(f"cpu: {info.cpu_model}, {info.cores} cores")
    assert any(line.startswith("instruction sets: ") for line in lines)
    assert info.to_dict()["isa"] == info.isa


def test_cpu_model_reads_cpuinfo_and_falls_back(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\n"
                       "model name\t: Intel(R) Xeon(R) Platinum 8480+\nflags\t\t: fpu amx_tile\n")
    assert cpu_model(cpuinfo) == "Intel(R) Xeon(R) Platinum 8480+"
    assert cpu_flags(cpuinfo) == {"fpu", "amx_tile"}
    assert cpu_model(tmp_path / "missing")  # no /proc: the platform's name, never empty
    assert cpu_flags(tmp_path / "missing") is None


def test_models_info_prints_the_host():
    done = subprocess.run([sys.executable, "-m", "vmgrade", "models", "--info"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "This machine:" in done.stdout and "instruction sets: " in done.stdout
    assert f"torch {torch.__version__}" in done.stdout


def test_the_kernels_each_pass_runs_follow_the_instruction_sets():
    from dataclasses import replace

    from vmgrade.asr.speedups.bf16 import cpu_has_native_bf16

    info = host_info()
    here = "\n".join(info.passes())
    assert ("encoder: bf16" in here) == cpu_has_native_bf16()  # as the loader chooses
    assert f"torch {torch.backends.quantized.engine} engine" in here
    assert "draft checks, filler probe, word alignment: fp32" in here
    from vmgrade.asr.speedups.quantize import draft_attention_dtype

    assert ("over the window: bf16" in here) == (draft_attention_dtype() == torch.bfloat16)
    isa = dict.fromkeys(info.isa or [name for name, _, _ in ISA], False)
    avx2 = "\n".join(replace(info, isa={**isa, "avx2": True}).passes())
    assert "encoder: fp32" in avx2 and "no VNNI" in avx2 and "over the window: fp32" in avx2
    amx_isa = {**isa, "avx512_vnni": True, "amx_bf16": True, "amx_int8": True}
    amx = "\n".join(replace(info, isa=amx_isa).passes())
    assert "encoder: bf16 (oneDNN, AMX tiles)" in amx and "VNNI dot products" in amx
    assert "over the window: bf16" in amx
    assert any(line.startswith("kernels: openai-whisper encoder") for line in info.lines())
