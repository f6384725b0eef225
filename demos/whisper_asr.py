"""Whisper speech recognition: transcribe or translate speech, with subtitles, on long audio, on GPU and CPU.

Two engines behind one `transcribe`:
- faster-whisper (CTranslate2, int8 on CPU): the CPU default, several times faster than PyTorch there.
- openai-whisper (PyTorch): every size from tiny to large-v3 and turbo. Its GPU fast path cuts the audio into
  <= 30 s windows at quiet points and decodes many windows as one batch (fp16 weights, LayerNorm kept fp32),
  instead of `model.transcribe`'s one window after another.

Audio: WAV (8/16/24/32-bit PCM, float) is parsed here with numpy, so it works with no ffmpeg at all; every other
format (mp3, flac, ogg, m4a, webm, the audio track of mp4) is decoded by PyAV (FFmpeg's libraries, installed with
faster-whisper) or else the `ffmpeg` program. Defaults against hallucinated repeats: no conditioning on the
previous window, no-speech and compression-ratio checks with temperature fallback, an optional voice-activity
filter (Silero, from faster-whisper), and digital silence short-circuits to an empty transcript with a note.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import struct
import subprocess
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import numpy as np

from hub.errors import UserError
from hub.outputs import request_folder
from hub.spec import DemoSpec, ModelChoice

SAMPLE_RATE = 16_000
MIN_INPUT_RATE, MAX_INPUT_RATE = 1_000, 768_000  # sample rates accepted for (rate, samples) input
WINDOW_S = 30.0
MAX_MINUTES = 240.0  # default cap; operators change it with DEMOHUB_WHISPER_ASR_MAX_MINUTES
TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
NO_SPEECH_THRESHOLD = 0.6
LOGPROB_THRESHOLD = -1.0
COMPRESSION_RATIO_THRESHOLD = 2.4
SILENCE_PEAK = 1e-4  # below this peak amplitude (-80 dBFS) the audio is digital silence

# Architecture of each openai-whisper size (the checkpoints' `dims`), for `--weights random` without a download.
_DIMS = {  # name: (n_mels, n_vocab, audio state/heads/layers, text state/heads/layers)
    "tiny.en": (80, 51864, 384, 6, 4, 384, 6, 4), "tiny": (80, 51865, 384, 6, 4, 384, 6, 4),
    "base.en": (80, 51864, 512, 8, 6, 512, 8, 6), "base": (80, 51865, 512, 8, 6, 512, 8, 6),
    "small.en": (80, 51864, 768, 12, 12, 768, 12, 12), "small": (80, 51865, 768, 12, 12, 768, 12, 12),
    "medium.en": (80, 51864, 1024, 16, 24, 1024, 16, 24), "medium": (80, 51865, 1024, 16, 24, 1024, 16, 24),
    "large-v3": (128, 51866, 1280, 20, 32, 1280, 20, 32), "turbo": (128, 51866, 1280, 20, 32, 1280, 20, 4),
    "tiny-random": (80, 51865, 64, 2, 2, 64, 2, 2),
}

# openai-whisper's own download: file name in the cache and the SHA-256 its URL pins (whisper checks it too).
_NATIVE = {  # name: (file, sha256, approx bytes loaded fp32)
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
_FASTER = (
    ("Systran/faster-whisper-tiny.en", "0d3d19a32d3338f10357c0889762bd8d64bbdeba", "tiny.en", 80_000_000),
    ("Systran/faster-whisper-tiny", "d90ca5fe260221311c53c58e660288d3deb8d356", "tiny", 80_000_000),
    ("Systran/faster-whisper-base.en", "3d3d5dee26484f91867d81cb899cfcf72b96be6c", "base.en", 150_000_000),
    ("Systran/faster-whisper-base", "ebe41f70d5b6dfa9166e2c581c45c9c0cfc57b66", "base", 150_000_000),
    ("Systran/faster-whisper-small.en", "d1d751a5f8271d482d14ca55d9e2deeebbae577f", "small.en", 490_000_000),
    ("Systran/faster-whisper-small", "536b0662742c02347bc0e980a01041f333bce120", "small", 490_000_000),
    ("Systran/faster-whisper-medium", "08e178d48790749d25932bbc082711ddcfdfbc4f", "medium", 1_530_000_000),
    ("Systran/faster-whisper-large-v3", "edaa852ec7e145841d8ffdb056a99866b5f0a478", "large-v3", 3_090_000_000),
    ("mobiuslabsgmbh/faster-whisper-large-v3-turbo", "0a363e9161cbc7ed1431c9597a8ceaf0c4f78fcf", "turbo", 1_620_000_000),
)
_CT2_FILES = ("config.json", "model.bin", "tokenizer.json", "vocabulary.*", "preprocessor_config.json")

SPEC = DemoSpec(
    name="whisper_asr",
    title="Whisper speech to text",
    description="Transcribe speech or translate it to English: text, timed segments, word timestamps and "
                ".srt/.vtt subtitles, for clips or hours of audio.",
    models=(
        *(ModelChoice(repo, "hf", label=f"faster-whisper {size} (int8 on CPU)", revision=rev, files=_CT2_FILES,
                      approx_bytes=nbytes, license="MIT", options={"engine": "faster", "size": size})
          for repo, rev, size, nbytes in _FASTER),
        *(ModelChoice(name, "native", label=f"openai-whisper {name}", sha256=sha, files=(file,), approx_bytes=nbytes,
                      license="MIT", options={"engine": "openai", "size": name})
          for name, (file, sha, nbytes) in _NATIVE.items()),
        ModelChoice("tiny-random", "random", label="tiny random (tests)",
                    options={"hidden": True, "engine": "openai", "size": "tiny-random", "sample_len": 24}),
    ),
    default_model={"cuda": "turbo", "cpu": "Systran/faster-whisper-base"},
    api_names=("transcribe",),
    gpu_concurrency=1,
    zero_gpu_seconds=120,
)


# ---- results ------------------------------------------------------------------------------------------------


@dataclass
class Word:
    start: float
    end: float
    word: str
    probability: float


@dataclass
class Segment:
    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)


@dataclass
class Transcript:
    """What `transcribe` returns: the text, timed segments, the language and how sure the model was."""

    text: str
    segments: list[Segment]
    language: str
    language_probability: float
    duration: float
    task: str = "transcribe"
    note: str = ""
    done: bool = True  # False for the partial results `transcribe_iter` yields while it works
    progress: float = 1.0

    def to_txt(self) -> str:
        return "\n".join(s.text for s in self.segments) + ("\n" if self.segments else "")

    def to_srt(self) -> str:
        blocks = [f"{i}\n{_stamp(s.start, ',')} --> {_stamp(s.end, ',')}\n{s.text}\n"
                  for i, s in enumerate(self.segments, 1)]
        return "\n".join(blocks)

    def to_vtt(self) -> str:
        return "WEBVTT\n\n" + "\n".join(f"{_stamp(s.start, '.')} --> {_stamp(s.end, '.')}\n{s.text}\n"
                                        for s in self.segments)

    def to_json(self) -> str:
        d = asdict(self)
        d.pop("done"), d.pop("progress")
        return json.dumps(d, ensure_ascii=False, indent=1)


def _stamp(t: float, sep: str) -> str:
    ms = max(0, int(round(t * 1000)))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


# ---- audio --------------------------------------------------------------------------------------------------


def load_audio(source, max_seconds: float = MAX_MINUTES * 60) -> np.ndarray:
    """Any audio (a path, or `(sample_rate, array)` as gradio's numpy audio) -> float32 mono at 16 kHz.

    WAV is read with numpy (no ffmpeg needed); other formats with PyAV, else the ffmpeg program. Raises UserError
    for anything that is not usable audio, with the fix in the sentence.
    """
    if source is None or (isinstance(source, str) and not source.strip()):
        raise UserError("No audio given: upload an audio file or record from the microphone.")
    if isinstance(source, tuple):
        if len(source) != 2:
            raise UserError(f"Audio given as a tuple must be (sample_rate, samples), not {len(source)} items; "
                            "upload an audio file instead.")
        sr, data = source
        audio = _to_mono_float(np.asarray(data))
    elif isinstance(source, np.ndarray):
        sr, audio = SAMPLE_RATE, _to_mono_float(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise UserError(f"The audio file {path.name!r} was not found; upload it again.")
        if path.stat().st_size == 0:
            raise UserError(f"The file {path.name!r} is empty (0 bytes); upload a file that contains audio.")
        with open(path, "rb") as fh:
            head = fh.read(12)
        if head[:4] in (b"RIFF", b"RIFX") and head[8:12] == b"WAVE":
            sr, audio = _read_wav(path, max_seconds)
        else:
            return _check(_decode_other(path, max_seconds), max_seconds, path.name)
    if not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise UserError(f"The sample rate {sr!r} is not valid; give the audio as (sample_rate, samples).")
    if not MIN_INPUT_RATE <= sr <= MAX_INPUT_RATE:  # resample() builds a kernel that grows with the rate
        raise UserError(f"The sample rate {int(sr)} Hz is not a real audio rate; give audio sampled between "
                        f"{MIN_INPUT_RATE} and {MAX_INPUT_RATE} Hz (e.g. 16000, 44100 or 48000).")
    _check_length(audio.size / sr, max_seconds)
    return _check(resample(audio, int(sr), SAMPLE_RATE), max_seconds, "the audio")


def _check(audio: np.ndarray, max_seconds: float, name: str) -> np.ndarray:
    if audio.size == 0:
        raise UserError(f"{name} contains no audio samples (zero length); upload a recording with sound in it.")
    if audio.size < SAMPLE_RATE // 10:
        raise UserError(f"{name} is only {audio.size / SAMPLE_RATE * 1000:.1f} ms long; Whisper needs at least "
                        "0.1 seconds of audio.")
    if not np.all(np.isfinite(audio)):
        raise UserError(f"{name} contains invalid (NaN or infinite) samples; export it again.")
    _check_length(audio.size / SAMPLE_RATE, max_seconds)
    return audio


def _check_length(seconds: float, max_seconds: float) -> None:
    if seconds > max_seconds:
        raise UserError(f"The audio is {seconds / 60:.1f} minutes long; this hub accepts at most "
                        f"{max_seconds / 60:.0f} minutes. Cut it into parts (the operator can raise "
                        "DEMOHUB_WHISPER_ASR_MAX_MINUTES).")


def _to_mono_float(data: np.ndarray) -> np.ndarray:
    if data.ndim == 2:  # (samples, channels) as gradio gives it; (channels, samples) if clearly so
        data = data.T if data.shape[0] < data.shape[1] and data.shape[0] <= 8 else data
        data = data.astype(np.float64).mean(axis=1) if data.dtype.kind in "iu" else data.mean(axis=1)
        return _to_mono_float(np.asarray(data))
    if data.ndim != 1:
        raise UserError(f"Audio must be samples or (samples, channels), not an array of shape {data.shape}.")
    if data.dtype.kind == "f":
        return data.astype(np.float32)
    if data.dtype.kind == "u":  # unsigned 8-bit PCM is centred on 128
        bits = data.dtype.itemsize * 8
        return ((data.astype(np.float64) - 2 ** (bits - 1)) / 2 ** (bits - 1)).astype(np.float32)
    if data.dtype.kind == "i":
        return (data.astype(np.float64) / 2 ** (data.dtype.itemsize * 8 - 1)).astype(np.float32)
    raise UserError(f"Audio samples of type {data.dtype} are not supported; use integers or floats.")


def _read_wav(path: Path, max_seconds: float) -> tuple[int, np.ndarray]:
    """WAV by hand (the stdlib `wave` rejects float and 24-bit extensible files): PCM 8/16/24/32, float 32/64."""
    raw = path.read_bytes()
    end = "<" if raw[:4] == b"RIFF" else ">"
    pos, fmt, data = 12, None, None
    while pos + 8 <= len(raw):
        cid, size = raw[pos:pos + 4], struct.unpack(end + "I", raw[pos + 4:pos + 8])[0]
        body = raw[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            if len(body) < 16:
                break
            tag, channels, sr, _, block, bits = struct.unpack(end + "HHIIHH", body[:16])
            if tag == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the real tag opens the sub-format GUID
                tag = struct.unpack(end + "H", body[24:26])[0]
            fmt = (tag, channels, sr, block, bits)
        elif cid == b"data":
            data = body
            break
        pos += 8 + size + (size & 1)
    if fmt is None or data is None:
        raise UserError(f"{path.name!r} is a damaged WAV file (no format or data chunk); export it again.")
    tag, channels, sr, block, bits = fmt
    if channels < 1 or sr < 1 or block < 1 or block != channels * ((bits + 7) // 8):
        raise UserError(f"{path.name!r} has an invalid WAV header ({channels} channels, {sr} Hz, {bits}-bit); "
                        "export it again.")
    _check_length(len(data) / block / sr, max_seconds)
    n = len(data) // block  # a cut-off last frame is dropped
    buf = np.frombuffer(data[:n * block], dtype=np.uint8).reshape(n, channels, block // channels)
    width = block // channels
    if tag == 1 and width == 1:
        x = (buf[..., 0].astype(np.float32) - 128.0) / 128.0
    elif tag == 1 and width in (2, 3, 4):
        le = buf if end == "<" else buf[..., ::-1]  # little-endian bytes, lowest first
        wide = np.zeros((n, channels, 4), dtype=np.uint8)
        wide[..., 4 - width:] = le  # left-align in 32 bits: sign extension for free
        x = wide.view("<i4")[..., 0].astype(np.float32) / 2.0 ** 31
    elif tag == 3 and width in (4, 8):
        x = buf.reshape(n, -1).view(end + ("f4" if width == 4 else "f8")).reshape(n, channels).astype(np.float32)
    else:
        raise UserError(f"{path.name!r} uses a WAV encoding this hub does not read (format {tag}, {bits}-bit); "
                        "save it as 16-bit PCM WAV, FLAC or MP3.")
    return sr, x.mean(axis=1) if channels > 1 else x[:, 0]


def _decode_other(path: Path, max_seconds: float) -> np.ndarray:
    try:
        import av  # noqa: F401  (PyAV: FFmpeg's libraries; a dependency of faster-whisper)
    except ImportError:
        av = None
    if av is not None:
        return _decode_pyav(path, max_seconds)
    if shutil.which("ffmpeg"):
        return _decode_ffmpeg(path, max_seconds)
    if path.suffix.lower() in (".flac", ".ogg"):
        try:
            import soundfile
        except ImportError:
            soundfile = None
        if soundfile is not None:
            data, sr = soundfile.read(str(path), dtype="float32", always_2d=True)
            return resample(data.mean(axis=1), sr, SAMPLE_RATE)
    raise UserError(f"Decoding {path.suffix or 'this'} audio needs ffmpeg, which is not installed here: install it "
                    "(Debian/Ubuntu: `apt-get install ffmpeg`; on a Space: add `ffmpeg` to packages.txt), or upload "
                    "a WAV file.")


def _decode_pyav(path: Path, max_seconds: float) -> np.ndarray:
    import av

    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except (av.error.InvalidDataError, av.error.FFmpegError, UnicodeDecodeError):
        raise UserError(f"{path.name!r} is not an audio or video file this hub can read (or it is corrupt); "
                        "upload WAV, MP3, FLAC, OGG, M4A, WEBM or MP4.") from None
    with container:
        if not container.streams.audio:
            raise UserError(f"{path.name!r} has no audio track: it is not an audio file, or a video without sound; "
                            "upload a file with speech in it.")
        stream = container.streams.audio[0]
        if container.duration and container.duration / 1e6 > max_seconds:
            _check_length(container.duration / 1e6, max_seconds)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        parts, total = [], 0
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray().reshape(-1))
                    total += parts[-1].size
                if total > (max_seconds + 1) * SAMPLE_RATE:
                    _check_length(total / SAMPLE_RATE, max_seconds)
            for out in resampler.resample(None):
                parts.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as e:
            if not parts:
                raise UserError(f"{path.name!r} could not be decoded ({e.strerror or e}); the file is corrupt or "
                                "not audio.") from None
            # a damaged tail: keep what decoded, like ffmpeg does
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


def _decode_ffmpeg(path: Path, max_seconds: float) -> np.ndarray:
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-t", str(max_seconds + 1), "-vn", "-f", "f32le",
           "-ac", "1", "-ar", str(SAMPLE_RATE), "-"]
    run = subprocess.run(cmd, capture_output=True)
    if run.returncode != 0:
        raise UserError(f"{path.name!r} could not be decoded by ffmpeg ({run.stderr.decode(errors='replace')[:200]}); "
                        "the file is corrupt or not audio.")
    return np.frombuffer(run.stdout, np.float32).copy()


def resample(x: np.ndarray, sr_in: int, sr_out: int = SAMPLE_RATE, zero_crossings: int = 16) -> np.ndarray:
    """Band-limited (Kaiser-windowed sinc, polyphase) resampling in numpy, in blocks to bound memory."""
    x = np.asarray(x, np.float32)
    if sr_in == sr_out or x.size == 0:
        return x
    g = math.gcd(sr_in, sr_out)
    up, down = sr_out // g, sr_in // g
    cutoff = min(1.0, up / down) * 0.97  # of the input Nyquist; a little margin against aliasing
    width = int(math.ceil(zero_crossings / cutoff))
    taps = np.arange(-width + 1, width + 1)  # input offsets around floor(t)
    phases = np.arange(up) / up  # fractional part of t for each phase
    d = taps[None, :] - phases[:, None]
    kernel = cutoff * np.sinc(cutoff * d) * np.kaiser(2 * width + 1, 8.6)[np.clip(np.round(d + width), 0, 2 * width).astype(int)]
    kernel = (kernel / kernel.sum(axis=1, keepdims=True)).astype(np.float32)
    n_out = int(math.ceil(x.size * up / down))
    padded = np.pad(x, (width, width + 1))
    out = np.empty(n_out, np.float32)
    for s in range(0, n_out, 1 << 18):
        n = np.arange(s, min(n_out, s + (1 << 18)))
        base, phase = (n * down) // up, (n * down) % up
        out[n] = np.einsum("ij,ij->i", padded[base[:, None] + taps[None, :] + width], kernel[phase])
    return out


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


# ---- languages ----------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def languages() -> dict[str, str]:
    """Whisper's language codes -> names, read from openai-whisper's source without importing it (no torch)."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec("whisper")
    src = Path(spec.origin).with_name("tokenizer.py").read_text(encoding="utf-8")
    for node in ast.parse(src).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "LANGUAGES":
            return ast.literal_eval(node.value)
    raise RuntimeError("openai-whisper's tokenizer has no LANGUAGES table")


def normalize_language(language: str | None) -> str | None:
    """'' / 'auto' -> None (detect); a code ('fr') or an English name ('French') -> the code; else UserError."""
    if language is not None and not isinstance(language, str):
        raise UserError("The language must be text: a code like 'en' or 'fr', a name like 'German', or empty to "
                        "auto-detect.")
    text = (language or "").strip().lower()
    if text in ("", "auto", "auto-detect", "detect"):
        return None
    table = languages()
    if text in table:
        return text
    by_name = {v: k for k, v in table.items()}
    if text in by_name:
        return by_name[text]
    m = re.match(r"^([a-z]{2,3}|haw|yue)\b", text)  # "fr (french)" from the dropdown
    if m and m.group(1) in table:
        return m.group(1)
    raise UserError(f"Unknown language {language!r}: use a code like 'en', 'fr', 'de', 'ja' or a name like 'German' "
                    "(or leave it empty to auto-detect).")


# ---- engines ------------------------------------------------------------------------------------------------


@dataclass
class Options:
    """Decoding settings. The defaults are chosen against hallucinated repeats on silence and long files."""

    task: str = "transcribe"
    language: str | None = None
    word_timestamps: bool = False
    vad: bool = True
    initial_prompt: str = ""
    beam_size: int = 5
    temperatures: tuple[float, ...] = TEMPERATURES
    batch_size: int | None = None  # openai-whisper windows per batch (None: by device)
    force_tokens: int | None = None  # benchmarks with random weights: decode exactly this many tokens per window


class OpenAIWhisperEngine:
    """openai-whisper model + the batched-window decoder."""

    kind = "openai-whisper"

    def __init__(self, model, name: str, device: str, dtype: str, sample_len: int | None = None):
        import torch

        self.model, self.name, self.device, self.dtype = model, name, device, dtype
        self.multilingual = model.is_multilingual
        self.sample_len = sample_len
        self.random = False
        # alignment_heads is a sparse buffer: count dense tensors only (the hub's generic count can't read sparse)
        self.nbytes = sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers())
                          if t.layout == torch.strided)

    def close(self):
        self.model = None


