"""Speech to text with word timings: the ``Transcript`` type and its engines.

The default engine is openai-whisper on the CPU (fp32, temperature 0,
English; on a CUDA GPU when there is one, fp16: :func:`resolve_device`),
with word timestamps from cross-attention DTW. Whisper drops filler words
unless its prompt contains some, and such a prompt nudges other words too;
so each window is decoded without it and the prompted model only places
the fillers (:mod:`vmgrade.asr.speedups.filler_probe`). On the corpus's disfluent clips
that recovers every reference "uh"/"um" at the unprompted WER
(``bench/filler_prompt.py`` measures it).

A recording whose speech runs a little past one 30-s window is fitted into
one before either engine reads it (:mod:`vmgrade.asr.windows`), and every time
is mapped back to the recording.

Speed: torch uses every core this process may run on; each 30-s window is
encoded, and its cross-attention keys and values projected, once, though
whisper asks again to align words (:func:`EncoderMemo`,
:func:`memo_audio_projections`); the vocabulary projection is int8 with exact
rescoring (:mod:`vmgrade.asr.speedups.quantize`); greedy tokens are drafted by an int8
copy of the decoder and checked by the fp32 one, several per pass
(:mod:`vmgrade.asr.speedups.speculative`); whisper's numba DTW is replaced by a
numpy one (:mod:`vmgrade.asr.speedups.dtw`) that spares a cold start numba's start-up,
and its median filter runs in blocks of rows;
the model loads memory-mapped, with the garbage collector paused, and
tiktoken skips its special-token scan (:mod:`vmgrade.asr.speedups.startup`).
``bench/goals.py`` measures the result.

The ``"ctranslate2"`` engine (:class:`CTranslate2Transcriber`, the optional
``vmgrade[fast]`` extra) runs the same weights through faster-whisper, int8
on the CPU, with the same thresholds and hallucination filter, and returns
the same :class:`Transcript`; by default greedily and without the filler
prompt (:data:`CTRANSLATE2_BEAM_SIZE`, :func:`default_filler_prompt`).
``bench/asr_speed.py`` compares the engines.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from difflib import SequenceMatcher
from pathlib import Path
from typing import Protocol

import numpy as np

from .. import progress
from ..audio import Audio
from ..errors import ModelError
from ..memory import release_freed_memory
from ..transcript import Segment, Transcript, Word  # the engines' result types (also imported from here)
from .speedups.cross_file import BatchingWhisper, Rendezvous, SharedDecoding
from .speedups.memo import EncoderMemo, forget_memos, memo_audio_projections
from .speedups.silent_windows import SilentWindows
from .threads import MIN_SAMPLE_S, default_threads, idle_cores, limit_threads, snapshot
from .windows import AsrInput, fit_to_window

DEFAULT_LANGUAGE = "en"
# What reports record as ``model.precision``.
PRECISION_FP32 = "fp32"
PRECISION_INT8_LOGITS = "fp32-int8-logits"  # fp32, the vocabulary projection int8 (asr.speedups.quantize)
# the encoder in bf16 where the CPU has bf16 matrix units (asr.speedups.bf16), the decoder as above
PRECISION_BF16_ENCODER = "bf16-encoder"
PRECISION_BF16_ENCODER_INT8_LOGITS = "bf16-encoder-int8-logits"
PRECISION_INT8 = "int8"  # ctranslate2
PRECISION_FP16 = "fp16"  # either engine on a CUDA GPU
DEVICES = ("auto", "cpu", "cuda")  # "auto": a CUDA GPU when the engine can use one, else the CPU
FILLER_PROMPT = "Uh, so, um, I was, uh, calling about, um, the, uh, thing."

# Decoding guards against invented text (whisper's defaults, made explicit).
NO_SPEECH_THRESHOLD = 0.6
LOGPROB_THRESHOLD = -1.0
COMPRESSION_RATIO_THRESHOLD = 2.4
# Skip silent stretches longer than this (s) when whisper's own hallucination
# heuristic fires around them.
HALLUCINATION_SILENCE_S = 2.0
# A segment whose audio is quieter than this (dBFS RMS) holds no speech.
SEGMENT_SILENCE_DBFS = -50.0
# Phrases Whisper is known to invent on silence or noise (learned from
# subtitles); dropped only when the segment is also doubtful.
HALLUCINATION_PHRASES = (
    "thank you for watching",
    "thanks for watching",
    "please subscribe",
    "subscribe to my channel",
    "like and subscribe",
    "see you in the next video",
    "subtitles by",
    "transcription by",
    "amara.org",
)
DOUBTFUL_NO_SPEECH_PROB = 0.3
# On tones and noise a prompted Whisper can echo its prompt back: a doubtful
# segment whose word sequence mostly repeats the prompt's is dropped.
PROMPT_ECHO_SIMILARITY = 0.6  # difflib ratio of word sequences
PROMPT_ECHO_MIN_WORDS = 3
# Words Whisper itself barely believes (mean probability) in a doubtful segment.
DOUBTFUL_WORD_PROBABILITY = 0.15


@dataclass(frozen=True)
class TranscribeOptions:
    """How to run the recogniser."""

    language: str = DEFAULT_LANGUAGE
    initial_prompt: str | None = FILLER_PROMPT
    # None: each engine's default, greedy on both (CTRANSLATE2_BEAM_SIZE).
    beam_size: int | None = None
    # intra-op threads; None: the cores other work leaves idle when the model loads (threads.default_threads)
    threads: int | None = None
    # openai-whisper: the vocabulary projection in int8 with exact rescoring
    # (vmgrade.asr.speedups.quantize); False keeps it fp32. ctranslate2 is int8 throughout.
    int8_logits: bool = True
    # openai-whisper with a prompt: decode without it, and let the prompted
    # model place only the fillers (vmgrade.asr.speedups.filler_probe); False: the prompt
    # conditions every word, as whisper's own initial_prompt does.
    filler_probe: bool = True
    # openai-whisper, greedy, int8 logits: an int8 copy of the decoder drafts
    # tokens that the fp32 decoder checks (vmgrade.asr.speedups.speculative); False: one
    # fp32 decoder step per token, as whisper does.
    speculative: bool = True
    # A recording just over one 30-s window is fitted into one: edge silence
    # trimmed, played slightly faster (vmgrade.asr.windows); False: read as recorded.
    fit_window: bool = True
    # openai-whisper on a CPU with bf16 matrix units (AMX): the encoder under bf16 autocast
    # (vmgrade.asr.speedups.bf16); False, or a CPU without them: fp32.
    bf16_encoder: bool = True
    # "auto": a CUDA GPU where the engine sees one (fp16, the CPU speed-ups off), else the CPU;
    # "cpu"; or "cuda" (an error where there is none). See resolve_device.
    device: str = "auto"


class Transcriber(Protocol):
    """Anything that turns ``Audio`` into a ``Transcript`` (one engine per class)."""

    engine: str
    model_name: str
    precision: str  # the numeric format the weights run in, as reports record it

    def transcribe(self, audio: Audio) -> Transcript: ...


class _LoadsOnce:
    """A recogniser's model: loaded once, at first use or ahead of it in a thread (:meth:`preload`)."""

    _model = None
    _load_lock = threading.Lock()  # one load at a time in a process (a model is ~1 GB)
    _preloading: threading.Thread | None = None

    def _load(self):
        raise NotImplementedError

    @property
    def model(self):
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def preload(self) -> None:
        """Start loading the model in a background thread, unless it is loaded or loading.

        A CLI grade loads the model while the file's call segmentation and speaker check run
        (0.7-0.9 s of a cold 9-s grade on 2 cores, docs/performance.md). An error is left for
        the first use to raise. The thread is not a daemon: the process waits for the load.
        """
        if self._model is None and self._preloading is None:
            self._preloading = threading.Thread(target=self._load_quietly, name="vmgrade-model-load")
            self._preloading.start()

    def _load_quietly(self) -> None:
        try:
            self.model  # noqa: B018 - loads it
        except Exception:  # noqa: BLE001 - the first use loads again and raises it there
            pass


