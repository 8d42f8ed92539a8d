"""Cost of hostile input: peak RSS and time until vmgrade refuses it; the web app under floods.

Goals (issues 17 and 29): any input costs at most ``GOAL_RSS_MB`` of peak RSS and ``GOAL_S``
seconds before its error, on every decoder path; under a login or an upload flood, another
user's page answers within ``GOAL_OTHER_USER_S``. Each bomb is built in a temp dir, in chunks,
and loaded in a fresh process; decoding runs in that process's decoding child
(:mod:`vmgrade.isolate`), so the figure is the sum of both peaks (``VmHWM`` from /proc, and the
child's ``RUSAGE_CHILDREN`` once it is stopped), so one bomb's memory cannot hide another's.

Bombs:

* ``flac_10h_8ch``: 10 h of 8-channel 8 kHz silence, FLAC (~2 MB on disk).
* ``flac_10h_8ch_no_length``: the same with STREAMINFO's total-samples field
  zeroed ("unknown"), so only the decoder's own cap can stop it.
* ``wav_unknown_length``: 30 min of 8 kHz mono WAV whose data chunk declares
  0xFFFFFFFF bytes (a streaming writer's "unknown").
* ``wav_short_header``: 30 min of WAV whose data chunk declares 2 s.
* ``mp3_chained`` / ``ogg_chained`` / ``aac_adts_chained``: one short silent
  encoding repeated to 10 h (each copy's header states the short length;
  ADTS has none and goes through PyAV).
* ``m4a_7.1_speech`` / ``webm_7.1_speech``: 32 s of speech on 8 channels (AAC, Opus): a
  segfault in PyAV's per-plane access before (exit 139, the run lost); now decoded.
* ``alac_16.7M_frames``: a 0.9 MB ALAC .m4a whose magic cookie declares 16.7 M samples a
  frame at 7 channels (2.5 GB before); refused from the header, ``decode_over_budget``. The
  decoding child's peak (~370 MB) is FFmpeg's own buffers, allocated when it opens the file.
* ``wav_sparse_2gb``: a RIFF header and 2 GB of holes (4 KB on disk): 106 s walking
  zero-size chunks before; now ``not_audio`` after 4096 chunks.
* ``wav_float_+60dB``: real speech as float samples 1000 times full scale: ``out_of_range``.

Run: ``python bench/hostile_input.py [--max-duration 600] [--only NAME] [--web N] [--floods N]``;
with ``--web N`` each bomb is uploaded by N reps at once to a fresh web app (no grading
worker), so the figure is the server's peak (and its decoding child's) while it validates
the uploads; ``--floods N`` runs N made-up logins, then N uploads of one rep, at once against a
live server in its own process, timing another rep's ``/api/me`` (docs/web.md, "Limits").

Result (2 shared cores, limit 600 s; before issue 17 ``flac_10h_8ch`` took 8.8 GB and 51 s)::

    bomb                          size error         time s  peak MB  base MB  goal
    flac_10h_8ch                 2.4MB too_long        0.17      110       55  met
    flac_10h_8ch_no_length       2.4MB too_long        0.48      132       55  met
    wav_unknown_length          28.8MB too_long        0.13      110       55  met
    wav_short_header            28.8MB None            0.15      110       55  met
    mp3_chained                 37.6MB silent          0.14      110       55  met
    ogg_chained                 12.0MB silent          0.14      110       55  met
    aac_adts_chained             6.3MB too_long        0.19      110       55  met
    m4a_7.1_speech               1.7MB None            0.44      119       55  met
    webm_7.1_speech              1.6MB None            0.65      121       55  met
    alac_16.7M_frames            0.9MB decode_over_budget    0.42      424       55  met
    wav_sparse_2gb            2147.5MB not_audio       0.13      110       55  met
    wav_float_+60dB              0.6MB out_of_range    0.13      110       55  met

``--web 3`` (three reps upload the bomb at once; the server and its decoding child): at most
533 MB (``alac_16.7M_frames``; the others 230-433 MB) and 1.5 s; files over the 20 MB upload
limit are answered 413 from their Content-Length, unread. ``--floods 60``::

    flood       n  time s  other p50 s  other max s other saw   peak MB  flood answers  goal
    login      60     4.0        0.030        0.060 [200]           229  401: 8, 429: 52 met
    upload     60     2.5        0.010        0.243 [200]           229  200: 9, 202: 1, 429: 50 met

``wav_short_header``, ``mp3_chained`` and ``ogg_chained`` decode only what
their header declares (2 s, the first 10-s copy), so they cost nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GOAL_RSS_MB = 800.0
GOAL_S = 20.0
GOAL_OTHER_USER_S = 2.0  # another user's page under a login or upload flood
MAX_UPLOAD_BYTES = 20 * 2**20  # the web app's default upload limit (vmgrade.web.storage)
CHUNK_S = 60  # seconds of audio written per call, so building a bomb stays small in memory

# Both children report their own peak RSS with this.
_PEAK = r"""
import resource
def decoder_peak_mb():
    # The decoding child's peak (vmgrade.isolate): stop it, so its rusage reaches this process.
    from vmgrade.audio import stop_decoder
    stop_decoder()
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
def peak_mb():
    # VmHWM: this process's own peak. ru_maxrss carries the parent's peak across fork and exec
    # (Linux), so under a test runner holding a model it would report the runner.
    try:
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) / 1024 for l in f if l.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""