class FasterWhisperEngine:
    """faster-whisper (CTranslate2) model."""

    kind = "faster-whisper"

    def __init__(self, model, name: str, device: str, compute_type: str, nbytes: int):
        self.model, self.name, self.device, self.compute_type, self.nbytes = model, name, device, compute_type, nbytes
        self.multilingual = model.model.is_multilingual

    def close(self):
        self.model = None


def load(weights, device: str, dtype: str):
    """Load the chosen model: faster-whisper for the CTranslate2 repos and folders, openai-whisper otherwise."""
    opts = weights.choice.options
    if weights.source == "random":
        # Speed does not depend on weight values: any size becomes the openai-whisper architecture of that size
        # (a faster-whisper choice included: CTranslate2 has no random init), with random weights.
        return build_random(opts.get("size", "tiny-random"), device, dtype, sample_len=opts.get("sample_len"))
    if opts.get("engine") == "faster" or (weights.source == "path" and Path(weights.path, "model.bin").is_file()):
        return _load_faster(weights, device, dtype)
    return _load_openai(weights, device, dtype)


def _load_faster(weights, device: str, dtype: str) -> FasterWhisperEngine:
    from faster_whisper import WhisperModel

    path = Path(weights.path)
    if not (path / "model.bin").is_file() or not (path / "config.json").is_file():
        raise UserError(f"{path} is not a faster-whisper (CTranslate2) model folder: it needs model.bin and "
                        "config.json (convert a model with ct2-transformers-converter).")
    kind = device.split(":")[0]
    compute = "int8" if kind == "cpu" else ("float16" if dtype == "float16" else "int8_float16" if kind == "cuda" else "int8")
    index = int(device.split(":")[1]) if ":" in device else 0
    model = WhisperModel(str(path), device="cuda" if kind == "cuda" else "cpu", device_index=index,
                         compute_type=compute, cpu_threads=os.cpu_count() or 0, local_files_only=True)
    nbytes = weights.choice.approx_bytes or (path / "model.bin").stat().st_size
    return FasterWhisperEngine(model, weights.choice.id, device, compute, nbytes)