class WhisperTranscriber(_LoadsOnce):
    """openai-whisper, on the CPU or a CUDA GPU (:func:`resolve_device`); the model loads once, on first use.

    On a GPU it runs as openai-whisper does there (fp16 activations, the
    filler probe and the light word alignment kept); the int8 vocabulary
    projection and the int8 draft are CPU speed-ups and stay off.

    Parameters
    ----------
    model : str
        Model name or path, as accepted by :func:`vmgrade.asr.weights.resolve`.
    options : TranscribeOptions
        Decoding settings.
    """

    engine = "openai-whisper"

    def __init__(self, model: str = "base", options: TranscribeOptions | None = None):
        from . import weights

        self.options = options or TranscribeOptions()
        self.spec = weights.resolve(model)  # fail fast on a bad model name
        self.model_name = self.spec.name
        self._precision: str | None = None  # set by the load where the int8 kernels are missing
        self._model = None
        self.threads: int | None = None  # set when the model loads
        self._cpu_mark = None  # the CPU counters when the last file began (_fit_threads)
        # Threads transcribing at once share batched decoder passes (speedups.cross_file), and
        # take turns on the rest of the model: whisper's decoding and word alignment hook its
        # shared modules.
        self.rendezvous = Rendezvous()
        self.shared = SharedDecoding(self.rendezvous)
        self._batches = False  # set by the load: whether the decoding batches across files

    @functools.cached_property
    def device(self) -> str:
        """``"cuda"`` or ``"cpu"`` (:func:`resolve_device`; torch is imported to ask, not before)."""
        return resolve_device(self.engine, self.options.device)

    @property
    def precision(self) -> str:
        if self._precision is not None:
            return self._precision
        if self.device == "cuda":
            return PRECISION_FP16  # whisper's own GPU path; the int8 speed-ups are for CPUs
        if self.uses_bf16_encoder:
            return PRECISION_BF16_ENCODER_INT8_LOGITS if self.options.int8_logits else PRECISION_BF16_ENCODER
        return PRECISION_INT8_LOGITS if self.options.int8_logits else PRECISION_FP32

    @functools.cached_property
    def uses_bf16_encoder(self) -> bool:
        """Whether the encoder runs in bf16 (asked for, on a CPU with bf16 matrix units)."""
        from .speedups.bf16 import cpu_has_native_bf16

        return self.options.bf16_encoder and self.device == "cpu" and cpu_has_native_bf16()

    def _load(self):
        from .speedups.startup import gc_paused

        with gc_paused():  # the imports and the model live as long as the process
            return self._load_whisper()

    def _load_whisper(self):
        from .speedups.startup import import_whisper, skip_special_token_scan

        import_whisper()  # before anything else imports it: without numba's start-up

        from whisper.tokenizer import get_tokenizer

        from . import weights
        from .speedups import speculative
        from .speedups.dtw import use_light_alignment
        from .speedups.filler_probe import decode_with_fillers
        from .speedups.quantize import RESCORE_TOP_K, int8_decoders

        self.threads = self.options.threads or default_threads()
        limit_threads(self.threads)
        progress.notice(f"loading the Whisper model '{self.spec.name}' (openai-whisper, {self.device})")
        model = weights.load_whisper(self.spec, self.device)
        if self.uses_bf16_encoder:
            from .speedups.bf16 import bf16_encoder

            model.encoder = bf16_encoder(model.encoder)
        model.encoder = EncoderMemo(model.encoder, turns=self.shared.turns)
        model.decoder_turns = self.shared.turns  # textdecoder.turns_of
        memo_audio_projections(model.decoder)
        tokenizer = get_tokenizer(model.is_multilingual, num_languages=model.num_languages)
        skip_special_token_scan(tokenizer.encoding)
        decode = _whisper_decode_in_turn
        if self.options.int8_logits and self.device == "cpu":
            top_k = max(RESCORE_TOP_K, (self.options.beam_size or 1) + 1)
            decoder, draft = int8_decoders(model.decoder, tokenizer.eot, top_k,
                                           draft=self.options.speculative)
            if decoder is None:  # no int8 CPU kernels in this torch build
                self._precision = PRECISION_BF16_ENCODER if self.uses_bf16_encoder else PRECISION_FP32
            else:
                model.decoder = decoder
            if draft is not None:
                # an int8 copy drafts greedy tokens, the fp32 decoder checks them; files
                # transcribed at once in threads share those passes
                decode = functools.partial(speculative.decode, draft=draft, fallback=decode,
                                           forward=self.shared.forward)
                # transcriptions on the draft's path (greedy at temperature 0, the language given)
                # batch across files; any other holds the whole model, in turn
                self._batches = bool(self.options.language) and (self.options.beam_size or 1) == 1
        if self.options.filler_probe:
            # transcribe() calls model.decode once per window
            model.decode = functools.partial(decode_with_fillers, model, decode=decode)
        else:
            model.decode = functools.partial(decode, model)
        use_light_alignment()
        self._cpu_mark = snapshot()
        return model

    def _fit_threads(self) -> None:
        """Before each file, follow the idle cores again (unless ``threads`` was given), and take
        torch's pool back to that count where another stage changed it (the speaker check).

        A process that started on a quiet machine keeps all its threads when other work starts
        (another grading process): threads on busy cores hold every step's barrier up.
        """
        if self._model is None or self.device != "cpu":
            return
        import torch

        threads = self.threads
        # within MIN_SAMPLE_S of the last fit (the load's, for a CLI's one file) the counters say too
        # little: measuring would first sample for SAMPLE_S (0.15 s of every cold CLI grade)
        fresh = self._cpu_mark is not None and time.monotonic() - self._cpu_mark.wall_s < MIN_SAMPLE_S
        if not self.options.threads and not fresh:
            threads = default_threads(idle_cores(since=self._cpu_mark))
            self._cpu_mark = snapshot()
        if threads != self.threads or torch.get_num_threads() != threads:
            limit_threads(threads)
            self.threads = threads

    def transcribe(self, audio: Audio) -> Transcript:
        """Transcribe ``audio`` (16 kHz mono) with word timestamps."""
        opts = self.options
        asr_input = _asr_input(audio, opts)
        _ = self.model  # loaded before choosing how to share it
        with self.rendezvous.taking_part() if self._batches else self.shared.turns:
            if not self.rendezvous.others():
                self._fit_threads()  # the thread count is the process's: not while others decode
            try:
                result = self._transcribe_samples(asr_input.samples)
            finally:
                # the memos serve the passes over one window; another file's windows differ
                forget_memos(self._model)
                if self._model is not None:
                    from .speedups.quantize import release_vocab_pages

                    release_vocab_pages(self._model.decoder)
                # what torch freed stays in glibc's heap: give it back before the later stages allocate
                release_freed_memory()
        segments = [_segment(s, audio.duration_s, asr_input) for s in result["segments"]]
        return _transcript(
            segments, audio, asr_input, result.get("language") or opts.language, opts, self.engine,
            self.model_name,
        )

    def reread(self, audio: Audio, prompt: str) -> str:
        """The text of a short clip (up to 30 s, 16 kHz) decoded once, greedily, after ``prompt``.

        A second listen to one phrase (a callback number whose digits the
        transcript may have dropped): no timestamps, no filler probe.
        """
        import torch
        import whisper
        from whisper.decoding import DecodingOptions, decode

        model = self.model
        x = whisper.pad_or_trim(np.asarray(audio.samples, dtype=np.float32))
        mel = whisper.log_mel_spectrogram(torch.from_numpy(x), model.dims.n_mels).to(self.device)
        with self.shared.turns:
            try:
                result = decode(model, mel, DecodingOptions(language=self.options.language, prompt=prompt,
                                                            without_timestamps=True,
                                                            fp16=self.device == "cuda", temperature=0.0))
            finally:
                forget_memos(model)
        return result.text

    def _transcribe_samples(self, samples: np.ndarray) -> dict:
        opts = self.options
        return self.model.transcribe(
            samples,
            language=opts.language,
            task="transcribe",
            temperature=0.0,
            fp16=self.device == "cuda",
            beam_size=opts.beam_size,
            word_timestamps=True,
            initial_prompt=opts.initial_prompt,
            condition_on_previous_text=False,  # stops one bad window repeating into the next
            no_speech_threshold=NO_SPEECH_THRESHOLD,
            logprob_threshold=LOGPROB_THRESHOLD,
            compression_ratio_threshold=COMPRESSION_RATIO_THRESHOLD,
            hallucination_silence_threshold=HALLUCINATION_SILENCE_S,
            verbose=None,
        )


