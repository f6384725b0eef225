"""Audio test files written independently of the code under test (WAV in every encoding, tones)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np


def write_wav(path, samples: np.ndarray, sr: int, kind: str = "pcm16", channels: int = 1, extensible=False):
    """A WAV writer independent of the code under test: pcm8/pcm16/pcm24/pcm32/float32/float64."""
    x = np.repeat(samples[:, None], channels, axis=1) if samples.ndim == 1 else samples
    tag, width = {"pcm8": (1, 1), "pcm16": (1, 2), "pcm24": (1, 3), "pcm32": (1, 4),
                  "float32": (3, 4), "float64": (3, 8)}[kind]
    if kind == "pcm8":
        data = np.clip(np.round(x * 127 + 128), 0, 255).astype(np.uint8).tobytes()
    elif kind in ("pcm16", "pcm32"):
        dt, full = ("<i2", 32767) if kind == "pcm16" else ("<i4", 2**31 - 1)
        data = np.round(np.clip(x, -1, 1) * full).astype(dt).tobytes()
    elif kind == "pcm24":
        v = np.round(np.clip(x, -1, 1) * (2**23 - 1)).astype("<i4").reshape(-1)
        data = np.stack([(v >> s) & 0xFF for s in (0, 8, 16)], axis=1).astype(np.uint8).tobytes()
    else:
        data = x.astype("<f4" if kind == "float32" else "<f8").tobytes()
    block = channels * width
    if extensible:
        guid = struct.pack("<H", tag) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt = struct.pack("<HHIIHHHHI", 0xFFFE, channels, sr, sr * block, block, width * 8, 22, width * 8, 0) + guid
    else:
        fmt = struct.pack("<HHIIHH", tag, channels, sr, sr * block, block, width * 8)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    Path(path).write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return str(path)


def tone(freq: float, seconds: float, sr: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(x: np.ndarray, sr: int = 16_000) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / sr)[spec.argmax()])
