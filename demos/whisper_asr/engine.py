"""Whisper engines: load (faster-whisper or openai-whisper, or a random one), check the options, transcribe, and the
work methods (WORK: `transcribe_stream` for the tab, `transcribe` for /v1; requests and results in types.py).

`transcribe(engine, audio, options)` / `transcribe_iter(...)` take a path, `(sample_rate, samples)` or 16 kHz
samples; the audio is decoded by `hub.media.audio.load_audio`. Defaults against hallucinated repeats: no conditioning
on the previous window, no-speech and compression-ratio checks with temperature fallback, an optional voice-activity
filter (Silero, from faster-whisper), and digital silence short-circuits to an empty transcript with a note.
The batched openai-whisper decoder is in fast.py. Never imports gradio.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import numpy as np

from demos.whisper_asr.languages import languages, normalize_language
from demos.whisper_asr.spec import MAX_MINUTES, NATIVE
from demos.whisper_asr.types import (TEMPERATURES, Options, Segment, TranscribeRequest, TranscribeResult,  # noqa: F401
                                     Transcript, Word)
from hub import loadtimes, validate
from hub.contract import EngineBase
from hub.errors import UserError
from hub.media.audio import load_audio
from hub.work import Work

SAMPLE_RATE = 16_000
WINDOW_S = 30.0
TASKS = ("transcribe", "translate")
NO_SPEECH_THRESHOLD = 0.6
LOGPROB_THRESHOLD = -1.0
COMPRESSION_RATIO_THRESHOLD = 2.4
SILENCE_PEAK = 1e-4  # below this peak amplitude (-80 dBFS) the audio is digital silence
LIMIT_HINT = "the operator can raise DEMOHUB_WHISPER_ASR_MAX_MINUTES"

# Architecture of each openai-whisper size (the checkpoints' `dims`), for `--weights random` without a download.
_DIMS = {  # name: (n_mels, n_vocab, audio state/heads/layers, text state/heads/layers)
    "tiny.en": (80, 51864, 384, 6, 4, 384, 6, 4), "tiny": (80, 51865, 384, 6, 4, 384, 6, 4),
    "base.en": (80, 51864, 512, 8, 6, 512, 8, 6), "base": (80, 51865, 512, 8, 6, 512, 8, 6),
    "small.en": (80, 51864, 768, 12, 12, 768, 12, 12), "small": (80, 51865, 768, 12, 12, 768, 12, 12),
    "medium.en": (80, 51864, 1024, 16, 24, 1024, 16, 24), "medium": (80, 51865, 1024, 16, 24, 1024, 16, 24),
    "large-v3": (128, 51866, 1280, 20, 32, 1280, 20, 32), "turbo": (128, 51866, 1280, 20, 32, 1280, 20, 4),
    "distil-large-v3.5": (128, 51866, 1280, 20, 32, 1280, 20, 2),
    "tiny-random": (80, 51865, 64, 2, 2, 64, 2, 2), "tiny-random-distil": (128, 51866, 64, 2, 4, 64, 2, 2),
}


# ---- windows ----------------------------------------------------------------------------------------------


def plan_windows(audio: np.ndarray, max_s: float = WINDOW_S, search_s: float = 5.0) -> list[tuple[int, int]]:
    """Split audio into windows of at most `max_s`, each cut at the quietest 100 ms of its last `search_s`."""
    n, win, hop = audio.size, int(max_s * SAMPLE_RATE), SAMPLE_RATE // 10
    out, start = [], 0
    while n - start > win:
        lo, hi = start + win - int(search_s * SAMPLE_RATE), start + win
        frames = audio[lo:hi][: (hi - lo) // hop * hop].reshape(-1, hop)
        energy = np.square(frames, dtype=np.float64).mean(axis=1)
        quietest = len(energy) - 1 - int(np.argmin(energy[::-1]))  # the latest of equally quiet places
        cut = lo + quietest * hop + hop // 2
        out.append((start, cut))
        start = cut
    out.append((start, n))
    return out


# ---- options and their check --------------------------------------------------------------------------------


def check_options(options: Options | None = None, **kw) -> Options:
    """The check step, before any work: a checked copy of `options` (or of `Options(**kw)`), or UserError.

    Out-of-range numbers and unknown choices are refused (hub.validate); a language may be a code or a name.
    """
    if kw and options is not None:
        raise TypeError("give either an Options or keyword options, not both")
    opts = replace(options) if options is not None else Options(**kw)
    opts.task = validate.choice(opts.task, "the task", TASKS, default="transcribe")
    opts.language = normalize_language(opts.language)
    opts.beam_size = validate.number(opts.beam_size, "beam size (1 = greedy, fastest)", 1, 10, integer=True)
    opts.word_timestamps = validate.flag(opts.word_timestamps, "word-level timestamps", default=False)
    opts.vad = validate.flag(opts.vad, "the voice-activity filter", default=True)
    if opts.initial_prompt is None:
        opts.initial_prompt = ""
    if not isinstance(opts.initial_prompt, str):
        raise UserError("The initial prompt must be text (names and terms the speech uses), or empty.")
    opts.temperatures = tuple(validate.number(t, "temperature", 0, 1) for t in opts.temperatures) or TEMPERATURES
    if opts.batch_size is not None:
        opts.batch_size = validate.number(opts.batch_size, "batch size", 1, 512, integer=True)
    if opts.force_tokens is not None:
        opts.force_tokens = validate.number(opts.force_tokens, "forced tokens per window", 1, 448, integer=True)
    return opts


def check_model_fits(engine, opts: Options) -> None:
    """English-only models neither translate nor take another language; "auto" on them simply means English
    (the '.en' ones have no language tokens to detect with; distil-large-v3.5 has them but was trained on English
    only, so detecting would only pick a language it cannot transcribe)."""
    if not getattr(engine, "english_only", not engine.multilingual):
        return
    if opts.language is None:
        opts.language = "en"
    if opts.task == "translate":
        raise UserError(f"{engine.name} is an English-only model and cannot translate; pick a multilingual "
                        "model (not '.en' or distil) to translate to English.")
    if opts.language not in (None, "en"):
        raise UserError(f"{engine.name} only understands English; pick a multilingual model (not '.en' or "
                        f"distil) for {languages()[opts.language].title()}.")


# ---- engines ------------------------------------------------------------------------------------------------


class OpenAIWhisperEngine(EngineBase):
    """openai-whisper model + the batched-window decoder."""

    kind = "openai-whisper"

    def __init__(self, model, name: str, device: str, dtype: str, sample_len: int | None = None):
        import torch

        self.model, self.name, self.device, self.dtype = model, name, device, dtype
        self.multilingual = model.is_multilingual
        self.english_only = not self.multilingual  # load() also sets it for English-trained multilingual vocabularies
        self.sample_len = sample_len
        self.random = False
        self.max_seconds = MAX_MINUTES * 60
        # alignment_heads is a sparse buffer: count dense tensors only (the hub's generic count can't read sparse)
        self.nbytes = sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers())
                          if t.layout == torch.strided)

    def close(self):
        self.model = None


class FasterWhisperEngine(EngineBase):
    """faster-whisper (CTranslate2) model."""

    kind = "faster-whisper"

    def __init__(self, model, name: str, device: str, compute_type: str, nbytes: int):
        self.model, self.name, self.device, self.compute_type, self.nbytes = model, name, device, compute_type, nbytes
        self.multilingual = model.model.is_multilingual
        self.english_only = not self.multilingual
        self.max_seconds = MAX_MINUTES * 60

    def close(self):
        self.model = None


def load(weights, device: str, dtype: str, options=None):
    """Load the chosen model: faster-whisper for the CTranslate2 repos and folders, openai-whisper otherwise.

    options: the demo's parsed options (None: the declared defaults); `max_minutes` caps the audio it takes.
    """
    if options is None:
        from demos.whisper_asr import DEMO
        from hub.options import defaults

        options = defaults(DEMO)
    opts = weights.choice.options
    if weights.source == "random":
        # Speed does not depend on weight values: any size becomes the openai-whisper architecture of that size
        # (a faster-whisper choice included: CTranslate2 has no random init), with random weights.
        engine = build_random(opts.get("size", "tiny-random"), device, dtype, sample_len=opts.get("sample_len"))
    elif opts.get("engine") == "faster" or (weights.source == "path" and Path(weights.path, "model.bin").is_file()):
        engine = _load_faster(weights, device, dtype)
    else:
        engine = _load_openai(weights, device, dtype)
    engine.max_seconds = float(options.max_minutes) * 60
    engine.english_only = engine.english_only or bool(opts.get("english_only"))
    return engine


def _load_faster(weights, device: str, dtype: str) -> FasterWhisperEngine:
    with loadtimes.stage("import"):
        from faster_whisper import WhisperModel

    path = Path(weights.path)
    if not (path / "model.bin").is_file() or not (path / "config.json").is_file():
        raise UserError(f"{weights.choice.display} is not a faster-whisper (CTranslate2) model folder: it needs "
                        "model.bin and config.json (convert a model with ct2-transformers-converter).")
    kind = device.split(":")[0]
    compute = "int8" if kind == "cpu" else ("float16" if dtype == "float16" else "int8_float16" if kind == "cuda" else "int8")
    index = int(device.split(":")[1]) if ":" in device else 0
    loadtimes.read_files(loadtimes.files_under(path))
    with loadtimes.stage("build"):
        model = WhisperModel(str(path), device="cuda" if kind == "cuda" else "cpu", device_index=index,
                             compute_type=compute, cpu_threads=os.cpu_count() or 0, local_files_only=True)
    nbytes = weights.choice.approx_bytes or (path / "model.bin").stat().st_size
    return FasterWhisperEngine(model, _name(weights, weights.choice.id), device, compute, nbytes)


def _name(weights, listed: str) -> str:
    """The model's name in sentences: `listed`, or a local model's readable name (never the server's path)."""
    from hub.weights import is_local

    return weights.choice.display if is_local(weights.choice) else listed


def _load_openai(weights, device: str, dtype: str) -> OpenAIWhisperEngine:
    import whisper

    name = _name(weights, weights.choice.options.get("size", weights.choice.id))
    if weights.source == "path":
        target = str(weights.path)  # a .pt checkpoint (whisper's format); torch.load runs with weights_only=True
    elif name in whisper._MODELS:
        target = name
    else:
        raise UserError(f"openai-whisper has no model called {name!r}; use one of "
                        f"{', '.join(sorted(NATIVE))}, or a local .pt / CTranslate2 folder path.")
    try:
        model = whisper.load_model(target, device="cpu", download_root=str(weights.path))
    except RuntimeError as e:
        if "SHA256" in str(e):
            raise UserError(f"The downloaded {name} checkpoint failed openai-whisper's SHA-256 check; delete it from "
                            "the cache and run `demohub fetch whisper_asr` again.") from None
        raise
    return _place(model, name, device, dtype, None)


def fetch(weights) -> None:
    """`demohub fetch`: download an openai-whisper checkpoint into the cache (whisper verifies its SHA-256)."""
    if weights.source != "native":
        return
    import whisper

    name = weights.choice.options.get("size", weights.choice.id)
    if name not in whisper._MODELS:
        raise UserError(f"openai-whisper has no model called {name!r}; use one of {', '.join(sorted(NATIVE))}.")
    whisper._download(whisper._MODELS[name], str(weights.path), in_memory=False)


def build_random(size: str, device: str = "cpu", dtype: str = "float32", sample_len: int | None = None,
                 seed: int = 0) -> OpenAIWhisperEngine:
    """An openai-whisper model of `size`'s architecture with random weights (tests, benchmarks, offline runs)."""
    import torch
    from whisper.model import ModelDimensions, Whisper

    n_mels, vocab, a_state, a_head, a_layer, t_state, t_head, t_layer = _DIMS[size]
    dims = ModelDimensions(n_mels=n_mels, n_audio_ctx=1500, n_audio_state=a_state, n_audio_head=a_head,
                           n_audio_layer=a_layer, n_vocab=vocab, n_text_ctx=448, n_text_state=t_state,
                           n_text_head=t_head, n_text_layer=t_layer)
    torch.manual_seed(seed)
    model = Whisper(dims)
    with torch.no_grad():  # pytorch's default init ignores the audio (constant text); this one listens to it
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.2 if p.shape[0] != vocab else 0.1)
    engine = _place(model, size, device, dtype, sample_len)
    engine.random = True
    return engine


