"""The Whisper demo's models: pinned checkpoints, sizes and licenses (no heavy imports here)."""

from __future__ import annotations

from hub.spec import DemoSpec, ModelChoice

MAX_MINUTES = 240.0  # default cap on the audio length; operators change it with DEMOHUB_WHISPER_ASR_MAX_MINUTES

# openai-whisper's own download: file name in the cache and the SHA-256 its URL pins (whisper checks it too).
NATIVE = {  # name: (file, sha256, approx bytes loaded fp32)
    "tiny.en": ("tiny.en.pt", "d3dd57d32accea0b295c96e26691aa14d8822fac7d9d27d5dc00b4ca2826dd03", 151_000_000),
    "tiny": ("tiny.pt", "65147644a518d12f04e32d6f3b26facc3f8dd46e5390956a9424a650c0ce22b9", 151_000_000),
    "base.en": ("base.en.pt", "25a8566e1d0c1e2231d1c762132cd20e0f96a85d16145c3a00adf5d1ac670ead", 290_000_000),
    "base": ("base.pt", "ed3a0b6b1c0edf879ad9b11b1af5a0e6ab5db9205f891f668f8b0e6c6326e34e", 290_000_000),
    "small.en": ("small.en.pt", "f953ad0fd29cacd07d5a9eda5624af0f6bcf2258be67c92b79389873d91e0872", 967_000_000),
    "small": ("small.pt", "9ecf779972d90ba49c06d968637d720dd632c55bbf19d441fb42bf17a411e794", 967_000_000),
    "medium.en": ("medium.en.pt", "d7440d1dc186f76616474e0ff0b3b6b879abc9d1a4926b7adfa41db2d497ab4f", 3_060_000_000),
    "medium": ("medium.pt", "345ae4da62f9b3d59415adc60127b97c714f32e89e936602e85993674d08dcb1", 3_060_000_000),
    "large-v3": ("large-v3.pt", "e5b1a55b89c1367dacf97e3e19bfd829a01529dbfdeefa8caeb59b3f1b81dadb", 6_180_000_000),
    "turbo": ("large-v3-turbo.pt", "aff26ae408abcba5fbf8813c21e62b0941638c5f6eebfb145be0c9839262a19a", 3_240_000_000),
}

# faster-whisper (CTranslate2) conversions on the Hub, pinned to a commit: (repo, revision, size, approx bytes int8).
# The turbo conversion moved from mobiuslabsgmbh/ to dropbox-dash/ with the same revision.
# distil-large-v3.5 (Hugging Face's own conversion): large-v3's 32-layer encoder with 2 decoder layers, trained on
# English only (it keeps large-v3's multilingual vocabulary, so the flag below, not the vocabulary, says English).
FASTER = (
    ("Systran/faster-whisper-tiny.en", "0d3d19a32d3338f10357c0889762bd8d64bbdeba", "tiny.en", 80_000_000),
    ("Systran/faster-whisper-tiny", "d90ca5fe260221311c53c58e660288d3deb8d356", "tiny", 80_000_000),
    ("Systran/faster-whisper-base.en", "3d3d5dee26484f91867d81cb899cfcf72b96be6c", "base.en", 150_000_000),
    ("Systran/faster-whisper-base", "ebe41f70d5b6dfa9166e2c581c45c9c0cfc57b66", "base", 150_000_000),
    ("Systran/faster-whisper-small.en", "d1d751a5f8271d482d14ca55d9e2deeebbae577f", "small.en", 490_000_000),
    ("Systran/faster-whisper-small", "536b0662742c02347bc0e980a01041f333bce120", "small", 490_000_000),
    ("Systran/faster-whisper-medium", "08e178d48790749d25932bbc082711ddcfdfbc4f", "medium", 1_530_000_000),
    ("Systran/faster-whisper-large-v3", "edaa852ec7e145841d8ffdb056a99866b5f0a478", "large-v3", 3_090_000_000),
    ("dropbox-dash/faster-whisper-large-v3-turbo", "0a363e9161cbc7ed1431c9597a8ceaf0c4f78fcf", "turbo", 1_620_000_000),
    ("distil-whisper/distil-large-v3.5-ct2", "9793ccc07920e0f830e1dba0343efcdf0ef8c903", "distil-large-v3.5",
     1_513_000_000),
)
ENGLISH_ONLY = {"distil-large-v3.5"}  # sizes trained on English only, whatever their vocabulary
CT2_FILES = ("config.json", "model.bin", "tokenizer.json", "vocabulary.*", "preprocessor_config.json")

SPEC = DemoSpec(
    name="whisper_asr",
    title="Whisper speech to text",
    description="Transcribe speech or translate it to English: text, timed segments, word timestamps and "
                ".srt/.vtt subtitles, for clips or hours of audio.",
    models=(
        # int8 CTranslate2 files: the size does not depend on the run dtype (size_dtype None)
        *(ModelChoice(repo, "hf", label=f"faster-whisper {size} (CTranslate2)", revision=rev, files=CT2_FILES,
                      approx_bytes=nbytes, license="MIT",
                      options={"engine": "faster", "size": size, "english_only": size in ENGLISH_ONLY})
          for repo, rev, size, nbytes in FASTER),
        *(ModelChoice(name, "native", label=f"openai-whisper {name}", sha256=sha, files=(file,), approx_bytes=nbytes,
                      license="MIT", size_dtype="float32", options={"engine": "openai", "size": name})
          for name, (file, sha, nbytes) in NATIVE.items()),
        ModelChoice("tiny-random", "random", label="tiny random (tests)",
                    options={"engine": "openai", "size": "tiny-random", "sample_len": 24}, hidden=True),
        # large-v3's front end (128 mel bins, 100 languages' vocabulary) and distil's 2-layer decoder, at toy widths
        ModelChoice("tiny-random-distil", "random", label="tiny random distil-large-v3.5 shape (tests)", license="MIT",
                    options={"engine": "openai", "size": "tiny-random-distil", "sample_len": 24, "english_only": True},
                    hidden=True),
    ),
    default_model={"cuda": "turbo", "cpu": "Systran/faster-whisper-base"},
    api_names=("transcribe",),
    gpu_concurrency=1,
    zero_gpu_seconds=120,
)