def _whisper_decode_in_turn(model, mel, options):
    """whisper's own ``decode``, holding the model's turn (its key/value hooks see every thread)."""
    from whisper.decoding import decode

    from .speedups.textdecoder import turns_of

    with turns_of(model):
        return decode(model, mel, options)


def resolve_device(engine: str, requested: str = "auto") -> str:
    """``"cuda"`` or ``"cpu"``: where ``engine`` runs for the ``requested`` device (one of :data:`DEVICES`).

    ``"auto"`` takes a CUDA GPU when the engine's library sees one: torch built
    with CUDA (``torch.cuda.is_available()``) for openai-whisper, CTranslate2's
    CUDA device count for ctranslate2. The CPU-only torch that the README
    installs never sees one, so there "auto" is the CPU.

    Raises
    ------
    ModelError
        ``device_unavailable`` when ``"cuda"`` is asked for and the engine sees no GPU;
        ``ValueError`` for a name not in :data:`DEVICES`.
    """
    if requested not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {requested!r}")
    if requested == "cpu":
        return "cpu"
    if _cuda_devices(engine) > 0:
        return "cuda"
    if requested == "cuda":
        raise ModelError(
            f"--device cuda: the {engine} engine sees no CUDA GPU (a CPU-only build of "
            f"{'torch' if engine == WhisperTranscriber.engine else 'ctranslate2'}, or no driver). "
            "Fix: install a CUDA build (docs/performance.md, 'On a GPU'), or use --device cpu",
            code="device_unavailable",
        )
    return "cpu"


