"""Text to speech engines: Piper voices (ONNX Runtime), Kokoro-82M (kokoro.py) or a random stand-in, the request
check, and the work methods (WORK: `speak` streams one audio file sentence by sentence, `voices` lists a model's
voices).

Piper (piper-tts, GPL-3.0) is an optional extra, imported only when a Piper model loads; without it the load says
in one sentence how to install it. Text is cut into sentences here (sentences.py), each is synthesised and encoded
(formats.py) before the next starts, so the first sentence's audio is on its way while the rest is made. Never
imports gradio.
"""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from demos.tts.formats import FORMATS, Encoder
from demos.tts.sentences import split_sentences
from demos.tts.spec import INSTALL, MAX_CHARS, SPEED_RANGE
from demos.tts.types import SpeakRequest, SpeechChunk, SpeechDone, Voice, VoiceList, VoicesRequest
from hub import loadtimes, validate
from hub.contract import EngineBase
from hub.errors import UserError
from hub.work import Work

PAUSE_S = 0.15  # silence between sentences
LIMIT_HINT = "the operator can raise DEMOHUB_TTS_MAX_CHARS"


# ---- the check ------------------------------------------------------------------------------------------------------


def check_request(req: SpeakRequest, voices: dict | None = None, max_chars: int = MAX_CHARS) -> SpeakRequest:
    """The check step, before any work: a SpeakRequest with checked values, or UserError with one sentence.

    voices: the model's voices (id -> anything); "" picks the first. max_chars: the cap when the request has none.
    """
    text = req.text
    if text is None or (isinstance(text, str) and not text.strip()):
        raise UserError("There is no text to speak; type a sentence or more.")
    if not isinstance(text, str):
        raise UserError("The text to speak must be a string.")
    cap = int(req.max_chars or max_chars)
    if len(text) > cap:
        raise UserError(f"The text is {len(text):,} characters long; this hub speaks at most {cap:,} at a time "
                        f"(split it, or {LIMIT_HINT}).")
    fmt = validate.choice(req.format, "The output format", FORMATS, default="mp3")
    speed = validate.number(req.speed, "The speed (1 = the voice's own pace)", *SPEED_RANGE, default=1.0)
    voice = "" if req.voice is None else req.voice
    if not isinstance(voice, str):
        raise UserError("The voice must be given by its name.")
    voice = voice.strip()
    if voices is not None:
        if not voice:
            voice = next(iter(voices))
        elif voice not in voices:
            shown = ", ".join(list(voices)[:12]) + (", …" if len(voices) > 12 else "")
            raise UserError(f"This model has no voice called {voice[:60]!r}; pick one of: {shown}.")
    return SpeakRequest(text, voice, float(speed), fmt, cap)


# ---- engines --------------------------------------------------------------------------------------------------------


class PiperEngine(EngineBase):
    """Piper voices: one ONNX Runtime session per voice, made when the voice is first asked for."""

    kind = "piper"

    def __init__(self, files: dict[str, Path], info: dict, name: str, device: str):
        self.files, self.info, self.name, self.device = files, info, name, device
        self._voices: dict = {}
        self.max_chars = MAX_CHARS
        self.random = False
        self.weights_format = "float32 (ONNX Runtime)"
        self.rhythm_noise: float | None = 0.0  # Piper's noise_w; None: the voice's own
        self.nbytes = sum(f.stat().st_size for f in files.values())

    @property
    def voices(self) -> dict:
        return {v: self.info.get(v, ("", "")) for v in self.files}

    def voice(self, voice_id: str):
        if voice_id not in self._voices:
            import onnxruntime
            from piper import PiperVoice

            cuda = self.device.startswith("cuda") and "CUDAExecutionProvider" in onnxruntime.get_available_providers()
            self._voices[voice_id] = PiperVoice.load(self.files[voice_id], use_cuda=cuda)
        return self._voices[voice_id]

    def sample_rate(self, voice_id: str) -> int:
        return int(self.voice(voice_id).config.sample_rate)

    def synthesize(self, text: str, voice_id: str, speed: float) -> np.ndarray:
        """One sentence's speech: float32 mono at `sample_rate(voice_id)`."""
        from piper import SynthesisConfig

        voice = self.voice(voice_id)
        noise_w = voice.config.noise_w_scale if self.rhythm_noise is None else self.rhythm_noise
        config = SynthesisConfig(length_scale=voice.config.length_scale / speed, noise_w_scale=noise_w)
        parts = [c.audio_float_array for c in voice.synthesize(text, config)]
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    def close(self):
        self._voices.clear()