def _load_openai(weights, device: str, dtype: str) -> OpenAIWhisperEngine:
    import whisper

    name = weights.choice.options.get("size", weights.choice.id)
    if weights.source == "path":
        target = str(weights.path)  # a .pt checkpoint (whisper's format); torch.load runs with weights_only=True
    elif name in whisper._MODELS:
        target = name
    else:
        raise UserError(f"openai-whisper has no model called {name!r}; use one of "
                        f"{', '.join(sorted(_NATIVE))}, or a local .pt / CTranslate2 folder path.")
    try:
        model = whisper.load_model(target, device="cpu", download_root=str(weights.path))
    except RuntimeError as e:
        if "SHA256" in str(e):
            raise UserError(f"The downloaded {name} checkpoint failed openai-whisper's SHA-256 check; delete it from "
                            f"{weights.path} and run `demohub fetch whisper_asr` again.") from None
        raise
    return _place(model, name, device, dtype, None)


def fetch(weights) -> None:
    """`demohub fetch`: download an openai-whisper checkpoint into the cache (whisper verifies its SHA-256)."""
    if weights.source != "native":
        return
    import whisper

    name = weights.choice.options.get("size", weights.choice.id)
    if name not in whisper._MODELS:
        raise UserError(f"openai-whisper has no model called {name!r}; use one of {', '.join(sorted(_NATIVE))}.")
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