def _cuda_devices(engine: str) -> int:
    """CUDA GPUs ``engine``'s library can use (0 where it cannot say)."""
    try:
        if engine == "ctranslate2":
            import ctranslate2

            return ctranslate2.get_cuda_device_count()
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except (ImportError, RuntimeError, OSError):
        return 0


def _transcript(
    segments: list[Segment],
    audio: Audio,
    asr_input: AsrInput,
    language: str,
    options: TranscribeOptions,
    engine: str,
    model_name: str,
) -> Transcript:
    """Filter hallucinations out of decoded ``segments`` and build the ``Transcript`` (any engine)."""
    kept, dropped = filter_hallucinations(
        segments, audio.samples, audio.sample_rate, prompt=options.initial_prompt
    )
    return Transcript(
        text=" ".join(s.text for s in kept).strip(),
        language=language,
        segments=tuple(kept),
        no_speech_prob=max((s.no_speech_prob for s in segments), default=0.0),
        engine=engine,
        model_name=model_name,
        dropped_segments=tuple(s.text for s in dropped),
        asr_offset_s=asr_input.offset_s,
        asr_speedup=asr_input.speedup,
    )


def _asr_input(audio: Audio, options: TranscribeOptions) -> AsrInput:
    """What the recogniser reads: ``audio`` fitted to one window, unless ``options`` say not to."""
    if options.fit_window:
        return fit_to_window(audio.samples, audio.sample_rate)
    return AsrInput.as_recorded(audio.samples, audio.sample_rate)


