"""Fit the rubric's dimension weights to a trainer's scores.

A trainer rates some voicemails (``ratings.csv``: ``file``, ``score`` 0-100 and
optional call context). Every file is graded once with the base rubric; its
eight dimension scores do not depend on the weights, so the overall score any
set of weights would give is the weighted mean ``X @ w / sum(w)`` of the
dimension-score matrix ``X`` (N files x 8 dimensions, in ``scoring.DIMENSIONS``
order), capped like :func:`vmgrade.scoring.score` caps it when the callback
number is wrong.

The weights are fitted by non-negative least squares on the uncapped weighted
mean, constrained to sum to 100 (and to at least ``min_weight`` each), with an
optional ridge pull toward the base weights::

    minimise  sum_i (X_i . w / 100 - y_i)^2  +  ridge * sum_k (w_k - w0_k)^2
    s.t.      w_k >= min_weight,  sum_k w_k = 100

``w`` and ``w0`` (the base weights rescaled to sum to 100) are in weight points
and the residuals in score points, so ``ridge = 1`` means that moving one
weight by 1 point must buy at least 1 squared score point of fit. The pull is
fixed while the data term grows with N, so its effect fades as ratings
accumulate. With fewer rated files than dimensions + 1 an unregularised fit is
underdetermined: the default then uses ``DEFAULT_RIDGE`` and says so.

Fit quality (Pearson r, mean absolute error, leave-one-out MAE) is reported on
the *capped* overall score, i.e. exactly what ``vmgrade grade`` would print with
the new weights.

Only this module's :func:`run` does IO besides :func:`read_ratings` and
:func:`write_rubric`; the fitting functions are pure and need no model.
"""

from __future__ import annotations

import math
import os
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from . import scoring
from .csvtable import raise_listed, read_table
from .errors import VmgradeError
from .fileio import write_atomic
from .pipeline import CONTEXT_FIELDS, Context, GradeOptions, Grader

REQUIRED_COLUMNS = ("file", "score")
DEFAULT_RIDGE = 1.0  # used when too few rows for an unregularised fit (see module docstring)
DEFAULT_OUT_NAME = "rubric.calibrated.toml"
WEIGHT_TOTAL = 100.0
WEIGHT_STEP = 0.1
MIN_ROWS = 2  # below this neither a fit nor a correlation means anything
NOTE_WIDTH = 100  # comment lines in the written rubric
_SUM_ROW_SCALE = 1e4  # weight of the sum-to-one row in the augmented NNLS system
_VERSION_SUFFIX = re.compile(r"\+calibrated-\d{8}$")


class CalibrationError(VmgradeError):
    """The ratings cannot be used for a fit (bad CSV, too few usable rows)."""

    code = "calibration_error"


# --------------------------------------------------------------------------- ratings


@dataclass(frozen=True)
class Rating:
    """One row of the ratings CSV."""

    file: Path
    score: float
    line: int
    context: Context


@dataclass(frozen=True)
class Ratings:
    """The usable rows of a ratings CSV, and why any others were skipped."""

    path: Path
    rows: tuple[Rating, ...]
    skipped: tuple[str, ...]