def transcribe(engine, audio, options: Options | None = None, *, max_seconds: float = MAX_MINUTES * 60,
               **kw) -> Transcript:
    """Transcribe (or translate) `audio` (a path, `(sample_rate, samples)`, or 16 kHz samples). See `Options`."""
    result = None
    for result in transcribe_iter(engine, audio, options, max_seconds=max_seconds, **kw):
        pass
    return result


def transcribe_iter(engine, audio, options: Options | None = None, *, max_seconds: float = MAX_MINUTES * 60,
                    **kw) -> Iterator[Transcript]:
    """Like `transcribe`, yielding partial transcripts (done=False, progress 0..1) as windows finish.

    Stopping the iteration stops the work within one step (one batch of windows / one segment).
    """
    if kw and options is not None:
        raise TypeError("give either an Options or keyword options, not both")
    opts = replace(options) if options is not None else Options(**kw)
    if opts.task not in ("transcribe", "translate"):
        raise UserError(f"Task must be 'transcribe' or 'translate', not {opts.task!r}.")
    opts.language = normalize_language(opts.language)
    try:
        beam = float(opts.beam_size)
    except (TypeError, ValueError, OverflowError):
        beam = math.nan
    if not (1 <= beam <= 10 and beam == int(beam)):
        raise UserError("Beam size must be a whole number between 1 and 10 (1 = greedy, fastest).")
    opts.beam_size = int(beam)
    if not engine.multilingual:
        if opts.task == "translate":
            raise UserError(f"{engine.name} is an English-only model and cannot translate; pick a multilingual "
                            "model (one without '.en') to translate to English.")
        if opts.language not in (None, "en"):
            raise UserError(f"{engine.name} only understands English; pick a multilingual model (one without "
                            f"'.en') for {languages()[opts.language].title()}.")
    samples = load_audio(audio, max_seconds)
    duration = samples.size / SAMPLE_RATE
    if float(np.abs(samples).max()) < SILENCE_PEAK:
        yield Transcript("", [], opts.language or "", 0.0, duration, opts.task,
                         note="The audio is silent (no signal above -80 dBFS): nothing to transcribe.")
        return
    run = _run_faster if isinstance(engine, FasterWhisperEngine) else _run_openai
    last = None
    for last in run(engine, samples, opts):
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