def _segment(raw: dict, duration_s: float, asr_input: AsrInput) -> Segment:
    """A decoded segment (whisper's dict, or faster-whisper's as one) in recording time."""
    at = asr_input.recording_s
    words = []
    for w in raw.get("words") or []:
        start = min(max(at(float(w["start"])), 0.0), duration_s)
        end = min(max(at(float(w["end"])), start), duration_s)
        words.append(Word(str(w["word"]).strip(), start, end, float(w["probability"])))
    return Segment(
        start=at(float(raw["start"])),
        end=at(float(raw["end"])),
        text=str(raw["text"]).strip(),
        avg_logprob=float(raw["avg_logprob"]),
        no_speech_prob=float(raw["no_speech_prob"]),
        compression_ratio=float(raw["compression_ratio"]),
        words=tuple(words),
    )


def filter_hallucinations(
    segments: list[Segment], samples: np.ndarray, sample_rate: int, prompt: str | None = None
) -> tuple[list[Segment], list[Segment]]:
    """Split segments into (kept, dropped).

    Dropped: text placed on silence; stock subtitle phrases, or words Whisper
    barely believes, in a doubtful segment; and echoes of the prompt.

    Parameters
    ----------
    segments : list of Segment
    samples : np.ndarray
        Mono audio the segments were decoded from.
    sample_rate : int
        In Hz.
    prompt : str, optional
        The initial prompt Whisper was given.
    """
    prompt_words = _normalise(prompt or "").split()
    kept, dropped = [], []
    for seg in segments:
        lo = int(max(seg.start, 0) * sample_rate)
        hi = int(max(seg.end, seg.start) * sample_rate)
        chunk = samples[lo:hi]
        rms = float(np.sqrt(np.mean(chunk.astype(np.float64) ** 2))) if chunk.size else 0.0
        level_dbfs = 20 * np.log10(max(rms, 1e-10))
        stock = _normalise(seg.text)
        is_stock = any(p in stock for p in HALLUCINATION_PHRASES)
        doubtful = seg.no_speech_prob > DOUBTFUL_NO_SPEECH_PROB or seg.avg_logprob < LOGPROB_THRESHOLD
        words = stock.split()
        mean_probability = (
            float(np.mean([w.probability for w in seg.words])) if seg.words else 1.0
        )
        doubtful = doubtful or mean_probability < 2 * DOUBTFUL_WORD_PROBABILITY
        # At temperature 0 there is no fallback decode, so a repetition loop
        # (high compression ratio) would otherwise be kept.
        looped = seg.compression_ratio > COMPRESSION_RATIO_THRESHOLD
        echo = (
            doubtful
            and len(words) >= PROMPT_ECHO_MIN_WORDS
            and SequenceMatcher(None, words, prompt_words).ratio() >= PROMPT_ECHO_SIMILARITY
        )
        unbelieved = doubtful and mean_probability < DOUBTFUL_WORD_PROBABILITY
        silent = level_dbfs < SEGMENT_SILENCE_DBFS
        if silent or (is_stock and doubtful) or echo or unbelieved or looped or not words:
            dropped.append(seg)
        else:
            kept.append(seg)
    return kept, dropped