def _place(model, name: str, device: str, dtype: str, sample_len: int | None) -> OpenAIWhisperEngine:
    import torch

    model.eval()
    if device.startswith("cuda") and dtype in ("float16", "bfloat16"):
        # fp16 weights with LayerNorm kept in fp32: whisper's LayerNorm computes in fp32 and breaks on fp16 weights,
        # and casting fp32 weights to fp16 on every Linear call (what `fp16=True` alone does) costs time.
        model.half()
        for m in model.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.float()
        dtype = "float16"
    else:
        dtype = "float32"
    model.to(device)
    return OpenAIWhisperEngine(model, name, device, dtype, sample_len)


# ---- transcription ------------------------------------------------------------------------------------------


def transcribe(engine, audio, options: Options | None = None, *, max_seconds: float | None = None,
               **kw) -> Transcript:
    """Transcribe (or translate) `audio` (a path, `(sample_rate, samples)`, or 16 kHz samples). See `Options`.

    max_seconds: the longest audio taken (None: the engine's, from the `max_minutes` option).
    """
    result = None
    for result in transcribe_iter(engine, audio, options, max_seconds=max_seconds, **kw):
        pass
    return result


def transcribe_iter(engine, audio, options: Options | None = None, *, max_seconds: float | None = None,
                    should_stop=None, **kw) -> Iterator[Transcript]:
    """Like `transcribe`, yielding partial transcripts (done=False, progress 0..1) as windows finish.

    Stopping the iteration stops the work within one step (one batch of windows / one segment); `should_stop()`
    (the work method's job.stop) also ends a batch of openai-whisper windows at its next greedy token.
    """
    opts = check_options(options, **kw)
    check_model_fits(engine, opts)
    if max_seconds is None:
        max_seconds = getattr(engine, "max_seconds", MAX_MINUTES * 60)
    samples = load_audio(audio, sample_rate=SAMPLE_RATE, max_seconds=max_seconds, limit_hint=LIMIT_HINT)
    duration = samples.size / SAMPLE_RATE
    if float(np.abs(samples).max()) < SILENCE_PEAK:
        yield Transcript("", [], opts.language or "", 0.0, duration, opts.task,
                         note="The audio is silent (no signal above -80 dBFS): nothing to transcribe.")
        return
    if isinstance(engine, FasterWhisperEngine):
        steps = _run_faster(engine, samples, opts)
    else:
        from demos.whisper_asr.fast import run_openai

        steps = run_openai(engine, samples, opts, should_stop)
    last = None
    for last in steps:
        last.duration, last.task = duration, opts.task
        yield last
    if last is None or not last.done:
        return
    if not last.segments:
        last.note = ("No speech was recognised" + (" (the voice-activity filter found none)" if opts.vad else "")
                     + ": the transcript is empty.")
    if opts.task == "translate" and "turbo" in engine.name:
        last.note = (last.note + " " if last.note else "") + "Note: turbo was not trained to translate; use large-v3 or medium."
    last.text = " ".join(s.text for s in last.segments).strip()