def read_ratings(csv_path: str | os.PathLike) -> Ratings:
    """Read and check a ratings CSV.

    Parameters
    ----------
    csv_path : str or PathLike
        CSV with a header row: ``file`` (audio path; relative paths are resolved
        against the CSV's folder), ``score`` (trainer score 0-100) and optionally
        ``caller_name, company, callback_number, prospect_name, prospect_company``.
        Column names are case-insensitive; other columns are ignored.

    Returns
    -------
    Ratings
        Rows whose audio file does not exist are skipped, with a message. A
        recording listed twice (the same path, or a copy with the same bytes)
        with the same score is counted once.

    Raises
    ------
    CalibrationError
        When the CSV cannot be read, lacks a required column, or has a row with an
        empty file or a score that is not a number in 0-100, or rates one recording
        twice with different scores (every such row is listed, with the other line).
    """
    path = Path(csv_path)
    columns, lines = read_table(path, what="ratings file", error=CalibrationError,
                                not_found_code="ratings_not_found", invalid_code="ratings_invalid",
                                expected_columns=REQUIRED_COLUMNS)
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise CalibrationError(f"{path} line 1: missing column(s) {', '.join(missing)} "
                               f"(header has: {', '.join(columns)})", code="ratings_invalid")
    index = {c: columns.index(c) for c in (*REQUIRED_COLUMNS, *CONTEXT_FIELDS) if c in columns}
    errors: list[str] = []
    skipped: list[str] = []
    rows: list[Rating] = []
    for line, cells in lines:
        cell = {c: cells[i].strip() if i < len(cells) else "" for c, i in index.items()}
        score, problem = _parse_score(cell["score"])
        if not cell["file"]:
            problem = "empty file column" if problem is None else f"empty file column; {problem}"
        if problem is not None:
            errors.append(f"{path} line {line}: {problem}")
            continue
        audio = Path(cell["file"]).expanduser()
        audio = audio if audio.is_absolute() else path.parent / audio
        if not audio.is_file():
            skipped.append(f"{path} line {line}: file not found: {audio} (skipped)")
            continue
        context = Context(**{c: cell.get(c) or None for c in CONTEXT_FIELDS})
        rows.append(Rating(audio, score, line, context))
    rows = _once_each(path, rows, errors)
    raise_listed(errors, title="bad ratings", error=CalibrationError, code="ratings_invalid")
    return Ratings(path, tuple(rows), tuple(skipped))


def _once_each(path: Path, rows: list[Rating], errors: list[str]) -> list[Rating]:
    """Each recording once: by its resolved path or, for a copy under another name, its bytes,
    with its context (the same recording checked against another callback number is another
    question: a trainer docks the wrong number).

    The same recording in the same context rated twice with different scores is two answers to
    one question, and a fit would split the difference silently: each such pair goes to
    ``errors`` naming both lines. Rated twice with the same score it is one rating, counted
    once (the first line kept).
    """
    from .fileio import content_hash

    first: dict[object, Rating] = {}
    kept: list[Rating] = []
    for row in rows:
        keys: list[object] = [("path", row.file.resolve(), row.context)]
        try:
            keys.append(("bytes", content_hash(row.file), row.context))
        except OSError:
            pass  # unreadable: grading it reports why; its path still keys it
        earlier = next((first[k] for k in keys if k in first), None)
        if earlier is None:
            first.update(dict.fromkeys(keys, row))
            kept.append(row)
        elif earlier.score != row.score:
            same = "the same file" if keys[0] in first else "the same recording (identical bytes)"
            errors.append(f"{path} line {row.line}: {row.file.name} rated {row.score:g}, but line "
                          f"{earlier.line} rates {same} {earlier.score:g}; keep one score per recording")
    return kept


def _parse_score(raw: str) -> tuple[float, str | None]:
    """The score in a cell, or the reason it is unusable."""
    if not raw:
        return math.nan, "empty score"
    try:
        value = float(raw)
    except ValueError:
        return math.nan, f"score {raw!r} is not a number"
    if not math.isfinite(value) or not 0.0 <= value <= 100.0:
        return math.nan, f"score {raw} is outside 0-100"
    return value, None


# --------------------------------------------------------------------------- grading


@dataclass(frozen=True)
class ScoreSet:
    """Per-dimension scores of the graded files, with their trainer scores.

    Attributes
    ----------
    files : tuple of str
    lines : tuple of int
        CSV line of each row.
    dim_scores : ndarray, shape (N, len(DIMENSIONS))
        Dimension scores 0-100 in ``scoring.DIMENSIONS`` order.
    trainer : ndarray, shape (N,)
    caps : ndarray, shape (N,)
        Highest overall score each file can get (``inf`` when uncapped).
    graded : ndarray, shape (N,)
        Overall score the base rubric gave.
    skipped : tuple of str
        Rows that could not be graded, and why.
    """

    files: tuple[str, ...]
    lines: tuple[int, ...]
    dim_scores: np.ndarray
    trainer: np.ndarray
    caps: np.ndarray
    graded: np.ndarray
    skipped: tuple[str, ...]