# The child: import what decoding needs (the baseline), then load and report.
_CHILD = _PEAK + r"""
import json, sys, time
import numpy, soundfile, soxr
try:
    import av  # noqa: F401
except ImportError:
    pass
from vmgrade.audio import load
from vmgrade.errors import VmgradeError
base_mb = peak_mb()
t0 = time.perf_counter()
try:
    audio = load(sys.argv[1], max_duration_s=float(sys.argv[2]))
    code, detail = None, f"decoded {audio.duration_s:.1f} s"
except VmgradeError as exc:
    code, detail = exc.code, exc.message
seconds = time.perf_counter() - t0
own_mb, child_mb = peak_mb(), decoder_peak_mb()
print(json.dumps({"code": code, "detail": detail, "seconds": seconds, "peak_rss_mb": own_mb + child_mb,
                  "baseline_rss_mb": base_mb, "decoder_peak_mb": child_mb}))
"""


# The web child: a real app (no grading worker) and ``uploads`` logged-in reps who each upload
# the file at the same moment; the server's validation is what is measured. (One rep's own
# uploads past the per-user limit are answered 429 before any decoding.)
_WEB_CHILD = _PEAK + r"""
import json, sys, tempfile, threading, time
from pathlib import Path
from fastapi.testclient import TestClient
from vmgrade.web.accounts import add_user
from vmgrade.web.app import create_app
app = create_app(Path(tempfile.mkdtemp()) / "data", secret_key="bench", start_worker=False,
                 max_duration_s=float(sys.argv[2]))
password = "a long enough bench passphrase"
n_uploads = int(sys.argv[3])
with app.state.sessions() as session:
    for i in range(n_uploads):
        add_user(session, f"rep{i}", password, "rep", "east")
clients = []
for i in range(n_uploads):
    client = TestClient(app)
    token = client.get("/api/csrf").json()["csrf_token"]
    token = client.post("/api/login", json={"username": f"rep{i}", "password": password},
                        headers={"X-CSRF-Token": token}).json()["csrf_token"]
    clients.append((client, token))
answers = []
def upload(client, token):
    with open(sys.argv[1], "rb") as f:
        r = client.post("/api/uploads", files={"file": ("bomb", f, "application/octet-stream")},
                        headers={"X-CSRF-Token": token})
    answers.append(f"{r.status_code} {r.json().get('code')}")
base_mb = peak_mb()
t0 = time.perf_counter()
threads = [threading.Thread(target=upload, args=pair) for pair in clients]
for t in threads: t.start()
for t in threads: t.join()
codes = sorted(set(a.split()[1] for a in answers))
seconds = time.perf_counter() - t0
own_mb, child_mb = peak_mb(), decoder_peak_mb()
print(json.dumps({"code": codes[0] if len(codes) == 1 else ",".join(codes), "detail": "; ".join(answers),
                  "seconds": seconds, "peak_rss_mb": own_mb + child_mb, "baseline_rss_mb": base_mb,
                  "decoder_peak_mb": child_mb}))
"""