def _run_faster(engine: FasterWhisperEngine, samples: np.ndarray, opts: Options) -> Iterator[Transcript]:
    duration = samples.size / SAMPLE_RATE
    seg_iter, info = engine.model.transcribe(
        samples, language=opts.language, task=opts.task, beam_size=int(opts.beam_size), best_of=5,
        temperature=list(opts.temperatures), condition_on_previous_text=False,
        compression_ratio_threshold=COMPRESSION_RATIO_THRESHOLD, log_prob_threshold=LOGPROB_THRESHOLD,
        no_speech_threshold=NO_SPEECH_THRESHOLD, initial_prompt=opts.initial_prompt or None,
        word_timestamps=opts.word_timestamps, vad_filter=opts.vad,
        hallucination_silence_threshold=2.0 if opts.word_timestamps else None,
    )
    lang, prob = info.language, float(info.language_probability if engine.multilingual else 1.0)
    out = Transcript("", [], lang, prob, duration, done=False, progress=0.0)
    for s in seg_iter:
        text = s.text.strip()
        if text:
            words = [Word(round(float(w.start), 3), round(float(w.end), 3), w.word, round(float(w.probability), 4))
                     for w in (s.words or [])]
            seg = Segment(round(float(s.start), 3), round(float(s.end), 3), text, words)
            out.segments.append(clamped(seg, out, duration))
            out.text = " ".join(x.text for x in out.segments)
        out.progress = min(1.0, s.end / duration) if duration else 1.0
        yield out
    out.done, out.progress = True, 1.0
    yield out