def _speech_map(samples: np.ndarray, opts: Options):
    """(speech-only audio, function mapping its times back to the original) using faster-whisper's Silero VAD."""
    if not opts.vad:
        return samples, lambda t, end=False: t
    from faster_whisper.vad import SpeechTimestampsMap, VadOptions, get_speech_timestamps

    chunks = get_speech_timestamps(samples, VadOptions())
    if not chunks:
        return samples[:0], lambda t, end=False: t
    speech = np.concatenate([samples[c["start"]:c["end"]] for c in chunks])
    mapping = SpeechTimestampsMap(chunks, SAMPLE_RATE)
    return speech, lambda t, end=False: mapping.get_original_time(t, is_end=end)


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
            out.segments.append(_clamped(seg, out, duration))
            out.text = " ".join(x.text for x in out.segments)
        out.progress = min(1.0, s.end / duration) if duration else 1.0
        yield out
    out.done, out.progress = True, 1.0
    yield out


def _clamped(seg: Segment, out: Transcript, duration: float) -> Segment:
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


def _run_openai(engine: OpenAIWhisperEngine, samples: np.ndarray, opts: Options) -> Iterator[Transcript]:
    import torch
    import whisper
    from whisper.audio import HOP_LENGTH, N_FRAMES, N_SAMPLES
    from whisper.tokenizer import get_tokenizer

    model = engine.model
    duration = samples.size / SAMPLE_RATE
    speech, to_original = _speech_map(samples, opts)
    out = Transcript("", [], opts.language or ("en" if not engine.multilingual else ""), 1.0, duration,
                     done=False, progress=0.0)
    if speech.size < SAMPLE_RATE // 10:
        out.done = True
        yield out
        return
    device = next(model.parameters()).device
    with torch.inference_mode():
        # one log-mel over the whole audio, like `transcribe` (its dB floor is relative to the loudest frame)
        mel = whisper.log_mel_spectrogram(torch.from_numpy(speech), model.dims.n_mels, padding=N_SAMPLES,
                                          device=device)
        windows = [(s // HOP_LENGTH, math.ceil(e / HOP_LENGTH)) for s, e in plan_windows(speech)]
        language, prob = opts.language, 1.0
        if engine.multilingual and language is None:
            first = whisper.pad_or_trim(mel[:, windows[0][0]:windows[0][1]], N_FRAMES).to(_dtype(engine))
            _, probs = model.detect_language(first)
            language = max(probs, key=probs.get)
            prob = float(probs[language])
        out.language, out.language_probability = language or "en", prob
        tokenizer = get_tokenizer(engine.multilingual, num_languages=model.num_languages,
                                  language=language or "en", task=opts.task)
        batch = opts.batch_size or (16 if device.type == "cuda" else 4)
        done = 0
        for i in range(0, len(windows), batch):
            group = windows[i:i + batch]
            mels = torch.stack([whisper.pad_or_trim(mel[:, a:b], N_FRAMES) for a, b in group])
            results = decode_windows(engine, mels, opts, language, tokenizer)
            for (a, b), r, m in zip(group, results, mels):
                if r is None:  # judged silence: skipped, as `transcribe` does
                    continue
                offset, length = a * HOP_LENGTH / SAMPLE_RATE, (b - a) * HOP_LENGTH / SAMPLE_RATE
                segs = _segments_from_tokens(r.tokens, tokenizer, offset, length)
                if opts.word_timestamps and segs:
                    _add_words(engine, tokenizer, segs, m, a, b - a)
                for seg in segs:
                    seg.start, seg.end = to_original(seg.start), to_original(seg.end, True)
                    for w in seg.words:
                        w.start, w.end = to_original(w.start), to_original(w.end, True)
                    out.segments.append(_clamped(seg, out, duration))
            done += len(group)
            out.text = " ".join(s.text for s in out.segments)
            out.progress = done / len(windows)
            yield out
    out.done, out.progress = True, 1.0
    yield out


def _dtype(engine: OpenAIWhisperEngine):
    import torch

    return torch.float16 if engine.dtype == "float16" else torch.float32


def decode_windows(engine: OpenAIWhisperEngine, mels, opts: Options, language: str | None, tokenizer=None):
    """Decode a batch of 30-s log-mel windows at once, with `transcribe`'s temperature fallback per window.

    Returns one `whisper.DecodingResult` per window, or None where the window is judged to be silence.
    """
    import whisper

    model = engine.model
    eot = tokenizer.eot if tokenizer is not None else None
    fp16 = engine.dtype == "float16"
    mels = mels.to(_dtype(engine))
    results: list = [None] * len(mels)
    todo = list(range(len(mels)))
    # no fallback when forcing lengths (benchmarks) or on random weights (every window would fail the checks)
    temps = opts.temperatures[:1] if opts.force_tokens is not None or engine.random else opts.temperatures
    for t in temps:
        kw = dict(task=opts.task, language=language, temperature=t, fp16=fp16,
                  prompt=opts.initial_prompt or None, sample_len=opts.force_tokens or engine.sample_len)
        if t == 0 and opts.beam_size > 1:
            kw.update(beam_size=int(opts.beam_size), patience=1.0)
        elif t > 0:
            kw.update(best_of=5)
        if opts.force_tokens is not None:  # equal work per window: end-of-text can never be chosen
            kw["suppress_tokens"] = [-1, eot if eot is not None else model.dims.n_vocab - 1]
        decoded = _decode_batched(model, mels[todo], whisper.DecodingOptions(**kw))
        retry = []
        for i, r in zip(todo, decoded):
            results[i] = r
            silent = r.no_speech_prob > NO_SPEECH_THRESHOLD
            if (r.compression_ratio > COMPRESSION_RATIO_THRESHOLD or r.avg_logprob < LOGPROB_THRESHOLD) and not silent:
                retry.append(i)
        todo = retry
        if not todo or opts.force_tokens is not None:
            break
    for i, r in enumerate(results):
        if r.no_speech_prob > NO_SPEECH_THRESHOLD and r.avg_logprob < LOGPROB_THRESHOLD and not engine.random \
                and opts.force_tokens is None:
            results[i] = None
    return results


def _decode_batched(model, mels, options):
    """`whisper.decode` on a batch; on CUDA out-of-memory, halve the batch and go on (the work is the same).

    Greedy decoding (temperature 0, no beam) runs `fast_greedy_task()`: the same task with a batch-wide step.
    """
    import torch
    import whisper

    greedy = options.temperature == 0 and not options.beam_size and not options.best_of
    size, out, i = len(mels), [], 0
    while i < len(mels):
        try:
            if greedy:
                with torch.no_grad():
                    out.extend(fast_greedy_task()(model, options).run(mels[i:i + size]))
            else:
                out.extend(whisper.decode(model, mels[i:i + size], options))
            i += size
        except torch.cuda.OutOfMemoryError:
            if size == 1:
                raise
            torch.cuda.empty_cache()
            size = max(1, size // 2)
    return out


@lru_cache(maxsize=1)
def fast_greedy_task():
    """whisper's `DecodingTask` with a faster greedy step for a batch of windows (made lazily: whisper needs torch).

    The library's step applies the timestamp rules one window at a time: per window and per token it copies the
    tokens to the host (`.tolist()`), indexes with boolean masks and compares GPU scalars in Python, each a device
    sync, so a batch of windows decodes little faster than the windows one by one. Here the same rules run on the
    whole batch at once, from a small per-window state (was the last token a timestamp, the one before, the last
    timestamp), with masks built once per batch, into a preallocated token buffer, checking for the end every 8
    tokens instead of syncing on every one. Same model calls (the library's key/value cache), same filters, same
    greedy choice: tests check the tokens and log-probabilities against `whisper.decode`.
    """
    import torch
    import torch.nn.functional as F
    from whisper.decoding import ApplyTimestampRules, DecodingTask, SuppressBlank, SuppressTokens

    class FastGreedyTask(DecodingTask):
        def _main_loop(self, audio_features, tokens):
            rules = [f for f in self.logit_filters if isinstance(f, ApplyTimestampRules)]
            blank = [f for f in self.logit_filters if isinstance(f, SuppressBlank)]
            suppress = [f for f in self.logit_filters if isinstance(f, SuppressTokens)]
            if len(rules) + len(blank) + len(suppress) != len(self.logit_filters) or self.n_group != 1:
                return super()._main_loop(audio_features, tokens)  # a filter this step does not know
            tk, dev, n, begin = self.tokenizer, audio_features.device, tokens.shape[0], tokens.shape[1]
            eot, ts0 = tk.eot, tk.timestamp_begin
            cols = torch.arange(self.model.dims.n_vocab, device=dev)
            banned = torch.zeros(cols.shape, dtype=torch.bool, device=dev)
            for f in suppress:
                banned[list(f.suppress_tokens)] = True
            if rules and tk.no_timestamps is not None:
                banned[tk.no_timestamps] = True
            is_ts, is_text, before_ts = cols >= ts0, cols < eot, cols < ts0
            first = before_ts.clone()  # timestamp rules: the first token must be a timestamp ...
            if rules and rules[0].max_initial_timestamp_index is not None:
                first |= cols > ts0 + rules[0].max_initial_timestamp_index  # ... no later than the set maximum
            last_ts = torch.zeros(n, dtype=torch.bool, device=dev)  # the last sampled token was a timestamp
            pen_ts = torch.ones(n, dtype=torch.bool, device=dev)  # the one before too (or fewer than 2 sampled)
            stamp = torch.full((n,), -1, dtype=torch.long, device=dev)  # the last timestamp token, -1: none
            buf = torch.full((n, min(begin + self.sample_len, self.n_ctx + 1)), eot, dtype=tokens.dtype, device=dev)
            buf[:, :begin] = tokens
            sum_logprobs = torch.zeros(n, device=dev)
            no_speech_probs = [np.nan] * n
            length, every = begin, 1 if dev.type == "cpu" else 8
            try:
                for i in range(self.sample_len):
                    logits = self.inference.logits(buf[:, :length], audio_features)
                    if i == 0 and tk.no_speech is not None:
                        no_speech_probs = logits[:, self.sot_index].float().softmax(dim=-1)[:, tk.no_speech].tolist()
                    logits = logits[:, -1]
                    if i == 0:
                        for f in blank:
                            f.apply(logits, buf[:, :length])
                    logits.masked_fill_(banned, -np.inf)
                    if rules:
                        if i == 0:
                            logits.masked_fill_(first, -np.inf)
                        else:
                            pair_done = last_ts & pen_ts  # a closed pair: text must follow
                            pair_open = last_ts & ~pen_ts  # an opening timestamp: another timestamp or EOT
                            logits.masked_fill_(pair_done[:, None] & is_ts, -np.inf)
                            logits.masked_fill_(pair_open[:, None] & is_text, -np.inf)
                            floor = torch.where(pair_open, stamp, stamp + 1)  # never earlier, never empty
                            logits.masked_fill_((stamp >= 0)[:, None] & is_ts & (cols < floor[:, None]), -np.inf)
                        lp = F.log_softmax(logits.float(), dim=-1)
                        ts_wins = lp[:, ts0:].logsumexp(dim=-1) > lp[:, :ts0].max(dim=-1).values
                        logits.masked_fill_(ts_wins[:, None] & before_ts, -np.inf)
                    nxt = logits.argmax(dim=-1)
                    ended = buf[:, length - 1] == eot
                    chosen = F.log_softmax(logits.float(), dim=-1).gather(1, nxt[:, None])[:, 0]
                    sum_logprobs += chosen * ~ended
                    nxt = torch.where(ended, torch.full_like(nxt, eot), nxt)
                    buf[:, length] = nxt
                    length += 1
                    pen_ts = last_ts if i >= 1 else pen_ts
                    last_ts = nxt >= ts0
                    stamp = torch.where(last_ts, nxt, stamp)
                    if length > self.n_ctx or length == buf.shape[1]:
                        break
                    if (i + 1) % every == 0 and bool((nxt == eot).all()):
                        break
            finally:
                self.inference.cleanup_caching()
            return buf[:, :length], sum_logprobs, no_speech_probs

    return FastGreedyTask


def _segments_from_tokens(tokens, tokenizer, offset: float, length: float) -> list[Segment]:
    """Split a window's tokens at timestamp tokens into segments (times relative to the audio start)."""
    ts0, prec = tokenizer.timestamp_begin, 0.02
    segs, start, text = [], None, []
    for tok in list(tokens):
        if tok >= ts0:
            t = min((tok - ts0) * prec, length)
            if text:
                segs.append((start if start is not None else 0.0, t, text))
                text, start = [], None
            else:
                start = t
        elif tok < tokenizer.eot:
            text.append(tok)
    if text:
        segs.append((start if start is not None else (segs[-1][1] if segs else 0.0), length, text))
    out = []
    for s, e, toks in segs:
        words = tokenizer.decode(toks).strip()
        if words:
            seg = Segment(round(offset + s, 3), round(offset + max(e, s), 3), words)
            seg.tokens = toks  # kept for word alignment
            out.append(seg)
    return out


def _add_words(engine, tokenizer, segs: list[Segment], mel, frame0: int, n_frames: int) -> None:
    from whisper.timing import add_word_timestamps

    dicts = [{"seek": frame0, "start": s.start, "end": s.end, "tokens": s.tokens, "text": s.text} for s in segs]
    add_word_timestamps(segments=dicts, model=engine.model, tokenizer=tokenizer, mel=mel, num_frames=n_frames,
                        last_speech_timestamp=segs[0].start)
    for seg, d in zip(segs, dicts):
        seg.words = [Word(float(w["start"]), float(w["end"]), w["word"], round(float(w["probability"]), 4))
                     for w in d.get("words", [])]


def write_files(t: Transcript, folder: str | Path, stem: str = "transcript") -> list[str]:
    """Write .txt, .srt, .vtt and .json next to each other; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^\w.-]+", "_", stem)[:80] or "transcript"
    paths = []
    for ext, text in (("txt", t.to_txt()), ("srt", t.to_srt()), ("vtt", t.to_vtt()), ("json", t.to_json())):
        p = folder / f"{stem}.{ext}"
        p.write_text(text, encoding="utf-8")
        paths.append(str(p))
    return paths


# ---- UI -----------------------------------------------------------------------------------------------------


def ui(ctx):
    import gradio as gr

    from hub.assets import package_file

    try:
        max_minutes = float(ctx.settings.demo_option(SPEC.name, "max_minutes", str(MAX_MINUTES)))
    except ValueError:
        raise UserError("DEMOHUB_WHISPER_ASR_MAX_MINUTES must be a number of minutes, like 240.") from None
    lang_choices = [("Auto-detect", "auto")] + [(f"{name.title()} ({code})", code)
                                                for code, name in sorted(languages().items(), key=lambda kv: kv[1])]
    with gr.Row():
        with gr.Column():
            model = ctx.model_dropdown(info="faster-whisper is fastest on CPU; '.en' models are English-only.")
            audio = gr.Audio(sources=["upload", "microphone"], type="filepath", format=None, label="Audio")
            video = gr.File(label="...or a video / other audio file (mp4, webm, m4a, ogg...)", type="filepath",
                            file_types=["audio", "video", ".m4a", ".webm", ".ogg", ".opus", ".mkv"])
            with gr.Row():
                task = gr.Radio([("Transcribe", "transcribe"), ("Translate to English", "translate")],
                                value="transcribe", label="Task")
                language = gr.Dropdown(lang_choices, value="auto", label="Language", allow_custom_value=True)
            with gr.Accordion("Options", open=False):
                words = gr.Checkbox(False, label="Word-level timestamps")
                vad = gr.Checkbox(True, label="Voice-activity filter (skip silence: faster, fewer invented words)")
                prompt = gr.Textbox(label="Initial prompt (vocabulary hints: names, terms)", lines=2)
                beam = gr.Slider(1, 10, value=5, step=1, label="Beam size (1 = greedy, fastest)")
            with gr.Row():
                go = gr.Button("Transcribe", variant="primary")
                stop = gr.Button("Stop")
            # Speech clips that ship with gradio (a missing one is left out)
            clips = (package_file("gradio", "media_assets", "audio", n)
                     for n in ("heath_ledger.mp3", "cate_blanch_2.mp3", "cate_blanch.mp3"))
            speech = [str(p) for p in clips if p is not None]
            if speech:
                gr.Examples([[p] for p in speech], [audio], label="Speech clips (ship with gradio)",
                            cache_examples=False)
        with gr.Column():
            info = gr.Markdown()
            text = gr.Textbox(label="Transcript", lines=10, buttons=["copy"])
            table = gr.Dataframe(headers=["start", "end", "text"], label="Segments", wrap=True)
            word_table = gr.Dataframe(headers=["start", "end", "word", "probability"], label="Words", visible=True)
            files = gr.File(label="Downloads (.txt .srt .vtt .json)", file_count="multiple")
            record = gr.JSON(label="Record")

    @ctx.handler
    def run(model_id, audio_path, other_path, task_v, language_v, words_v, vad_v, prompt_v, beam_v,
            progress=gr.Progress(track_tqdm=True)):
        source = audio_path or other_path
        opts = Options(task=task_v or "transcribe", language=language_v, word_timestamps=bool(words_v),
                       vad=bool(vad_v), initial_prompt=prompt_v or "", beam_size=int(beam_v or 5))
        progress(0, desc="Loading the model")
        with ctx.manager.use(ctx.name, model_id) as lease:
            if lease.warning:
                gr.Warning(lease.warning)
            import time

            t0 = time.perf_counter()
            for t in transcribe_iter(lease.engine, source, opts, max_seconds=max_minutes * 60):
                progress(t.progress, desc=f"Transcribing ({t.progress:.0%} of {t.duration / 60:.1f} min)")
                if t.done:
                    break
                yield (_summary(t, None), t.text, _rows(t), gr.skip(), gr.skip(), gr.skip())
            elapsed = time.perf_counter() - t0
            stem = Path(source).stem if source else "transcript"
            paths = write_files(t, request_folder(SPEC.name, "transcripts"), stem)
            rec = lease.record(engine=lease.engine.kind, task=opts.task, language=opts.language or "auto",
                               detected_language=t.language, language_probability=round(t.language_probability, 4),
                               word_timestamps=opts.word_timestamps, vad=opts.vad, beam_size=opts.beam_size,
                               initial_prompt=opts.initial_prompt, audio_seconds=round(t.duration, 2),
                               seconds=round(elapsed, 2), real_time_factor=round(elapsed / t.duration, 4))
        word_rows = [[w.start, w.end, w.word, w.probability] for s in t.segments for w in s.words]
        yield (_summary(t, elapsed), t.text, _rows(t), word_rows, paths, rec)

    event = go.click(run, [model, audio, video, task, language, words, vad, prompt, beam],
                     [info, text, table, word_table, files, record], api_name="transcribe", **ctx.events)
    stop.click(None, cancels=[event], api_name=False)


def _rows(t: Transcript) -> list[list]:
    return [[s.start, s.end, s.text] for s in t.segments]


def _summary(t: Transcript, elapsed: float | None) -> str:
    lang = languages().get(t.language, t.language or "?").title()
    parts = [f"**Language:** {lang} ({t.language}, probability {t.language_probability:.0%})",
             f"**Audio:** {t.duration:.1f} s"]
    if elapsed is not None:
        parts.append(f"**Took:** {elapsed:.1f} s (real-time factor {elapsed / max(t.duration, 1e-9):.2f})")
    else:
        parts.append(f"**Progress:** {t.progress:.0%}")
    return " · ".join(parts) + (f"\n\n{t.note}" if t.note else "")