# The flood server: a real app served by uvicorn (no grading worker, real argon2 hashes) in a
# process of its own, so the flooding clients (this process) do not share its interpreter. It
# prints its port, serves until its stdin closes, then prints its peak RSS.
_FLOOD_SERVER = _PEAK + r"""
import json, socket, sys, tempfile, threading, time
from pathlib import Path
import uvicorn
from vmgrade.web.accounts import add_user
from vmgrade.web.app import create_app
app = create_app(Path(tempfile.mkdtemp()) / "data", secret_key="bench", start_worker=False)
with app.state.sessions() as session:
    for name in ("rita", "ravi"):
        add_user(session, name, sys.argv[1], "rep", "east")
with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
threading.Thread(target=server.run, daemon=True).start()
while not server.started:
    time.sleep(0.05)
print(port, flush=True)
sys.stdin.read()
print(json.dumps({"peak_rss_mb": peak_mb()}), flush=True)
"""
_FLOOD_PASSWORD = "a long enough bench passphrase"


async def _flood(url: str, kind: str, n: int, clip: bytes) -> dict:
    """One flood of ``n`` requests while ravi polls /api/me every 0.1 s; what ravi and the flood saw."""
    import asyncio
    import time
    import uuid

    import httpx

    async def login(client, user, password=_FLOOD_PASSWORD):
        first = await client.get("/api/csrf")
        if first.status_code != 200:  # refused at the door (429): that is the flood's answer
            return first
        token = first.json()["csrf_token"]
        return await client.post("/api/login", json={"username": user, "password": password},
                                 headers={"X-CSRF-Token": token})

    async def slow_body():  # every upload is in flight at once
        yield (b'--zz\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
               b"Content-Type: audio/wav\r\n\r\n")
        await asyncio.sleep(1.5)
        yield clip + b"\r\n--zz--\r\n"

    async def anonymous_login(client):
        return await login(client, uuid.uuid4().hex, "wrong " + uuid.uuid4().hex)

    limits = httpx.Limits(max_connections=n + 10)
    t0 = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=120) as ravi, \
            httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as rita:
        await login(ravi, "ravi")
        headers = {"X-CSRF-Token": (await login(rita, "rita")).json()["csrf_token"],
                   "Content-Type": "multipart/form-data; boundary=zz"}
        # Each anonymous client (its own cookies) is made before the clock starts: making one loads
        # the CA certificates (~30 ms), which would stall this loop, not the server.
        anonymous = [httpx.AsyncClient(base_url=url, timeout=120) for _ in range(n if kind == "login" else 0)]
        tasks = [asyncio.create_task(anonymous_login(anonymous[i]) if kind == "login" else
                                     rita.post("/api/uploads", content=slow_body(), headers=headers))
                 for i in range(n)]
        latencies, statuses = [], []
        while not all(t.done() for t in tasks):
            started = time.perf_counter()
            response = await ravi.get("/api/me")
            latencies.append(time.perf_counter() - started)
            statuses.append(response.status_code)
            await asyncio.sleep(0.1)
        answers = [(await t).status_code for t in tasks]
        for client in anonymous:
            await client.aclose()
    latencies.sort()
    return {"flood": kind, "n": n, "seconds": time.perf_counter() - t0,
            "other_user_max_s": latencies[-1], "other_user_p50_s": latencies[len(latencies) // 2],
            "other_user_statuses": sorted(set(statuses)),
            "flood_statuses": {str(c): answers.count(c) for c in sorted(set(answers))}}


def floods(n: int = 60, timeout_s: float = 600.0) -> list[dict]:
    """Login and upload floods of ``n`` requests against a live server; another user's latency.

    Returns one dict per flood: ``other_user_max_s`` (the goal: <= ``GOAL_OTHER_USER_S``), the
    statuses both saw, and the server's peak RSS over both floods.
    """
    import asyncio

    import soundfile as sf

    python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": python_path}
    with tempfile.TemporaryDirectory() as tmp:
        clip_path = Path(tmp) / "clip.wav"
        sf.write(str(clip_path), _speech(None, 16000, 3.0), 16000)
        clip = clip_path.read_bytes()
    server = subprocess.Popen([sys.executable, "-c", _FLOOD_SERVER, _FLOOD_PASSWORD], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        url = f"http://127.0.0.1:{int(server.stdout.readline())}"
        results = [asyncio.run(_flood(url, kind, n, clip)) for kind in ("login", "upload")]
        tail, _ = server.communicate("", timeout=timeout_s)
    finally:
        if server.poll() is None:
            server.kill()
    peak = json.loads(tail.strip().splitlines()[-1])["peak_rss_mb"]
    return [dict(r, peak_rss_mb=peak) for r in results]


def measure(path: str | os.PathLike, max_duration_s: float = 600.0, timeout_s: float = 300.0,
            web_uploads: int = 0) -> dict:
    """Load ``path`` in a fresh process; its error code, seconds and peak RSS (MB).

    With ``web_uploads`` > 0, upload it that many times at once to a fresh web app
    instead (the server's own validation), and report the web answer's code.
    """
    python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": python_path}
    child = [_WEB_CHILD, os.fspath(path), str(max_duration_s), str(web_uploads)] if web_uploads else \
        [_CHILD, os.fspath(path), str(max_duration_s)]
    out = subprocess.run([sys.executable, "-c", *child], capture_output=True, text=True, env=env,
                         timeout=timeout_s)
    if out.returncode != 0:
        return {"code": f"crashed (exit {out.returncode})", "detail": out.stderr.strip()[-300:],
                "seconds": float("nan"), "peak_rss_mb": float("nan"), "baseline_rss_mb": float("nan"),
                "decoder_peak_mb": float("nan")}
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------
# Bombs
# --------------------------------------------------------------------------


def flac_silence(path: Path, seconds: float, channels: int = 8, sr: int = 8000,
                 declared_frames: int | None = None) -> Path:
    """Silence as FLAC, written ``CHUNK_S`` at a time; ``declared_frames`` rewrites STREAMINFO's length."""
    import soundfile as sf

    block = np.zeros((CHUNK_S * sr, channels), np.int16)
    left = int(seconds * sr)
    with sf.SoundFile(str(path), "w", samplerate=sr, channels=channels, format="FLAC", subtype="PCM_16") as f:
        while left > 0:
            f.write(block[: min(left, len(block))])
            left -= len(block)
    if declared_frames is not None:
        _set_flac_total_samples(path, declared_frames)
    return path


def _set_flac_total_samples(path: Path, frames: int) -> None:
    """Overwrite the 36-bit total-samples field of STREAMINFO (0 means unknown)."""
    with open(path, "r+b") as f:
        head = f.read(26)
        assert head[:4] == b"fLaC" and head[4] & 0x7F == 0, "STREAMINFO must be the first block"
        word = int.from_bytes(head[18:26], "big")  # sample rate, channels, bits, total samples
        word = (word & ~((1 << 36) - 1)) | (frames & ((1 << 36) - 1))
        f.seek(18)
        f.write(word.to_bytes(8, "big"))


def wav_declaring(path: Path, seconds: float, declared_bytes: int, sr: int = 8000) -> Path:
    """A 16-bit mono WAV of quiet noise whose RIFF and data sizes say ``declared_bytes``."""
    rng = np.random.default_rng(0)
    with open(path, "wb") as f:
        f.write(b"RIFF" + min(declared_bytes + 36, 0xFFFFFFFF).to_bytes(4, "little") + b"WAVE")
        f.write(b"fmt " + (16).to_bytes(4, "little"))
        f.write((1).to_bytes(2, "little") + (1).to_bytes(2, "little") + sr.to_bytes(4, "little")
                + (2 * sr).to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little"))
        f.write(b"data" + declared_bytes.to_bytes(4, "little"))
        left = int(seconds * sr)
        while left > 0:
            n = min(left, CHUNK_S * sr)
            f.write(rng.integers(-300, 300, n, dtype=np.int16).tobytes())
            left -= n
    return path


def chained(path: Path, seconds: float, write_unit: Callable[[Path], None], unit_s: float = 10.0) -> Path:
    """``write_unit`` encodes ``unit_s`` of silence; its bytes are repeated to ``seconds``."""
    unit = path.with_name("unit" + path.suffix)
    write_unit(unit)
    data = unit.read_bytes()
    unit.unlink()
    with open(path, "wb") as f:
        for _ in range(int(seconds / unit_s)):
            f.write(data)
    return path


def _sf_unit(fmt: str, subtype: str | None = None, sr: int = 8000, unit_s: float = 10.0):
    def write(path: Path) -> None:
        import soundfile as sf

        sf.write(str(path), np.zeros(int(unit_s * sr), np.float32), sr, format=fmt, subtype=subtype)
    return write


def _adts_unit(path: Path, sr: int = 16000, unit_s: float = 10.0) -> None:
    import av

    x = np.zeros((1, int(unit_s * sr)), np.float32)
    with av.open(str(path), "w", format="adts") as out:
        stream = out.add_stream("aac", rate=sr)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(x, format="flt", layout="mono")
        frame.sample_rate = sr
        fmt = stream.codec_context.format.name
        for f in av.AudioResampler(format=fmt, layout="mono", rate=sr).resample(frame):
            for packet in stream.encode(f):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def surround_speech(path: Path, codec: str = "aac", layout: str = "7.1", speech: Path | None = None,
                    seconds: float = 32.0) -> Path:
    """A real recording's speech on every channel of a ``layout`` file (7.1: 8 channels), via PyAV.

    A phone or a conferencing tool writes such files; PyAV's per-plane access crashed on 8.
    """

    return _encode(path, _speech(speech, 48000, seconds), 48000, codec, layout)


def _encode(path: Path, x: np.ndarray, sr: int, codec: str, layout: str, container: str | None = None,
            block: int = 4096) -> Path:
    """Mono samples ``x`` on every channel of ``layout``, encoded with PyAV's ``codec``.

    Frames go in packed (one plane: PyAV's per-plane access fails on 8 channels) as float, or as
    16-bit for an int16 ``x``; the codec's own sample format comes from a resampler.
    """
    import av

    fmt = "s16" if x.dtype == np.int16 else "flt"
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=sr, layout=layout)
        channels = stream.codec_context.layout.nb_channels
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout=layout, rate=sr)
        for start in range(0, len(x), block):
            samples = np.repeat(x[start:start + block, None], channels, axis=1)
            frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format=fmt, layout=layout)
            frame.sample_rate = sr
            for f in resampler.resample(frame):
                for packet in stream.encode(f):
                    out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def _speech(speech: Path | None, sr: int, seconds: float) -> np.ndarray:
    """``seconds`` of a bundled sample's speech (looped) at ``sr``, float32 mono."""
    from vmgrade.audio import load

    audio = load(speech or ROOT / "samples" / "strong_wideband.flac", sample_rate=sr)
    reps = int(np.ceil(seconds * sr / len(audio.samples)))
    return np.tile(audio.samples, reps)[: int(seconds * sr)].astype(np.float32)


