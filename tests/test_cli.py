"""The command line: JSON records per file, error records, exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import SAMPLES

from vmgrade.cli import EXIT_FILE_FAILED, EXIT_USAGE, main


@pytest.mark.slow
def test_grade_json_one_record_per_file_and_failures_do_not_stop_the_batch(tmp_path, capsys):
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio at all")
    missing = tmp_path / "missing.flac"
    good = SAMPLES / "followup_phone.wav"
    status = main(["grade", str(bad), str(good), str(missing), "--format", "json", "--model", "tiny.en",
                   "--callback-number", "415-555-0198", "--prospect-name", "Dana"])
    out = capsys.readouterr()
    records = [json.loads(line) for line in out.out.splitlines()]
    assert status == EXIT_FILE_FAILED
    assert [r["file"] for r in records] == [str(bad), str(good), str(missing)]
    assert records[0]["error"]["code"] == "not_audio"
    assert records[2]["error"]["code"] == "file_not_found"
    assert str(missing) in records[2]["error"]["message"]
    ok = records[1]
    assert "error" not in ok
    from vmgrade.asr.speedups.bf16 import cpu_has_native_bf16

    precision = "bf16-encoder-int8-logits" if cpu_has_native_bf16() else "fp32-int8-logits"
    assert 1 <= ok["model"].pop("threads") <= os.cpu_count()  # the idle cores when the model loaded
    assert ok["model"] == {"engine": "openai-whisper", "name": "tiny.en", "precision": precision}
    assert 15 < ok["duration_s"] < 25
    assert ok["audio"]["sample_rate_hz"] == 8000
    assert ok["context"] == {"callback_number": "415-555-0198", "prospect_name": "Dana"}
    words = ok["transcript"]["words"]
    assert words and set(words[0]) == {"word", "start", "end", "probability"}
    assert ok["transcript"]["text"]
    assert "not_audio" in out.err or "not a recognised audio file" in out.err


@pytest.mark.slow
def test_text_format(capsys):
    status = main(["grade", str(SAMPLES / "before_practice.wav"), "--model", "tiny.en"])
    out = capsys.readouterr().out
    assert status == 0
    assert "before_practice.wav" in out and "Transcript:" in out


def test_unknown_model_is_a_usage_error(capsys):
    status = main(["grade", str(SAMPLES / "followup_phone.wav"), "--model", "no-such-model"])
    assert status == EXIT_USAGE
    assert "unknown model 'no-such-model'" in capsys.readouterr().err


def test_console_script_help_and_models():
    help_out = subprocess.run([sys.executable, "-m", "vmgrade", "grade", "--help"],
                              capture_output=True, text=True, check=True).stdout
    for option in ("--callback-number", "--caller-name", "--company", "--prospect-name",
                   "--prospect-company", "--format", "--model"):
        assert option in help_out
    models_out = subprocess.run([sys.executable, "-m", "vmgrade", "models"],
                                capture_output=True, text=True, check=True).stdout
    assert "base" in models_out and "tiny.en" in models_out and "MB" in models_out


@pytest.mark.slow
def test_compare_audio_against_saved_report_json(tmp_path, capsys):
    saved = tmp_path / "after.jsonl"
    assert main(["grade", str(SAMPLES / "after_practice.wav"), "--format", "json", "--model", "tiny.en"]) == 0
    saved.write_text(capsys.readouterr().out)
    page = tmp_path / "cmp.html"
    status = main(["compare", str(SAMPLES / "before_practice.wav"), str(saved), "--model", "tiny.en",
                   "--format", "json", "--html", str(page), "--label", "before", "--label", "after"])
    out = capsys.readouterr()
    assert status == 0, out.err
    data = json.loads(out.out)
    assert [r["label"] for r in data["recordings"]] == ["before", "after"]
    assert data["recordings"][0]["file"].endswith("before_practice.wav")
    assert data["score"]["after"] > data["score"]["before"]
    assert any(line.startswith("Pace went from") for line in data["summary"])
    assert {m["key"] for m in data["metrics"] if m["noticeable"]} >= {"rate_wpm", "filler_rate_per_min"}
    assert page.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")


def _write_reports(path, *reports):
    path.write_text("\n".join(json.dumps(r) for r in reports) + "\n")
    return path


def test_compare_text_from_report_json_and_errors(tmp_path, capsys):
    ok = {"file": "a.wav", "score": 60.0, "grade": "D", "metrics": {"rate_wpm": 200.0},
          "dimensions": [{"key": "pace", "label": "Pace and pauses", "score": 20.0, "weight": 10}]}
    better = {**ok, "file": "b.wav", "score": 75.0, "grade": "C", "metrics": {"rate_wpm": 150.0},
              "dimensions": [{"key": "pace", "label": "Pace and pauses", "score": 90.0, "weight": 10}]}
    failed = {"file": "c.wav", "error": {"code": "not_audio", "message": "c.wav: not audio"}}
    status = main(["compare", str(_write_reports(tmp_path / "two.jsonl", ok, better))])
    out = capsys.readouterr().out
    assert status == 0
    assert "Score went from 60 (D) to 75 (C)." in out and "into the target band" in out
    assert "Pace and pauses" in out and "\x1b[" not in out

    status = main(["compare", str(_write_reports(tmp_path / "three.jsonl", ok, failed, better))])
    captured = capsys.readouterr()
    assert status == 1 and "c.wav: could not be graded [not_audio]" in captured.err
    assert "Trend over 3 recordings" in captured.out

    assert main(["compare", str(_write_reports(tmp_path / "one.json", ok))]) == 2
    assert "at least two recordings" in capsys.readouterr().err
    other = tmp_path / "other.json"
    other.write_text('{"rows": []}')
    assert main(["compare", str(other), str(tmp_path / "two.jsonl")]) == 2
    assert "other.json: not a vmgrade report" in capsys.readouterr().err


def test_compare_help_lists_its_options():
    help_out = subprocess.run([sys.executable, "-m", "vmgrade", "compare", "--help"],
                              capture_output=True, text=True, check=True).stdout
    for option in ("BEFORE AFTER", "--format", "--html", "--label", "--by-time", "--model", "--rubric",
                   "--callback-number", "--engine"):
        assert option in help_out, option


def _odd_tag_wav(path):
    import struct

    from conftest import write_tone

    data = bytearray(write_tone(path.with_name("tone.wav")).read_bytes())
    data[20:22] = struct.pack("<H", 0x1234)  # a WAV format tag no decoder knows
    path.write_bytes(bytes(data))
    return path


def test_every_bad_file_gets_its_record_and_names_stay_printable(tmp_path):
    import os

    odd = _odd_tag_wav(tmp_path / "odd_tag.wav")
    not_utf8 = os.path.join(os.fsencode(tmp_path), b"bad\xff.wav")
    with open(not_utf8, "wb") as f:
        f.write(b"not audio" * 20)
    ansi = tmp_path / "x\x1b[32m\nGrade A   score 99.wav"
    ansi.write_text("not audio either")
    loop = tmp_path / "loop.wav"
    loop.symlink_to(loop)
    files = [os.fsencode(odd), not_utf8, *map(os.fsencode, (ansi, loop, tmp_path / "no.wav"))]
    env = {**os.environ, "LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "utf-8:strict"}
    out = subprocess.run([sys.executable, "-m", "vmgrade", "grade", *files, "--format", "json",
                          "--model", "tiny.en"], capture_output=True, env=env)
    assert out.returncode == EXIT_FILE_FAILED, out.stderr.decode(errors="replace")
    records = [json.loads(line) for line in out.stdout.decode("utf-8").splitlines()]
    assert [r["error"]["code"] for r in records] == [
        "unsupported_codec", "not_audio", "not_audio", "symlink_loop", "file_not_found"]
    assert records[1]["file"].endswith("bad\\xff.wav")
    assert records[2]["file"] == str(ansi)  # JSON escapes control characters itself
    err = out.stderr.decode("utf-8")
    assert "\x1b" not in err and "\\x1b[32m\\nGrade A" in err
    assert not any(line.startswith("Grade A") for line in err.splitlines())


def test_text_output_escapes_control_characters_in_names(tmp_path, capsys, monkeypatch):
    import shutil

    from vmgrade import cli
    from vmgrade.asr.transcribe import Transcript
    from vmgrade.pipeline import Grader

    class Deaf:  # no model: the VAD still finds the speech, so the file is graded
        engine, model_name, precision = "stub", "stub", "fp32"

        def transcribe(self, audio):
            return Transcript(text="", language="en", segments=(), no_speech_prob=0.0, engine="stub",
                              model_name="stub")

    monkeypatch.setattr(cli, "_grader", lambda args: Grader(transcriber=Deaf()))
    name = tmp_path / "call\x1b[2J\nGrade A   score 100.wav"
    shutil.copy(SAMPLES / "followup_phone.wav", name)
    assert main(["grade", str(name)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "call\\x1b[2J\\nGrade A" in out
    assert not any(line.startswith("Grade A   score 100") for line in out.splitlines())


# ---------------------------------------------------------------- a CLI that says what it is doing

@pytest.fixture
def quiet_progress(monkeypatch):
    """Progress starts off and is off again after the test (main() turns it on for a terminal)."""
    from vmgrade import progress

    monkeypatch.setattr(progress, "_enabled", False)


def _not_audio(tmp_path, name: str):
    path = tmp_path / name
    path.write_text("not audio at all")
    return path


@pytest.mark.parametrize("load, warned", [(None, True), (0.0, False)])
def test_grade_warns_when_the_threads_exceed_the_idle_cores(tmp_path, capsys, monkeypatch, load, warned,
                                                             quiet_progress):
    from vmgrade.asr.threads import cpu_cores

    busy = float(cpu_cores()) if load is None else load  # every core busy with other work, or none
    monkeypatch.setattr("vmgrade.asr.threads.idle_cores", lambda since=None: cpu_cores() - busy)
    main(["grade", str(_not_audio(tmp_path, "a.wav")), "--threads", "2", "--format", "json"])
    err = capsys.readouterr().err
    assert ("warning: grading with 2 thread(s)" in err) is warned, err
    if warned:
        assert "--threads 1 may be faster" in err
        main(["grade", str(_not_audio(tmp_path, "b.wav")), "--threads", "2", "--quiet"])
        assert "warning" not in capsys.readouterr().err


def test_batch_warns_only_when_asked_for_more_workers_than_idle_cores(tmp_path, capsys, monkeypatch,
                                                                      quiet_progress):
    monkeypatch.setattr("vmgrade.asr.threads.idle_cores", lambda since=None: 1.0)  # one core left idle
    empty = tmp_path / "calls"
    empty.mkdir()
    main(["batch", str(empty), "--out", str(tmp_path / "out"), "--workers", "3"])
    assert "--workers 1 --threads 1 may be faster" in capsys.readouterr().err
    main(["batch", str(empty), "--out", str(tmp_path / "out")])  # the default fits itself: no warning
    assert "warning: grading with" not in capsys.readouterr().err


def test_several_files_show_progress_on_a_terminal_and_stdout_stays_json(tmp_path, capsys, monkeypatch,
                                                                        quiet_progress):
    import vmgrade.cli as cli

    monkeypatch.setattr("vmgrade.asr.threads.idle_cores", lambda since=None: 2.0)
    files = [str(_not_audio(tmp_path, f"{n}.wav")) for n in ("one", "two", "three")]
    monkeypatch.setattr(cli, "_stderr_is_terminal", lambda: True)
    main(["grade", *files, "--format", "json"])
    out = capsys.readouterr()
    assert [json.loads(line)["file"] for line in out.out.splitlines()] == files  # JSON only
    assert "grading:" in out.err and "/3 [" in out.err and "one.wav]" in out.err  # the bar, with the file
    main(["grade", *files, "--format", "json", "--quiet"])
    assert "grading:" not in capsys.readouterr().err
    monkeypatch.setattr(cli, "_stderr_is_terminal", lambda: False)  # a pipe or a log: no bar
    main(["grade", *files, "--format", "json"])
    assert "grading:" not in capsys.readouterr().err


@pytest.mark.slow
def test_the_first_run_says_it_converts_and_loads_the_model(tmp_path, capsys, monkeypatch, quiet_progress):
    import vmgrade.cli as cli

    monkeypatch.setenv("VMGRADE_MODEL_DIR", str(tmp_path / "models"))  # nothing converted yet
    monkeypatch.setattr(cli, "_stderr_is_terminal", lambda: True)
    assert main(["grade", str(SAMPLES / "followup_phone.wav"), "--model", "tiny.en", "--format", "json"]) == 0
    out = capsys.readouterr()
    assert "converting the Whisper model 'tiny.en' for its first use" in out.err
    assert "layer" in out.err  # the conversion's bar
    assert "loading the Whisper model 'tiny.en'" in out.err
    assert json.loads(out.out)["transcript"]["text"]
    main(["grade", str(SAMPLES / "followup_phone.wav"), "--model", "tiny.en", "--format", "json"])
    assert "converting" not in capsys.readouterr().err  # cached: said once
