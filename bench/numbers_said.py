"""The callback-number verdict on numbers said in many styles, voices and channels.

``samples/numbers/sayings.toml`` holds 48 short voicemail endings that say a
number ("oh", "zero", "double", "triple", pairs, tens, "area code", run
together, fillers between groups, "five fifty-five"…), written apart from the
number checker.  Each is rendered in two voices (Piper joe, espeak-ng) on the
wideband and the telephone channel and graded twice by the whole pipeline:

- with the number actually said as ``--callback-number``: a critical
  ``number_mismatch`` there is false (target: at most 2%);
- with a wrong number (one digit of the last four changed, or another area
  code): a ``number_mismatch`` there is a wrong number caught (target: at least 95%).

Run: ``python bench/numbers_said.py [--voices joe,espeak] [--channels wideband,phone] [--limit N]``
(about 10 minutes on 2 cores for everything; needs what bench/tts.py needs).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import tts  # noqa: E402

from vmgrade import Context, Grader  # noqa: E402

SAYINGS = ROOT / "samples" / "numbers" / "sayings.toml"


def wrong_number(digits: str, k: int) -> str:
    """A different number for saying ``k``: even k change one digit of the last four (never to or
    from a zero, which an ASR slip could explain), odd k another area code."""
    if k % 2:
        area = str((int(digits[:3]) + 111) % 800 + 200)
        return area + digits[3:]
    pos = next(i for i in range(9, 5, -1) if digits[i] != "0")
    new = str(int(digits[pos]) % 9 + 1)
    if new == digits[pos]:
        new = str(int(new) % 9 + 1)
    return digits[:pos] + new + digits[pos + 1:]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--voices", default="joe,espeak")
    ap.add_argument("--channels", default="wideband,phone")
    ap.add_argument("--limit", type=int, default=0, help="only the first N sayings")
    ap.add_argument("--work", type=Path, default=None, help="keep the renders here (default: a temp dir)")
    args = ap.parse_args(argv)
    sayings = tomllib.loads(SAYINGS.read_text(encoding="utf-8"))["saying"]
    if args.limit:
        sayings = sayings[: args.limit]
    work = args.work or Path(tempfile.mkdtemp(prefix="vmgrade-numbers-"))
    grader = Grader()
    rows = []
    for k, s in enumerate(sayings):
        spec = tts.script_spec(s["id"], s["text"], work / "scripts", sample_rate=16000)
        wrong = wrong_number(s["digits"], k)
        for voice in args.voices.split(","):
            for channel in args.channels.split(","):
                path = tts.render_variant(spec, work, voice, channel)
                right = grader.grade(path, Context(callback_number=s["digits"]))
                other = grader.grade(path, Context(callback_number=wrong))
                if not (right.ok and other.ok):
                    print(f"  {s['id']} {voice}/{channel}: error {right.error or other.error}")
                    continue
                rows.append(dict(id=s["id"], form=s["form"], voice=voice, channel=channel,
                                 right=right.content.callback.status, wrong=other.content.callback.status,
                                 heard=right.content.callback.digits, said=s["digits"]))
                r = rows[-1]
                flag = "  <- FALSE MISMATCH" if r["right"] == "mismatch" else (
                    "  <- missed" if r["wrong"] != "mismatch" else "")
                print(f"  {s['id']:34s} {voice:6s} {channel:8s} heard {r['heard']}  true: {r['right']:11s} "
                      f"wrong: {r['wrong']}{flag}", flush=True)
    if not rows:
        print("nothing graded")
        return 1
    print()
    print(f"{len(rows)} gradings of {len(sayings)} sayings ({work})")
    # a number Whisper did not hear as a number at all is no verdict either way (no_callback_number):
    # "caught" counts over the gradings where a number was heard
    print(f"{'':22s} {'n':>4s} {'heard':>6s} {'false critical':>15s} {'caught':>8s} {'true: match':>12s} "
          f"{'unconfirmed':>12s}")
    groups = [("all", rows)] + [(f"{v}/{c}", [r for r in rows if r["voice"] == v and r["channel"] == c])
                                for v in args.voices.split(",") for c in args.channels.split(",")]
    groups += [(f"form {f}", [r for r in rows if r["form"] == f]) for f in sorted({r["form"] for r in rows})]
    for label, rs in groups:
        if not rs:
            continue
        n = len(rs)
        right = Counter(r["right"] for r in rs)
        heard = [r for r in rs if r["wrong"] != "not_said"]
        caught = sum(r["wrong"] == "mismatch" for r in heard) / max(len(heard), 1)
        print(f"{label:22s} {n:4d} {len(heard):6d} {right['mismatch'] / n:15.1%} {caught:8.1%} "
              f"{right['match'] / n:12.1%} {right['unconfirmed'] / n:12.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