def clamped(seg: Segment, out: Transcript, duration: float) -> Segment:
    """Keep timestamps monotonic and inside the audio (models sometimes overshoot the end by a frame)."""
    prev = out.segments[-1].end if out.segments else 0.0
    seg.start = min(max(seg.start, prev), duration)
    seg.end = min(max(seg.end, seg.start), duration)
    last = seg.start
    for w in seg.words:
        w.start = min(max(w.start, last, seg.start), seg.end)
        w.end = min(max(w.end, w.start), seg.end)
        last = w.end
    return seg


# ---- the work methods -----------------------------------------------------------------------------------------

WORK = Work()


def _transcription(lease, req: TranscribeRequest, job) -> Iterator[Transcript | TranscribeResult]:
    """Partial transcripts (copies: the engine goes on filling its own) as windows finish, then the
    TranscribeResult with the record. Ends at the next window or segment once `job.stop` is set."""
    opts = check_options(req.options)
    t0, last = time.perf_counter(), None
    # each stage named as it starts: a partial transcript arrives when a segment has ended
    job.progress(0, "Transcribing segment 1\u2026" if opts.language else
                 "Detecting the language, then transcribing segment 1\u2026")
    for t in transcribe_iter(lease.engine, req.samples, opts, max_seconds=req.max_seconds,
                             should_stop=job.stop.is_set):
        if job.stop.is_set():
            return
        job.progress(t.progress, f"Transcribing segment {len(t.segments) + 1} ({t.progress:.0%} of "
                                 f"{t.duration / 60:.1f} min)\u2026")
        last = t
        if not t.done:
            yield replace(t, segments=list(t.segments))
    if last is None or not last.done:  # stopped part-way: no result
        return
    elapsed = time.perf_counter() - t0
    # the model by its public name (a local model by its readable name, never its path)
    yield TranscribeResult(last, elapsed, _record(lease, opts, last, elapsed), lease.weights.record()["model"])


