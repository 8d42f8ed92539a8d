"""Calibrating rubric weights to trainer scores: the fit, the rubric file, the CSV, the command."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import tomllib
from conftest import SAMPLES

from vmgrade import scoring
from vmgrade.calibrate import (
    DEFAULT_RIDGE,
    CalibrationError,
    calibrate,
    choose_ridge,
    fit_weights,
    format_report,
    predict,
    read_ratings,
    round_weights,
    write_rubric,
)
from vmgrade.cli import EXIT_OK, EXIT_USAGE, main

TRUE_WEIGHTS = np.array([15.0, 20.0, 25.0, 10.0, 10.0, 10.0, 5.0, 5.0])
BASE = scoring.load_rubric()
BASE_WEIGHTS = np.array([BASE.weights[k] for k in scoring.DIMENSIONS])


def synthetic(n: int, weights: np.ndarray, noise: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Dimension scores spread over 0-100 and trainer scores = their weighted mean + noise."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 100.0, (n, len(weights)))
    y = np.clip(x @ weights / weights.sum() + rng.normal(0.0, noise, n), 0.0, 100.0)
    return x, y


# --------------------------------------------------------------------------- fitting


def test_fit_recovers_known_weights_from_noisy_scores():
    x, y = synthetic(300, TRUE_WEIGHTS, noise=2.0)
    equal = np.full(8, 12.5)
    cal = calibrate(x, y, equal)  # 300 rows: automatic ridge is none
    assert cal.ridge == 0 and "unregularised" in cal.method
    assert np.abs(cal.new_weights - TRUE_WEIGHTS).max() < 2.0, cal.new_weights
    assert cal.new_weights.sum() == pytest.approx(100.0)
    assert np.allclose(cal.new_weights * 10, np.round(cal.new_weights * 10))  # multiples of 0.1
    assert cal.after.r > 0.95 and cal.after.mae < 2.5
    assert cal.after.mae < cal.before.mae and cal.after.r > cal.before.r
    assert cal.after.loo_mae == pytest.approx(cal.after.mae, abs=0.3)  # 300 rows: no overfitting


def test_fit_with_sparse_true_weights_and_floor():
    sparse = np.array([0.0, 40.0, 40.0, 0.0, 20.0, 0.0, 0.0, 0.0])
    x, y = synthetic(200, sparse, noise=0.5, seed=1)
    w = fit_weights(x, y)
    assert np.abs(w - sparse).max() < 1.0, w
    floored = fit_weights(x, y, min_weight=5.0)
    assert floored.min() >= 5.0 and floored.sum() == pytest.approx(100.0)
    assert list(np.argsort(-floored)[:3]) in ([1, 2, 4], [2, 1, 4])


def test_ridge_pulls_toward_the_prior_and_small_sets_need_it():
    x, y = synthetic(5, TRUE_WEIGHTS, noise=3.0, seed=2)
    assert choose_ridge(5, 8, None)[0] == DEFAULT_RIDGE
    assert "regularised" in choose_ridge(5, 8, None)[1] and "9" in choose_ridge(5, 8, None)[1]
    with pytest.raises(CalibrationError, match="needs at least 9"):
        choose_ridge(5, 8, 0.0)
    with pytest.raises(CalibrationError, match="at least 2"):
        choose_ridge(1, 8, None)
    prior = np.full(8, 12.5)
    gaps = [np.abs(fit_weights(x, y, prior, r) - prior).sum() for r in (0.1, 1.0, 10.0, 1e4)]
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 1.0
    cal = calibrate(x, y, prior)
    assert cal.ridge == DEFAULT_RIDGE and cal.after.loo_mae is not None


def test_predict_is_the_scoring_formula_with_the_cap():
    x = np.array([[100.0] * 8, [80.0, 90.0, 100.0, 70.0, 60.0, 50.0, 40.0, 30.0]])
    caps = np.array([50.0, np.inf])
    p = predict(x, BASE_WEIGHTS, caps)
    assert p[0] == 50.0
    assert p[1] == pytest.approx(sum(s * BASE.weights[k] for s, k in zip(x[1], scoring.DIMENSIONS))
                                 / sum(BASE.weights.values()))


def test_round_weights_keeps_the_total():
    w = round_weights(np.array([1.0, 1.0, 1.0]))
    assert list(w) == [33.4, 33.3, 33.3]
    assert round_weights(np.array([0.0, 0.0, 10.0]), min_weight=2.0).tolist() == [2.0, 2.0, 96.0]


def test_format_report_lists_fit_and_weights():
    x, y = synthetic(20, TRUE_WEIGHTS, noise=1.0)
    cal = calibrate(x, y, BASE_WEIGHTS, labels=[BASE.labels[k] for k in scoring.DIMENSIONS])
    text = format_report(cal, [f"/a/f{i}.wav" for i in range(20)])
    assert re.search(r"base weights\s+0\.\d{3}\s+\d+\.\d", text)
    assert re.search(r"calibrated weights\s+0\.9\d\d\s+\d+\.\d\s+\d+\.\d", text)
    assert "Call to action and callback number" in text and "f19.wav" in text


# --------------------------------------------------------------------------- rubric file


def test_write_rubric_changes_only_weights_and_version(tmp_path):
    out = tmp_path / "cal.toml"
    new = dict(zip(scoring.DIMENSIONS, [17.3, 24.4, 24.1, 8.9, 12.5, 11.2, 0.8, 0.8]))
    rubric = write_rubric(None, new, out, "Fitted on 5 files from ratings.csv\nr = 0.953, MAE = 8.1")
    text = out.read_text()
    assert rubric.weights == new
    assert rubric.thresholds == BASE.thresholds and rubric.sources == BASE.sources
    assert rubric.points == BASE.points and rubric.letters == BASE.letters and rubric.labels == BASE.labels
    assert re.fullmatch(re.escape(BASE.version) + r"\+calibrated-\d{8}", rubric.version)
    assert 'source = "Street & Brady 1982 (140-160 wpm optimal)"' in text
    assert "# Every threshold is a table { value = ..., source = \"...\" }: the number and" in text
    assert "[letters]  # lowest overall score for each letter; below the last is F" in text
    assert "# -- speaking rate" in text
    assert text.startswith("# Fitted on 5 files from ratings.csv\n# r = 0.953, MAE = 8.1\n")
    assert f"weight = 24.4  # was {BASE.weights['relevance']:g}\n" in text
    # apart from the note, the version and the weights the file is the packaged one, line for line
    base_lines = scoring.default_rubric_path().read_text().splitlines()
    body = text.splitlines()[3:]
    changed = [(a, b) for a, b in zip(base_lines, body) if a != b]
    assert len(body) == len(base_lines)
    assert [a for a, _ in changed] == ["version = \"2026.12-2\""] + ["weight = " + str(int(w)) for w in
                                                                     BASE_WEIGHTS]
    # calibrating a calibrated rubric replaces the suffix rather than stacking it
    again = write_rubric(out, dict.fromkeys(scoring.DIMENSIONS, 12.5), tmp_path / "again.toml", "")
    assert again.version.count("+calibrated-") == 1
    assert "weight = 12.5  # was 24.4\n" in (tmp_path / "again.toml").read_text()
    tomllib.loads((tmp_path / "again.toml").read_text())


# --------------------------------------------------------------------------- ratings CSV


def _csv(tmp_path, text: str):
    path = tmp_path / "ratings.csv"
    path.write_text(text)
    return path


def test_read_ratings_resolves_paths_and_context(tmp_path):
    (tmp_path / "audio").mkdir()
    shutil.copy(SAMPLES / "followup_phone.wav", tmp_path / "audio" / "a.wav")
    path = _csv(tmp_path, "\ufeffFile,Score,callback_number,prospect_name,notes\n"
                          "audio/a.wav,75,415-555-0198,Dana,good\n\n"
                          f"{SAMPLES / 'rambling_phone.wav'},30.5,,,\n")
    ratings = read_ratings(path)
    assert [r.file for r in ratings.rows] == [tmp_path / "audio" / "a.wav", SAMPLES / "rambling_phone.wav"]
    assert [r.score for r in ratings.rows] == [75.0, 30.5]
    assert [r.line for r in ratings.rows] == [2, 4]
    assert ratings.rows[0].context.callback_number == "415-555-0198"
    assert ratings.rows[0].context.prospect_name == "Dana" and ratings.rows[0].context.company is None
    assert ratings.rows[1].context.callback_number is None
    assert ratings.skipped == ()


def test_read_ratings_names_every_bad_score_with_its_line(tmp_path):
    good = SAMPLES / "followup_phone.wav"
    path = _csv(tmp_path, f"file,score\n{good},80\n{good},abc\n{good},120\n{good},\n,50\n{good},nan\n")
    with pytest.raises(CalibrationError) as err:
        read_ratings(path)
    message = err.value.message
    assert f"{path} line 3: score 'abc' is not a number" in message
    assert f"{path} line 4: score 120 is outside 0-100" in message
    assert f"{path} line 5: empty score" in message
    assert f"{path} line 6: empty file column" in message
    assert f"{path} line 7: score nan is outside 0-100" in message
    assert "line 2" not in message
    assert err.value.code == "ratings_invalid"


def test_read_ratings_missing_column_and_missing_file(tmp_path):
    path = _csv(tmp_path, "file,trainer\nx.wav,50\n")
    with pytest.raises(CalibrationError, match=r"ratings\.csv line 1: missing column\(s\) score "
                                               r"\(header has: file, trainer\)"):
        read_ratings(path)
    path = _csv(tmp_path, f"file,score\nnot_here.wav,50\n{SAMPLES / 'followup_phone.wav'},75\n")
    ratings = read_ratings(path)
    assert len(ratings.rows) == 1
    assert ratings.skipped == (f"{path} line 2: file not found: {tmp_path / 'not_here.wav'} (skipped)",)
    with pytest.raises(CalibrationError, match="ratings file not found"):
        read_ratings(tmp_path / "absent.csv")


def test_cli_rejects_bad_csv_before_loading_a_model(tmp_path, capsys):
    path = _csv(tmp_path, f"file,score\n{SAMPLES / 'followup_phone.wav'},75\n")
    assert main(["calibrate", str(path), "--model", "no-such-model"]) == EXIT_USAGE
    assert "only 1 usable rated file" in capsys.readouterr().err
    path = _csv(tmp_path, "file,score\nx.wav,high\n")
    assert main(["calibrate", str(path), "--model", "no-such-model"]) == EXIT_USAGE
    assert "line 2: score 'high' is not a number" in capsys.readouterr().err
    assert not (tmp_path / "rubric.calibrated.toml").exists()


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_calibrate_command_end_to_end(tmp_path, capsys):
    """Real Whisper (tiny.en): grade the samples, fit, write a rubric that `vmgrade grade` uses."""
    (tmp_path / "audio").mkdir()
    shutil.copy(SAMPLES / "followup_phone.wav", tmp_path / "audio" / "followup_phone.wav")
    csv = _csv(tmp_path, "file,score,callback_number\n"
                         f"{SAMPLES / 'strong_wideband.flac'},92,\n"
                         f"{SAMPLES / 'after_practice.wav'},88,\n"
                         "audio/followup_phone.wav,75,\n"
                         f"{SAMPLES / 'before_practice.wav'},55,\n"
                         f"{SAMPLES / 'rambling_phone.wav'},30,\n"
                         # the same recording checked against a wrong number: capped, a trainer docks it
                         f"{SAMPLES / 'after_practice.wav'},40,212-555-0100\n")
    out = tmp_path / "out" / "calibrated.toml"
    status = main(["calibrate", str(csv), "--out", str(out), "--model", "tiny.en"])
    captured = capsys.readouterr()
    assert status == EXIT_OK, captured.err
    assert "[6/6]" in captured.err
    assert re.search(r"calibrated weights\s+-?[01]\.\d{3}\s+\d+\.\d\s+\d+\.\d", captured.out), captured.out
    assert re.search(r"\br\b", captured.out) and "MAE" in captured.out and "LOO MAE" in captured.out
    assert "regularised: ridge 1 toward the base weights" in captured.out
    rubric = scoring.load_rubric(out)
    assert sum(rubric.weights.values()) == pytest.approx(100.0)
    assert rubric.weights != BASE.weights
    assert rubric.version.startswith(BASE.version + "+calibrated-")
    assert rubric.thresholds == BASE.thresholds and rubric.sources == BASE.sources
    note = out.read_text().split("\n\n")[0]
    assert "from 6 trainer scores" in note and str(csv) in note and "leave-one-out MAE" in note

    # the "before" column is exactly what grading gave (cap included), the "after" column uses new weights
    graded = [float(g) for g in re.findall(r"graded (\d+\.\d)", captured.err)]
    rows = re.findall(r"^(\S+\.(?:wav|flac))\s+(\d+\.\d)\s+(\d+\.\d)\s+(\d+\.\d)$", captured.out, re.M)
    assert [r[0] for r in rows] == ["strong_wideband.flac", "after_practice.wav", "followup_phone.wav",
                                    "before_practice.wav", "rambling_phone.wav", "after_practice.wav"]
    assert [float(r[2]) for r in rows] == graded
    assert graded[5] <= BASE.t("number_mismatch_max_score") < graded[1]

    # and `vmgrade grade --rubric` uses it: overall = weighted mean of the dimensions with the new weights
    status = main(["grade", str(SAMPLES / "rambling_phone.wav"), "--rubric", str(out), "--model", "tiny.en",
                   "--format", "json"])
    record = json.loads(capsys.readouterr().out)
    assert status == EXIT_OK
    assert record["rubric"]["version"] == rubric.version
    dims = record["dimensions"]
    assert [d["weight"] for d in dims] == [rubric.weights[k] for k in scoring.DIMENSIONS]
    expected = sum(d["score"] * d["weight"] for d in dims) / 100.0
    assert record["score"] == pytest.approx(expected, abs=0.2)
    assert record["score"] == pytest.approx(float(rows[4][3]), abs=0.15)


def test_one_recording_rated_twice_with_two_scores_is_ratings_invalid(tmp_path, capsys):
    (tmp_path / "audio").mkdir()
    shutil.copy(SAMPLES / "followup_phone.wav", tmp_path / "audio" / "a.wav")
    shutil.copy(SAMPLES / "followup_phone.wav", tmp_path / "audio" / "copy.wav")  # same bytes, other name
    other = SAMPLES / "rambling_phone.wav"
    path = _csv(tmp_path, f"file,score\naudio/a.wav,80\n{other},30\naudio/./a.wav,55\naudio/copy.wav,60\n")
    with pytest.raises(CalibrationError) as err:  # before: both rows went into the fit
        read_ratings(path)
    message = err.value.message
    assert err.value.code == "ratings_invalid"
    assert f"{path} line 4: a.wav rated 55, but line 2 rates the same file 80" in message
    assert f"{path} line 5: copy.wav rated 60, but line 2 rates the same recording (identical bytes) 80" \
        in message
    assert main(["calibrate", str(path), "--model", "no-such-model"]) == EXIT_USAGE  # before any model
    assert "[ratings_invalid]" in capsys.readouterr().err

    same = _csv(tmp_path, f"file,score\naudio/a.wav,80\n{other},30\naudio/copy.wav,80\n")
    ratings = read_ratings(same)  # the same score twice: one rating, counted once
    assert [(r.file.name, r.score, r.line) for r in ratings.rows] == [("a.wav", 80.0, 2),
                                                                       ("rambling_phone.wav", 30.0, 3)]