def _normalise(text: str) -> str:
    return re.sub(r"[^a-z0-9 ]+", "", text.lower())


# --- the ctranslate2 engine (faster-whisper), optional ---

ENGINES = ("openai-whisper", "ctranslate2")
FAST_EXTRA_HINT = 'pip install ".[fast]" (in the vmgrade repository)'
# CTranslate2 on a CPU decodes one token at a time faster on one thread than on
# two (the threads' synchronisation costs more than they share: 0.75 s against
# 1.25 s for a 23-s message on the 2-core machine), while its encoder gains
# from every core (0.78 s -> 0.50 s). So the loaded model decodes on this many
# threads and a second replica with all the cores encodes (about 140 MB more).
CTRANSLATE2_DECODE_THREADS = 1
# The fast engine's defaults: greedy, without the filler prompt. On the corpus
# (bench/wer.py) that is about 30% faster than faster-whisper's own default
# (a beam of 5) and about as accurate: WER 0.037 / 0.080 clean / phone against
# 0.046 / 0.083 when first measured; 0.046 / 0.099 against 0.056 / 0.093 on
# 2026-12-07 (the same code before and after issue 30's cross-file batching, and the
# commit that wrote the first figures run today: the environment moved, not the code).
# The filler prompt would condition every word there, since CTranslate2 has no
# teacher-forced pass for the filler probe: with it, greedy
# WER rose to 0.059 / 0.102 and time by up to a third. Fillers then come from
# vmgrade.delivery's acoustic detection.
CTRANSLATE2_BEAM_SIZE = 1
# Files a ctranslate2 process on a CPU transcribes at once, sharing batched decoder passes
# (speedups.cross_file). On the AMD AVX2 host at 1 thread: six samples one by one 20.1 s, two
# at a time 18.2 s, three 17.4 s, four 17.2 s, with the same transcripts; a 24-file batch
# 8% faster at three (bench/cross_file.py). On the Xeon with AMX, CTranslate2's batched
# greedy decoding measured slower than one file at a time (1.50 against 1.35 s a file), so
# there it stays at 1 (docs/performance.md, "Cross-file batching").
CTRANSLATE2_FILES_AT_ONCE = 3


def files_at_once(engine: str) -> int:
    """How many files a grading process of ``engine`` should transcribe at once.

    ctranslate2: :data:`CTRANSLATE2_FILES_AT_ONCE` (its decoder passes batch across files),
    but 1 on a CPU with AMX int8 tiles, where batched decoding measured slower; openai-whisper:
    1. Its draft-and-check passes do batch across files (``--files-at-once`` asks for it), but
    on the AMD host a 24-file batch took 79.3 s one at a time, 80.2 s two and 83.3 s three at
    once, with 140-260 MB more per worker (bench/cross_file.py; docs/performance.md).
    """
    if engine != CTranslate2Transcriber.engine:
        return 1
    from .host import cpu_flags

    return 1 if "amx_int8" in (cpu_flags() or set()) else CTRANSLATE2_FILES_AT_ONCE