def collect_scores(ratings: Ratings, grader: Grader,
                   progress: Callable[[str], None] | None = None) -> ScoreSet:
    """Grade every rated file once (a file rated twice with the same context is graded once).

    Parameters
    ----------
    ratings : Ratings
    grader : Grader
        Its rubric supplies the thresholds and the number-mismatch cap.
    progress : callable, optional
        Called with one line per file.

    Returns
    -------
    ScoreSet
        Files that fail to grade are skipped and listed in ``skipped``.
    """
    cap = grader.rubric.t("number_mismatch_max_score")
    cache: dict[tuple[Path, Context], object] = {}
    files, lines, dims, trainer, caps, graded = [], [], [], [], [], []
    skipped = list(ratings.skipped)
    total = len(ratings.rows)
    for i, row in enumerate(ratings.rows, 1):
        key = (row.file, row.context)
        if key not in cache:
            cache[key] = grader.grade(row.file, row.context)
        report = cache[key]
        if not report.ok:
            message = f"{ratings.path} line {row.line}: {report.error.message} (skipped)"
            skipped.append(message)
            if progress:
                progress(f"[{i}/{total}] {row.file.name}: failed, skipped ({report.error.code})")
            continue
        by_key = {d.key: d.score for d in report.grade.dimensions}
        files.append(str(row.file))
        lines.append(row.line)
        dims.append([by_key[k] for k in scoring.DIMENSIONS])
        trainer.append(row.score)
        caps.append(cap if report.content.callback.matches_expected is False else math.inf)
        graded.append(report.grade.score)
        if progress:
            progress(f"[{i}/{total}] {row.file.name}: graded {report.grade.score:.1f}, trainer {row.score:g}")
    return ScoreSet(
        files=tuple(files),
        lines=tuple(lines),
        dim_scores=np.asarray(dims, dtype=float).reshape(-1, len(scoring.DIMENSIONS)),
        trainer=np.asarray(trainer, dtype=float),
        caps=np.asarray(caps, dtype=float),
        graded=np.asarray(graded, dtype=float),
        skipped=tuple(skipped),
    )


# --------------------------------------------------------------------------- fitting


def fit_weights(dim_scores: np.ndarray, trainer: np.ndarray, prior_weights: np.ndarray | None = None,
                ridge: float = 0.0, min_weight: float = 0.0) -> np.ndarray:
    """Weights whose weighted mean of dimension scores best matches the trainer.

    Solves the constrained least squares of the module docstring as one NNLS
    problem: the weights above ``min_weight`` are the unknowns, a heavily
    weighted row enforces the sum, and ``ridge`` adds rows pulling toward the prior.

    Parameters
    ----------
    dim_scores : ndarray, shape (N, K)
        Dimension scores 0-100.
    trainer : ndarray, shape (N,)
        Trainer scores 0-100.
    prior_weights : ndarray, shape (K,), optional
        Weights the ridge pulls toward (any positive scale); equal weights when None.
    ridge : float
        Strength of the pull, >= 0 (see module docstring for its units).
    min_weight : float
        Lowest weight any dimension may get, in points of 100.

    Returns
    -------
    ndarray, shape (K,)
        Weights >= ``min_weight``, multiples of 0.1, summing to 100.
    """
    x = np.asarray(dim_scores, dtype=float)
    y = np.asarray(trainer, dtype=float)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"dim_scores must be (N, K) and trainer (N,); got {x.shape} and {y.shape}")
    k = x.shape[1]
    if ridge < 0:
        raise ValueError(f"ridge must be >= 0, got {ridge}")
    floor = min_weight / WEIGHT_TOTAL
    if min_weight < 0 or floor * k >= 1.0:
        raise ValueError(f"min_weight must be >= 0 and below {WEIGHT_TOTAL / k:g} for {k} dimensions")
    prior = _as_fractions(prior_weights, k)
    free = 1.0 - floor * k  # what the weights above the floor share
    rows = [x, _SUM_ROW_SCALE * np.ones((1, k))]
    targets = [y - floor * x.sum(axis=1), [_SUM_ROW_SCALE * free]]
    if ridge > 0:
        pull = math.sqrt(ridge) * WEIGHT_TOTAL
        rows.append(pull * np.eye(k))
        targets.append(pull * (prior - floor))
    v, _ = nnls(np.vstack(rows), np.concatenate(targets), maxiter=50 * k)
    v = np.maximum(v, 0.0)
    v = v * (free / v.sum()) if v.sum() > 0 else np.full(k, free / k)
    return round_weights(WEIGHT_TOTAL * (floor + v), min_weight)