class RandomEngine(EngineBase):
    """A stand-in with no weights (tests, offline smoke runs): each letter a short tone of a pitch drawn from the
    letter, each space a pause. Meaningless sound, the same length for the same text and speed."""

    kind = "random"
    RATE = 22_050
    LETTER_S = 0.06

    def __init__(self, info: dict):
        self.info, self.name, self.device = info, "tiny-random", "cpu"
        self.max_chars = MAX_CHARS
        self.random = True

    @property
    def voices(self) -> dict:
        return dict(self.info)

    def sample_rate(self, voice_id: str) -> int:
        return self.RATE

    def synthesize(self, text: str, voice_id: str, speed: float) -> np.ndarray:
        n = int(self.RATE * self.LETTER_S / speed)
        t = np.arange(n, dtype=np.float32) / self.RATE
        envelope = np.sin(np.pi * np.arange(n) / n).astype(np.float32)
        base = 110.0 * (1 + list(self.info).index(voice_id))  # each voice its own register
        out = []
        for ch in text:
            if ch.isspace():
                out.append(np.zeros(n, np.float32))
                continue
            pitch = base * (1 + hashlib.blake2b(ch.encode(), digest_size=1).digest()[0] / 255)
            out.append((0.3 * envelope * np.sin(2 * math.pi * pitch * t)).astype(np.float32))
        return np.concatenate(out) if out else np.zeros(0, np.float32)


def load(weights, device: str, dtype: str, options=None):
    """The model's engine: its Piper voices (files found on disk), Kokoro-82M (kokoro.py), or the random stand-in.

    options: the demo's parsed options (None: the declared defaults); `max_chars` caps one request's text,
    `rhythm_noise` is Piper's noise_w (0: the same durations every time; -1: the voice's own, varied).
    """
    if options is None:
        from demos.tts import DEMO
        from hub.options import defaults

        options = defaults(DEMO)
    info = weights.choice.options.get("voices", {})
    if weights.source == "random":
        engine = RandomEngine(info)
    elif weights.choice.options.get("engine") == "kokoro" or weights.source == "native":
        from demos.tts import kokoro

        engine = kokoro.load(weights, info)
    else:
        try:
            with loadtimes.stage("import"):
                import piper  # noqa: F401  (the optional extra: said at load, not at the first sentence)
        except ImportError:
            raise UserError(INSTALL) from None
        engine = PiperEngine(_voice_files(weights, info), info, weights.choice.display, device)
        first = next(iter(engine.files))
        loadtimes.read_files([engine.files[first], f"{engine.files[first]}.json"])
        with loadtimes.stage("build"):
            engine.voice(first)  # the first voice loads with the model, not with the first request
        engine.rhythm_noise = None if options.rhythm_noise < 0 else float(options.rhythm_noise)
    engine.max_chars = int(options.max_chars)
    return engine


def _voice_files(weights, info: dict) -> dict[str, Path]:
    """voice id -> its .onnx file (with the .onnx.json beside it): the listed voices found under the weights."""
    root = Path(weights.path)
    if root.is_file():  # one voice file (the package's, or an operator's .onnx)
        if not Path(f"{root}.json").is_file():
            raise UserError(f"The Piper voice {root.name} has no {root.name}.json beside it; put the voice's config "
                            "file next to it.")
        return {root.name.removesuffix(".onnx"): root}
    found = {f.name.removesuffix(".onnx"): f for f in sorted(root.rglob("*.onnx")) if Path(f"{f}.json").is_file()}
    files = {v: found[v] for v in info if v in found} or found
    if not files:
        raise UserError(f"{weights.choice.display} has no Piper voice (.onnx with its .onnx.json) on this machine; "
                        f"run `demohub fetch tts --model {weights.choice.id}`.")
    return files


# ---- the work methods -----------------------------------------------------------------------------------------------

WORK = Work()


@WORK.method(SpeakRequest, name="speak")
def speak(lease, req: SpeakRequest, job) -> Iterator[SpeechChunk | SpeechDone]:
    """The speech of `req.text` as one file in `req.format`: a SpeechChunk per sentence (its bytes sent as soon as
    it is made), then SpeechDone. Stops between sentences once `job.stop` is set."""
    engine = lease.engine
    req = check_request(req, engine.voices, engine.max_chars)
    sentences = split_sentences(req.text)
    if not sentences:
        raise UserError("The text has no words to speak; type a sentence or more.")
    rate = engine.sample_rate(req.voice)
    encoder, pause = Encoder(req.format, rate), np.zeros(int(PAUSE_S * rate), np.float32)
    t0, samples = time.perf_counter(), 0
    for i, sentence in enumerate(sentences):
        if job.stop.is_set():
            return
        job.progress(i / len(sentences), f"Speaking sentence {i + 1} of {len(sentences)}")
        audio = engine.synthesize(sentence, req.voice, req.speed)
        if i < len(sentences) - 1:
            audio = np.concatenate([audio, pause])
        samples += audio.size
        yield SpeechChunk(encoder.feed(audio), i, len(sentences), sentence, audio.size / rate)
    tail = encoder.close()
    elapsed, seconds = time.perf_counter() - t0, samples / rate
    record = lease.record(engine=engine.kind, voice=req.voice, speed=req.speed, format=req.format,
                          characters=len(req.text), sentences=len(sentences), audio_seconds=round(seconds, 2),
                          seconds=round(elapsed, 3), real_time_factor=round(elapsed / max(seconds, 1e-9), 4))
    yield SpeechDone(tail, seconds, elapsed, record, lease.weights.record()["model"])


@WORK.method(VoicesRequest, name="voices")
def voices(lease, req: VoicesRequest, job) -> VoiceList:
    """The model's voices, each with its language and a sample line."""
    found = [Voice(v, *tuple(info)[:2]) if info else Voice(v, "", "") for v, info in lease.engine.voices.items()]
    return VoiceList(tuple(found), lease.weights.record()["model"])