def default_filler_prompt(engine: str) -> bool:
    """Whether ``engine`` uses the filler prompt unless told: openai-whisper (probe) yes, ctranslate2 no."""
    return engine != CTranslate2Transcriber.engine


def engine_options(engine: str, **changes) -> TranscribeOptions:
    """``TranscribeOptions`` with ``engine``'s defaults (its filler prompt or none), then ``changes``."""
    prompt = FILLER_PROMPT if default_filler_prompt(engine) else None
    return replace(TranscribeOptions(initial_prompt=prompt), **changes)


class CTranslate2Transcriber(_LoadsOnce):
    """faster-whisper (CTranslate2): int8 on the CPU, fp16 on a CUDA GPU; the model loads once, on first use.

    Same thresholds and hallucination filter as :class:`WhisperTranscriber`,
    so transcripts are comparable. A prompt (``options.initial_prompt``)
    conditions every word here: CTranslate2 has no teacher-forced pass for
    the filler probe. It never touches the internet: the model is a local
    folder from :func:`vmgrade.asr.weights.ctranslate2_dir`.

    Parameters
    ----------
    model : str
        A packaged model name (``"base"``, ``"tiny.en"``) or a CTranslate2 model folder.
    options : TranscribeOptions
        Decoding settings; ``beam_size=None`` is :data:`CTRANSLATE2_BEAM_SIZE` (greedy).

    Raises
    ------
    ModelError
        ``engine_not_installed`` when faster-whisper is missing; ``model_not_ctranslate2``
        for an openai-whisper ``.pt``; the errors of :func:`vmgrade.asr.weights.ctranslate2_dir`.
    """

    engine = "ctranslate2"

    def __init__(self, model: str = "base", options: TranscribeOptions | None = None):
        from . import weights

        require_faster_whisper()
        self.options = options or TranscribeOptions()
        self.model_dir = weights.ctranslate2_dir(model)  # fail fast on a bad model name
        self.model_name = model if model in weights.PACKAGED_MODELS else str(Path(model).expanduser())
        self._model = None
        self.threads: int | None = None  # set when the model loads
        # threads transcribing at once through this model share its decoder passes (CPU)
        self.rendezvous = Rendezvous()
        self.silent_windows: SilentWindows | None = None  # set when the model loads

    @functools.cached_property
    def device(self) -> str:
        """``"cuda"`` or ``"cpu"`` (:func:`resolve_device`)."""
        return resolve_device(self.engine, self.options.device)

    @property
    def compute_type(self) -> str:
        """int8 on CPUs; fp16 on a GPU, where CTranslate2 runs it natively."""
        return "float16" if self.device == "cuda" else "int8"

    @property
    def precision(self) -> str:
        return PRECISION_FP16 if self.device == "cuda" else PRECISION_INT8

    def _load(self):
        from faster_whisper import WhisperModel

        threads = self.threads = self.options.threads or default_threads()
        limit_threads(threads)
        on_cpu = self.device == "cpu"
        progress.notice(f"loading the Whisper model in {self.model_dir} (ctranslate2, {self.device})")
        replica = None
        if on_cpu and threads > CTRANSLATE2_DECODE_THREADS:
            # the encoding replica loads beside the decoding model: 0.36 s for both against 0.67 s
            # one after the other on 2 cores (CTranslate2 loads without the GIL)
            pool = ThreadPoolExecutor(1, thread_name_prefix="vmgrade-replica-load")
            replica = pool.submit(self._encoder_replica, threads)
            pool.shutdown(wait=False)  # the thread ends with the load
        try:
            model = WhisperModel(
                str(self.model_dir),  # a folder: faster-whisper never calls the hub for it
                device=self.device,
                compute_type=self.compute_type,
                cpu_threads=min(threads, CTRANSLATE2_DECODE_THREADS) if on_cpu else 0,
                local_files_only=True,
            )
            if replica is not None:
                model.encode = functools.partial(_encode_with, replica.result())
            if on_cpu:  # joins encoder outputs in numpy: CPU storage only
                model.model = BatchingWhisper(model.model, self.rendezvous)
            self.silent_windows = SilentWindows(model)
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelError(
                f"{self.model_dir}: faster-whisper cannot load this model ({exc})",
                code="model_corrupt",
            ) from exc
        return model

    def _encoder_replica(self, threads: int):
        """A second copy of the model that only encodes, on ``threads`` cores (CTRANSLATE2_DECODE_THREADS)."""
        import ctranslate2

        return ctranslate2.models.Whisper(str(self.model_dir), device="cpu", compute_type=self.compute_type,
                                          intra_threads=threads)

    def reread(self, audio: Audio, prompt: str) -> str:
        """The text of a short clip (up to 30 s, 16 kHz) decoded once after ``prompt`` (see
        :meth:`WhisperTranscriber.reread`)."""
        segments, _ = self.model.transcribe(
            np.asarray(audio.samples, dtype=np.float32), language=self.options.language, task="transcribe",
            temperature=0.0, initial_prompt=prompt, without_timestamps=True, word_timestamps=False,
            condition_on_previous_text=False, vad_filter=False, beam_size=1,
        )
        return " ".join(seg.text.strip() for seg in segments)

    def transcribe(self, audio: Audio) -> Transcript:
        """Transcribe ``audio`` (16 kHz mono) with word timestamps."""
        opts = self.options
        asr_input = _asr_input(audio, opts)
        model = self.model
        with self.rendezvous.taking_part():
            segments, language = self._decode(model, asr_input, audio.duration_s)
        return _transcript(segments, audio, asr_input, language or opts.language, opts, self.engine,
                           self.model_name)

    def _decode(self, model, asr_input: AsrInput, duration_s: float) -> tuple[list[Segment], str | None]:
        """faster-whisper's segments of ``asr_input``, in recording time, and the language it names."""
        opts = self.options
        raw_segments, info = model.transcribe(
            asr_input.samples,
            language=opts.language,
            task="transcribe",
            temperature=0.0,
            word_timestamps=True,
            initial_prompt=opts.initial_prompt,
            condition_on_previous_text=False,
            no_speech_threshold=NO_SPEECH_THRESHOLD,
            log_prob_threshold=LOGPROB_THRESHOLD,
            compression_ratio_threshold=COMPRESSION_RATIO_THRESHOLD,
            hallucination_silence_threshold=HALLUCINATION_SILENCE_S,
            vad_filter=False,
            beam_size=opts.beam_size or CTRANSLATE2_BEAM_SIZE,
        )
        # faster-whisper yields segments lazily, as dataclasses shaped like openai-whisper's
        # dicts, each window's before the next window is read: so the words heard so far
        # tell the silent-window check where the next window starts (NO_SPEECH_THRESHOLD
        # set above is what passes such a window over)
        segments = []
        with self.silent_windows.listening(asr_input.samples, asr_input.sample_rate) as heard:
            for s in raw_segments:
                heard.hear(s)
                segments.append(_segment(asdict(s), duration_s, asr_input))
        return segments, info.language