def _as_fractions(weights: np.ndarray | None, k: int) -> np.ndarray:
    if weights is None:
        return np.full(k, 1.0 / k)
    w = np.asarray(weights, dtype=float)
    if w.shape != (k,) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"prior_weights must be {k} non-negative numbers, not all 0")
    return w / w.sum()


def round_weights(weights: np.ndarray, min_weight: float = 0.0, total: float = WEIGHT_TOTAL,
                  step: float = WEIGHT_STEP) -> np.ndarray:
    """Scale ``weights`` to ``total`` and round to multiples of ``step`` keeping the sum
    exact (largest remainder) and no weight below ``min_weight`` rounded to the step."""
    w = np.asarray(weights, dtype=float)
    units = w / w.sum() * round(total / step)
    low = np.floor(units + 1e-9)
    floor_units = math.ceil(min_weight / step - 1e-9)
    low = np.maximum(low, floor_units)
    short = int(round(total / step - low.sum()))
    order = np.argsort(-(units - low), kind="stable")
    if short > 0:
        low[order[:short]] += 1
    for _ in range(-short):  # the floor pushed the sum over: take from the largest weight
        low[int(np.argmax(low))] -= 1
    return np.round(low * step, 10)


def predict(dim_scores: np.ndarray, weights: np.ndarray, caps: np.ndarray | None = None) -> np.ndarray:
    """Overall scores as :func:`vmgrade.scoring.score` computes them: the weighted mean
    of the dimension scores, capped at ``caps`` (``inf`` for no cap)."""
    w = np.asarray(weights, dtype=float)
    overall = np.asarray(dim_scores, dtype=float) @ w / w.sum()
    return overall if caps is None else np.minimum(overall, caps)


def leave_one_out(dim_scores: np.ndarray, trainer: np.ndarray, caps: np.ndarray | None = None,
                  prior_weights: np.ndarray | None = None, ridge: float = 0.0,
                  min_weight: float = 0.0) -> np.ndarray:
    """Each file's overall score under weights fitted without it."""
    x, y = np.asarray(dim_scores, dtype=float), np.asarray(trainer, dtype=float)
    caps = np.full(len(y), math.inf) if caps is None else np.asarray(caps, dtype=float)
    out = np.empty(len(y))
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        w = fit_weights(x[keep], y[keep], prior_weights, ridge, min_weight)
        out[i] = predict(x[i:i + 1], w, caps[i:i + 1])[0]
    return out


@dataclass(frozen=True)
class FitStats:
    """How well predicted overall scores match the trainer's."""

    n: int
    r: float  # Pearson correlation; nan when either side is constant
    mae: float  # mean absolute error, score points
    loo_mae: float | None = None  # leave-one-out MAE (fitted weights only)


def fit_stats(predicted: np.ndarray, trainer: np.ndarray,
              loo_predicted: np.ndarray | None = None) -> FitStats:
    """Pearson r and MAE of ``predicted`` against ``trainer`` (and MAE of ``loo_predicted``)."""
    p, y = np.asarray(predicted, dtype=float), np.asarray(trainer, dtype=float)
    r = math.nan
    if len(y) >= 2 and np.std(p) > 1e-9 and np.std(y) > 1e-9:
        r = float(np.corrcoef(p, y)[0, 1])
    loo = None if loo_predicted is None else float(np.mean(np.abs(np.asarray(loo_predicted) - y)))
    return FitStats(len(y), r, float(np.mean(np.abs(p - y))), loo)