def alac_declaring(path: Path, frame_samples: int = 1 << 24, channels: int = 7, sr: int = 48000) -> Path:
    """A short ALAC .m4a whose magic cookie declares ``frame_samples`` per frame.

    FFmpeg's decoder accepts up to 4096 x 4096 = 16.7 M and allocates a frame of that
    many samples per channel: 470 MB at 7 channels, before a caller sees any of it.
    """
    layout = {1: "mono", 2: "stereo", 7: "6.1(back)", 8: "7.1(wide)"}[channels]  # what ALAC takes
    _encode(path, (_speech(None, sr, 2.0) * 32767).astype(np.int16), sr, "alac", layout, container="ipod")
    data = bytearray(path.read_bytes())
    # The cookie: size (36), 'alac', version (4 bytes), then frameLength.
    at = data.find(b"\x00\x00\x00\x24alac") + 4
    assert at > 3, "no ALAC magic cookie written"
    data[at + 8:at + 12] = frame_samples.to_bytes(4, "big")
    path.write_bytes(bytes(data))
    return path


def adts_format_change(path: Path, seconds: float = 3.0) -> Path:
    """Two ADTS AAC streams end to end, 16 kHz mono then 44.1 kHz stereo (a raw RuntimeError before)."""
    def one(sr: int, layout: str) -> bytes:
        unit = _encode(path.with_name(f"unit-{sr}.aac"), _speech(None, sr, seconds), sr, "aac", layout,
                       container="adts")
        data = unit.read_bytes()
        unit.unlink()
        return data

    path.write_bytes(one(16000, "mono") + one(44100, "stereo"))
    return path


