"""Held-out call recordings: message start, message end and beeps on cases written apart from
``vmgrade.calls`` and ``tools/make_calls.py``'s grid.

The greetings are espeak-ng voices and wordings the detector never saw
(``samples/telephony/heldout/``, plus one Asterisk prompt); beep pitches and lengths
(520-1500 Hz, 0.15-1.5 s), messages, the silence after the beep and the noise levels
all lie outside the grid the detector was tuned on. Nothing here may be used to tune it.

Run: ``python bench/call_heldout.py`` (about 10 s).
"""

from __future__ import annotations

import importlib.util
import itertools
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vmgrade import calls  # noqa: E402

HELDOUT = ROOT / "samples" / "telephony" / "heldout"
MESSAGES = ("validity/strong.flac", "validity/apologetic.flac", "validity/rambling.flac",
            "after_practice.wav", "validity/strong_fast.flac")
GREETINGS = ("doctor_office_espeak", "gareth_uk_espeak", "wireless_carrier_espeak", "jess_casual_espeak",
             "privacy-if-error-leave-message-or-hangup")
BEEPS = ((600.0, 0.15), (1200.0, 0.9), (1500.0, 1.5), (520.0, 0.35), (950.0, 0.25))
BEEP_MATCH_S = 0.3  # a found beep within this of a true one counts as that beep


def _builder():
    spec = importlib.util.spec_from_file_location("make_calls_tool", ROOT / "tools" / "make_calls.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    packaged = module.greeting_path
    module.greeting_path = lambda name: next(
        (p for p in (HELDOUT / f"{name}.flac",) if p.exists()), None) or packaged(name)
    return module


def main() -> int:
    mc = _builder()
    start_err, end_err, hits, truths, found_n, channel_ok, channel_n = [], [], 0, 0, 0, 0, 0
    for i, (msg, greeting, (hz, s)) in enumerate(itertools.product(MESSAGES, GREETINGS, BEEPS)):
        if i % 3:
            continue  # a third of the product
        k = i // 3
        spec = mc.CallSpec(message=msg, greeting=greeting, ringback=("us", "uk", None)[k % 3], beep_hz=hz,
                           beep_s=s, beeps=1 + (k % 4 == 0), beep_to_message_s=(0.2, 0.5, 1.0, 1.8)[k % 4],
                           after=(None, "busy", None, "prompt")[k % 4], channels=1 + (k % 5 == 2),
                           rep_channel=k % 2, encoding=("ulaw", "alaw", "pcm16")[k % 3],
                           noise_snr_db=(None, 20.0, 25.0)[k % 3], seed=100 + k)
        built = mc.build_call(spec)
        y, truth = built.samples, built.truth
        mono = (y.mean(axis=1) if y.ndim == 2 else y).astype("float32")
        seg = calls.segment_call(mono, built.rate_hz)
        start = seg.message_start_s
        start_err.append(99.0 if start is None else abs(start - truth["message_start_s"]))
        if seg.message_end_s is not None:
            end_err.append(abs(seg.message_end_s - truth["message_end_s"]))
        found = [b.start_s for b in seg.beeps]
        hits += sum(any(abs(f - t0) < BEEP_MATCH_S for f in found) for t0, _ in truth["beeps"])
        truths += len(truth["beeps"])
        found_n += len(found)
        if y.ndim == 2:
            channel, _ = calls.pick_channel(y.T.astype("float32"), built.rate_hz)
            channel_ok += channel == truth["rep_channel"]
            channel_n += 1
    print(f"recordings: {len(start_err)} (two-channel: {channel_n})")
    print(f"message start error: median {statistics.median(start_err):.3f} s, max {max(start_err):.3f} s")
    print(f"message end error:   median {statistics.median(end_err):.3f} s, max {max(end_err):.3f} s")
    print(f"beeps: recall {hits}/{truths}, precision {hits}/{found_n}")
    print(f"rep channel picked: {channel_ok}/{channel_n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