def choose_ridge(n_rows: int, n_dims: int, ridge: float | None) -> tuple[float, str]:
    """The ridge to fit with, and a sentence saying what kind of fit that is.

    ``ridge=None`` means automatic: none when there are at least ``n_dims + 1``
    rows, ``DEFAULT_RIDGE`` otherwise.

    Raises
    ------
    CalibrationError
        Fewer than ``MIN_ROWS`` rows, or too few for an explicitly unregularised fit.
    """
    needed = n_dims + 1
    if n_rows < MIN_ROWS:
        raise CalibrationError(f"only {n_rows} usable rated file(s): need at least {MIN_ROWS} "
                               f"(and {needed} for an unregularised fit)", code="too_few_ratings")
    if ridge is not None and ridge < 0:
        raise CalibrationError(f"ridge must be >= 0, got {ridge:g}", code="calibration_error")
    if n_rows < needed:
        if ridge == 0:
            raise CalibrationError(f"only {n_rows} usable rated files: an unregularised fit of {n_dims} "
                                   f"weights needs at least {needed}; use a ridge > 0",
                                   code="too_few_ratings")
        ridge = DEFAULT_RIDGE if ridge is None else ridge
        return ridge, (f"regularised: ridge {ridge:g} toward the base weights, because {n_rows} rated "
                       f"files are fewer than the {needed} an unregularised fit of {n_dims} weights needs")
    if not ridge:
        return 0.0, "unregularised non-negative least squares"
    return ridge, f"regularised: ridge {ridge:g} toward the base weights"


@dataclass(frozen=True)
class Calibration:
    """Base and fitted weights (both in points of 100) and how well each fits."""

    keys: tuple[str, ...]
    labels: tuple[str, ...]
    old_weights: np.ndarray
    new_weights: np.ndarray
    trainer: np.ndarray
    predicted_before: np.ndarray
    predicted_after: np.ndarray
    before: FitStats
    after: FitStats
    ridge: float
    method: str

    def weights_dict(self) -> dict[str, float]:
        return {k: float(w) for k, w in zip(self.keys, self.new_weights)}


def calibrate(dim_scores: np.ndarray, trainer: np.ndarray, base_weights: np.ndarray,
              caps: np.ndarray | None = None, *, ridge: float | None = None, min_weight: float = 0.0,
              keys: Sequence[str] = scoring.DIMENSIONS, labels: Sequence[str] | None = None) -> Calibration:
    """Fit weights and measure the fit before and after.

    Parameters
    ----------
    dim_scores : ndarray, shape (N, K)
    trainer : ndarray, shape (N,)
    base_weights : ndarray, shape (K,)
        The rubric's current weights (any scale): the "before" and the ridge's prior.
    caps : ndarray, shape (N,), optional
        Per-file cap on the overall score (``inf`` for none), applied when measuring.
    ridge : float, optional
        None: automatic (see :func:`choose_ridge`).
    min_weight : float
        Lowest fitted weight per dimension, in points of 100.
    keys, labels : sequence of str
        Dimension keys and display labels, in column order.

    Returns
    -------
    Calibration
    """
    x, y = np.asarray(dim_scores, dtype=float), np.asarray(trainer, dtype=float)
    base = np.asarray(base_weights, dtype=float)
    ridge, method = choose_ridge(len(y), x.shape[1], ridge)
    new = fit_weights(x, y, base, ridge, min_weight)
    before, after = predict(x, base, caps), predict(x, new, caps)
    loo = leave_one_out(x, y, caps, base, ridge, min_weight) if len(y) >= 3 else None
    return Calibration(
        keys=tuple(keys),
        labels=tuple(labels or keys),
        old_weights=WEIGHT_TOTAL * base / base.sum(),
        new_weights=new,
        trainer=y,
        predicted_before=before,
        predicted_after=after,
        before=fit_stats(before, y),
        after=fit_stats(after, y, loo),
        ridge=ridge,
        method=method,
    )