def wav_sparse(path: Path, size_bytes: int = 2 * 2**30) -> Path:
    """A RIFF/WAVE header followed by ``size_bytes`` of holes (4 KB on disk): zero-size chunks all the way."""
    with open(path, "wb") as f:
        f.write(b"RIFF" + (0xFFFFFFF0).to_bytes(4, "little") + b"WAVE")
        f.truncate(size_bytes)
    return path


def float_over_range(path: Path, gain: float = 1000.0, seconds: float = 10.0) -> Path:
    """A 32-bit float WAV of real speech at ``gain`` times full scale (+60 dB)."""
    import soundfile as sf

    x = _speech(None, 16000, seconds)
    sf.write(str(path), x / np.max(np.abs(x)) * gain, 16000, subtype="FLOAT")
    return path


HOUR_S = 3600.0
BOMBS: dict[str, Callable[[Path], Path]] = {
    "flac_10h_8ch": lambda d: flac_silence(d / "a.flac", 10 * HOUR_S),
    "flac_10h_8ch_no_length": lambda d: flac_silence(d / "b.flac", 10 * HOUR_S, declared_frames=0),
    "wav_unknown_length": lambda d: wav_declaring(d / "c.wav", 0.5 * HOUR_S, 0xFFFFFFFF),
    "wav_short_header": lambda d: wav_declaring(d / "d.wav", 0.5 * HOUR_S, 2 * 8000 * 2),
    "mp3_chained": lambda d: chained(d / "e.mp3", 10 * HOUR_S, _sf_unit("MP3")),
    "ogg_chained": lambda d: chained(d / "f.ogg", 10 * HOUR_S, _sf_unit("OGG", "VORBIS")),
    "aac_adts_chained": lambda d: chained(d / "g.aac", 10 * HOUR_S, _adts_unit),
    "m4a_7.1_speech": lambda d: surround_speech(d / "h.m4a", "aac"),
    "webm_7.1_speech": lambda d: surround_speech(d / "i.webm", "libopus"),
    "alac_16.7M_frames": lambda d: alac_declaring(d / "j.m4a"),
    "wav_sparse_2gb": lambda d: wav_sparse(d / "k.wav"),
    "wav_float_+60dB": lambda d: float_over_range(d / "l.wav"),
    "aac_format_change": lambda d: adts_format_change(d / "m.aac"),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max-duration", type=float, default=600.0, help="the limit passed to load (s)")
    ap.add_argument("--only", action="append", choices=sorted(BOMBS), help="run only this bomb (repeat)")
    ap.add_argument("--web", type=int, default=0, metavar="N",
                    help="upload each bomb N times at once to a fresh web app instead of loading it")
    ap.add_argument("--floods", type=int, default=0, metavar="N",
                    help="instead: N made-up logins, then N uploads of one rep, at once against a live "
                         "server, timing another rep's /api/me")
    args = ap.parse_args()
    if args.floods:
        return _print_floods(args.floods)
    failed = 0
    print(f"{'bomb':<24} {'size':>9} {'error':<12} {'time s':>7} {'peak MB':>8} {'base MB':>8}  goal")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only or BOMBS:
            try:
                path = BOMBS[name](Path(tmp))
            except Exception as exc:  # an encoder missing from this build
                print(f"{name:<24} skipped: cannot build it here ({exc})")
                continue
            if args.web and path.stat().st_size > MAX_UPLOAD_BYTES:
                # the server answers 413 from the Content-Length alone; the test client would first
                # read the whole file into this process's memory
                print(f"{name:<24} {path.stat().st_size / 1e6:>7.1f}MB over the upload limit: 413 unread")
                path.unlink()
                continue
            r = measure(path, args.max_duration, web_uploads=args.web)
            ok = r["seconds"] <= GOAL_S and r["peak_rss_mb"] <= GOAL_RSS_MB
            failed += not ok
            print(f"{name:<24} {path.stat().st_size / 1e6:>7.1f}MB {str(r['code']):<12} {r['seconds']:>7.2f} "
                  f"{r['peak_rss_mb']:>8.0f} {r['baseline_rss_mb']:>8.0f}  {'met' if ok else 'MISSED'}")
            path.unlink()
    print(f"\ngoal: <= {GOAL_RSS_MB:.0f} MB peak RSS and <= {GOAL_S:.0f} s to the error, every bomb")
    return 1 if failed else 0


def _print_floods(n: int) -> int:
    print(f"{'flood':<8} {'n':>4} {'time s':>7} {'other p50 s':>12} {'other max s':>12} {'other saw':<10} "
          f"{'peak MB':>8}  flood answers  goal")
    failed = 0
    for r in floods(n):
        ok = r["other_user_max_s"] <= GOAL_OTHER_USER_S and r["other_user_statuses"] == [200]
        failed += not ok
        answers = ", ".join(f"{k}: {v}" for k, v in r["flood_statuses"].items())
        print(f"{r['flood']:<8} {r['n']:>4} {r['seconds']:>7.1f} {r['other_user_p50_s']:>12.3f} "
              f"{r['other_user_max_s']:>12.3f} {str(r['other_user_statuses']):<10} {r['peak_rss_mb']:>8.0f}  "
              f"{answers:<14} {'met' if ok else 'MISSED'}")
    print(f"\ngoal: another user's page answers 200 within {GOAL_OTHER_USER_S:.0f} s throughout")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