def _encode_with(encoder, features: np.ndarray):
    """faster-whisper's ``WhisperModel.encode`` on another CTranslate2 replica (the CPU: no device moves)."""
    import ctranslate2

    if features.ndim == 2:
        features = features[None]
    return encoder.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(features)), to_cpu=False)


def require_faster_whisper() -> None:
    """Raise ``ModelError(code="engine_not_installed")`` unless faster-whisper imports."""
    try:
        import faster_whisper  # noqa: F401
    except ImportError as exc:
        raise ModelError(
            f"the ctranslate2 engine needs faster-whisper, which is not installed ({exc}). "
            f"Fix: {FAST_EXTRA_HINT}",
            code="engine_not_installed",
        ) from exc


def make_transcriber(engine: str, model: str, options: TranscribeOptions | None = None) -> Transcriber:
    """Build the transcriber for ``engine`` (one of :data:`ENGINES`).

    Raises
    ------
    ModelError
        ``unknown_engine`` for a name not in :data:`ENGINES`, or what the engine raises.
    """
    if engine == WhisperTranscriber.engine:
        return WhisperTranscriber(model, options)
    if engine == CTranslate2Transcriber.engine:
        return CTranslate2Transcriber(model, options)
    raise ModelError(f"unknown engine '{engine}': use one of {', '.join(ENGINES)}", code="unknown_engine")
