"""The command line: JSON records per file, error records, exit status."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import SAMPLES

from vmgrade.cli import EXIT_FILE_FAILED, EXIT_USAGE, main


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
    assert ok["model"] == {"engine": "openai-whisper", "name": "tiny.en"}
    assert 15 < ok["duration_s"] < 25
    assert ok["audio"]["sample_rate_hz"] == 8000
    assert ok["context"] == {"callback_number": "415-555-0198", "prospect_name": "Dana"}
    words = ok["transcript"]["words"]
    assert words and set(words[0]) == {"word", "start", "end", "probability"}
    assert ok["transcript"]["text"]
    assert "not_audio" in out.err or "not a recognised audio file" in out.err


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