def _num(value: float | None, fmt: str = ".1f") -> str:
    return "-" if value is None or not math.isfinite(value) else format(value, fmt)


def format_report(cal: Calibration, files: Sequence[str] | None = None) -> str:
    """The fit before and after, old vs new weights, and (given ``files``) each file's scores."""
    lines = [f"Fit to {cal.after.n} trainer scores: {cal.method}.",
             "Overall scores as `vmgrade grade` computes them (number-mismatch cap included).", "",
             f"{'':<22}{'r':>7}{'MAE':>8}{'LOO MAE':>9}"]
    for name, s in (("base weights", cal.before), ("calibrated weights", cal.after)):
        lines.append(f"{name:<22}{_num(s.r, '.3f'):>7}{_num(s.mae):>8}{_num(s.loo_mae):>9}")
    lines += ["", f"{'Dimension':<38}{'old':>7}{'new':>7}{'change':>8}"]
    for label, old, new in zip(cal.labels, cal.old_weights, cal.new_weights):
        lines.append(f"{label:<38}{old:>7.1f}{new:>7.1f}{new - old:>+8.1f}")
    if files is not None:
        width = max([len("File"), *(len(Path(f).name) for f in files)])
        lines += ["", f"{'File':<{width}}{'trainer':>9}{'before':>8}{'after':>8}"]
        for f, y, b, a in zip(files, cal.trainer, cal.predicted_before, cal.predicted_after):
            lines.append(f"{Path(f).name:<{width}}{y:>9.1f}{b:>8.1f}{a:>8.1f}")
    return "\n".join(lines)


def fit_note(cal: Calibration, source: str | os.PathLike, base: str | os.PathLike) -> str:
    """Comment lines recording a calibration, for the top of the written rubric."""
    b, a = cal.before, cal.after
    return "\n".join([
        f"Weights calibrated by `vmgrade calibrate` on {date.today().isoformat()} from {cal.after.n} "
        f"trainer scores in {source}",
        f"(base rubric {base}); {cal.method}.",
        f"Fit of the overall score: base weights r = {_num(b.r, '.3f')}, MAE = {_num(b.mae)}; "
        f"calibrated r = {_num(a.r, '.3f')}, MAE = {_num(a.mae)}, leave-one-out MAE = {_num(a.loo_mae)}.",
    ])


# --------------------------------------------------------------------------- rubric file


def write_rubric(base_path: str | os.PathLike | None, weights: Mapping[str, float],
                 out_path: str | os.PathLike, note: str = "", today: date | None = None) -> scoring.Rubric:
    """Copy a rubric TOML changing only the weights, its version and a leading note.

    Comments, sources, thresholds and layout are kept (tomlkit round trip). Each
    changed weight gets a ``# was N`` comment; ``version`` gains
    ``+calibrated-YYYYMMDD`` (replacing an earlier such suffix).

    Parameters
    ----------
    base_path : str or PathLike or None
        The rubric to copy; the packaged default when None.
    weights : mapping of str to float
        New weight per dimension key (keys not given keep their weight).
    out_path : str or PathLike
    note : str
        Written as comment lines above the copied rubric.
    today : date, optional
        For the version suffix (default: today).

    Returns
    -------
    Rubric
        The written file, loaded back with :func:`vmgrade.scoring.load_rubric`.
    """
    import tomlkit

    base = Path(base_path) if base_path is not None else scoring.default_rubric_path()
    scoring.load_rubric(base)  # a clear RubricError for a bad base, before anything is written
    doc = tomlkit.parse(base.read_text(encoding="utf-8"))
    dims = doc["dimensions"]
    for key, value in weights.items():
        if key not in dims:
            raise ValueError(f"{base}: no [dimensions.{key}]")
        table = dims[key]
        old = table.item("weight")
        value = round(float(value), 1)
        new = tomlkit.item(int(value) if value.is_integer() else value)
        kept = old.trivia.comment.lstrip("#").strip()
        if float(old) != value:
            kept = f"was {_plain(float(old))}" + (f"; {kept}" if kept and not kept.startswith("was ") else "")
        if kept:
            new.comment(kept)
            new.trivia.comment_ws = "  "
        table["weight"] = new
    version = _VERSION_SUFFIX.sub("", str(doc.get("version", "unversioned")))
    doc["version"] = f"{version}+calibrated-{(today or date.today()).strftime('%Y%m%d')}"
    wrap = textwrap.TextWrapper(NOTE_WIDTH, break_long_words=False, break_on_hyphens=False)
    wrapped = [part for line in note.splitlines() for part in (wrap.wrap(line) or [""])]
    header = "".join(f"# {line}".rstrip() + "\n" for line in wrapped)
    out = Path(out_path)
    # whole or not at all: a full disk must not leave half a rubric that a later grade would load
    write_atomic(out, header + ("#\n" if header else "") + tomlkit.dumps(doc))
    return scoring.load_rubric(out)