def _record(lease, opts: Options, t: Transcript, elapsed: float) -> dict:
    return lease.record(engine=lease.engine.kind, task=opts.task, language=opts.language or "auto",
                        detected_language=t.language, language_probability=round(t.language_probability, 4),
                        word_timestamps=opts.word_timestamps, vad=opts.vad, beam_size=opts.beam_size,
                        initial_prompt=opts.initial_prompt, audio_seconds=round(t.duration, 2),
                        seconds=round(elapsed, 2), real_time_factor=round(elapsed / t.duration, 4))


@WORK.method(TranscribeRequest, name="transcribe_stream")
def transcribe_stream_request(lease, req: TranscribeRequest, job) -> Iterator[Transcript | TranscribeResult]:
    """The tab's transcription: partial Transcripts (done=False) as windows finish, then one TranscribeResult.
    Stop (job.stop) ends it within one window."""
    yield from _transcription(lease, req, job)


@WORK.method(TranscribeRequest, name="transcribe")
def transcribe_request(lease, req: TranscribeRequest, job) -> TranscribeResult | None:
    """One answer (the /v1 routes): the TranscribeResult; None when stopped (a client that hung up)."""
    result = None
    for result in _transcription(lease, req, job):
        pass
    return result if isinstance(result, TranscribeResult) else None
