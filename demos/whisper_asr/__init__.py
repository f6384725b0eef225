"""Whisper speech recognition: transcribe or translate speech, with subtitles, on long audio, on GPU and CPU.

Two engines behind one `transcribe` (engine.py):
- faster-whisper (CTranslate2, int8 on CPU): the CPU default, several times faster than PyTorch there.
- openai-whisper (PyTorch): every size from tiny to large-v3 and turbo. Its GPU fast path (fast.py) cuts the audio
  into <= 30 s windows at quiet points and decodes many windows as one batch (fp16 weights, LayerNorm kept fp32),
  instead of `model.transcribe`'s one window after another.

Audio is decoded by the hub (`hub.media.audio.load_audio`) in the front end; the work methods (engine.WORK) take the
samples in a typed request (types.py). Writers for .txt/.srt/.vtt/.json are in formats.py, the tab in ui.py, the
OpenAI-compatible /v1 audio routes in openai.py. This module imports neither torch nor gradio.
"""

from hub.contract import Demo, Example, Option, Sample
from demos.whisper_asr.spec import MAX_MINUTES, SPEC

DEMO = Demo(
    spec=SPEC,
    load="demos.whisper_asr.engine:load",
    work="demos.whisper_asr.engine:WORK",
    ui="demos.whisper_asr.ui:build",
    fetch="demos.whisper_asr.engine:fetch",
    routes="demos.whisper_asr.openai:routes",
    options=(
        Option("max_minutes", MAX_MINUTES, "Longest audio accepted, in minutes.", lo=0.1, hi=24 * 60.0),
    ),
    examples=(
        Example("transcribe",
                {"model": "tiny-random", "audio": Sample("audio"), "media_file": None, "task": "transcribe",
                 "language": "auto", "word_timestamps": False, "vad": False, "initial_prompt": "", "beam_size": 1},
                bad={"beam_size": 0}),
    ),
)

__all__ = ["DEMO", "SPEC"]