def _plain(value: float) -> str:
    return str(int(value)) if value.is_integer() else f"{value:g}"


# --------------------------------------------------------------------------- the whole run


@dataclass(frozen=True)
class CalibrationResult:
    ratings: Ratings
    scores: ScoreSet
    calibration: Calibration
    out_path: Path
    rubric: scoring.Rubric

    @property
    def skipped(self) -> tuple[str, ...]:
        return self.scores.skipped


def run(csv_path: str | os.PathLike, *, out: str | os.PathLike | None = None,
        options: GradeOptions | None = None, ridge: float | None = None, min_weight: float = 0.0,
        progress: Callable[[str], None] | None = None, grader: Grader | None = None) -> CalibrationResult:
    """Read ratings, grade each file once, fit the weights and write the calibrated rubric.

    Parameters
    ----------
    csv_path : str or PathLike
        Ratings CSV (see :func:`read_ratings`).
    out : str or PathLike, optional
        Rubric to write; ``rubric.calibrated.toml`` beside the CSV by default.
    options : GradeOptions, optional
        Model and base rubric (``options.rubric``; the packaged one when None).
    ridge : float, optional
        None: automatic (see :func:`choose_ridge`).
    min_weight : float
        Lowest fitted weight per dimension, in points of 100.
    progress : callable, optional
        Called with one line per graded file.
    grader : Grader, optional
        Reuse a loaded model (its options then supply the base rubric).
    """
    k = len(scoring.DIMENSIONS)
    if not 0.0 <= min_weight < WEIGHT_TOTAL / k:
        raise CalibrationError(f"min weight must be in [0, {WEIGHT_TOTAL / k:g}) for {k} dimensions, "
                               f"got {min_weight:g}", code="calibration_error")
    ratings = read_ratings(csv_path)
    choose_ridge(len(ratings.rows), k, ridge)  # too few: fail before loading the model
    grader = grader or Grader(options)
    base = grader.rubric
    scores = collect_scores(ratings, grader, progress)
    base_weights = np.array([base.weights[k] for k in scoring.DIMENSIONS])
    cal = calibrate(scores.dim_scores, scores.trainer, base_weights, scores.caps, ridge=ridge,
                    min_weight=min_weight, labels=[base.labels[k] for k in scoring.DIMENSIONS])
    out_path = Path(out) if out is not None else ratings.path.parent / DEFAULT_OUT_NAME
    rubric = write_rubric(base.path, cal.weights_dict(), out_path, fit_note(cal, ratings.path, base.path))
    return CalibrationResult(ratings, scores, cal, out_path, rubric)


__all__ = [
    "Calibration", "CalibrationError", "CalibrationResult", "FitStats", "Rating", "Ratings", "ScoreSet",
    "calibrate", "choose_ridge", "collect_scores", "fit_note", "fit_stats", "fit_weights", "format_report",
    "leave_one_out", "predict", "read_ratings", "round_weights", "run", "write_rubric",
]  # fmt: skip
