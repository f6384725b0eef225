"""Speech to bytes: the output formats of `/v1/audio/speech` and the tab's download (mp3, opus, aac, flac, wav, pcm).

`Encoder(fmt, in_rate)` takes float32 mono samples as they are made (`feed`) and returns the bytes of the file
so far; `close()` returns the rest. The streamed bytes are one valid file, written to an output that cannot seek
back (a streamed WAV says "unknown length" in its header, as OpenAI's does), so every chunk can be sent as soon as it
is made. `encode(samples, in_rate, fmt)` makes a whole file the same way (a WAV with its exact sizes).

PyAV (FFmpeg's libraries, a hub dependency) encodes and resamples; `pcm` is raw 16-bit little-endian mono at 24 kHz,
as OpenAI's. MP3 and AAC run at 48 kHz: a streamed MP3/AAC cannot say how many priming and padding samples its
decoder must drop, and at 48 kHz those are under 50 ms (at 24 kHz they reach 70 ms), so every format decodes to the
same duration within 50 ms. Opus in Ogg (48 kHz) and FLAC trim exactly. Imports neither torch nor gradio.
"""

from __future__ import annotations

import io
import struct
import wave

import numpy as np

FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
PCM_RATE = 24_000  # OpenAI's pcm: 24 kHz, 16-bit signed little-endian, mono, no header
# format: (container, codec, sample rate, HTTP media type)
_AV = {
    "mp3": ("mp3", "libmp3lame", 48_000, "audio/mpeg"),
    "opus": ("ogg", "libopus", 48_000, "audio/ogg"),
    "aac": ("adts", "aac", 48_000, "audio/aac"),
    "flac": ("flac", "flac", PCM_RATE, "audio/flac"),
}
MEDIA_TYPES = {**{k: v[3] for k, v in _AV.items()}, "wav": "audio/wav", "pcm": "audio/pcm"}
SUFFIXES = {"mp3": ".mp3", "opus": ".ogg", "aac": ".aac", "flac": ".flac", "wav": ".wav", "pcm": ".pcm"}


class _Sink:
    """A write-only output that cannot seek: what has been written so far can be taken and sent."""

    def __init__(self):
        self._buf = bytearray()

    def write(self, data) -> int:
        self._buf += data
        return len(data)

    def take(self) -> bytes:
        out = bytes(self._buf)
        self._buf.clear()
        return out


def to_int16(samples: np.ndarray) -> np.ndarray:
    return (np.clip(np.asarray(samples, np.float32), -1.0, 1.0) * 32767.0).astype("<i2")


def wav_header(rate: int, data_bytes: int | None = None) -> bytes:
    """A 44-byte PCM WAV header (16-bit mono); `data_bytes` None: unknown length (0xFFFFFFFF, for a stream)."""
    size = 0xFFFFFFFF if data_bytes is None else data_bytes
    riff = 0xFFFFFFFF if data_bytes is None else 36 + data_bytes
    return (b"RIFF" + struct.pack("<I", riff) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
            + b"data" + struct.pack("<I", size))


class Encoder:
    """Float32 mono samples at `in_rate` in, the bytes of a `fmt` file out, piece by piece (see the module doc)."""

    def __init__(self, fmt: str, in_rate: int):
        import av

        self.fmt, self.in_rate = fmt, in_rate
        self._header = fmt == "wav"
        self._out = _Sink()
        if fmt in ("wav", "pcm"):
            self.rate, self._container, sample_format = PCM_RATE, None, "s16"
        else:
            container, codec, self.rate, _ = _AV[fmt]
            options = {"page_duration": "100000"} if container == "ogg" else {}  # an Ogg page per 0.1 s, not 1 s
            self._container = av.open(self._out, "w", format=container, options=options)
            self._stream = self._container.add_stream(codec, rate=self.rate)
            self._stream.layout = "mono"
            if fmt == "mp3":
                self._stream.bit_rate = 64_000
            sample_format = self._stream.codec_context.format.name  # mp3 s32p, aac fltp, opus and flac s16
        self._resampler = av.AudioResampler(format=sample_format, layout="mono", rate=self.rate)

    def feed(self, samples: np.ndarray) -> bytes:
        """Encode `samples`; the bytes of the file made since the last call (may be empty while a codec fills a
        frame or a page)."""
        import av

        frame = av.AudioFrame.from_ndarray(np.asarray(samples, np.float32).reshape(1, -1), format="flt",
                                           layout="mono")
        frame.sample_rate = self.in_rate
        return self._encode(self._resampler.resample(frame), end=False)

    def close(self) -> bytes:
        """The rest of the file: the resampler's and the codec's last samples and the container's trailer."""
        return self._encode(self._resampler.resample(None), end=True)

    def _encode(self, frames, end: bool) -> bytes:
        if self._container is None:
            pcm = b"".join(f.to_ndarray().astype("<i2").tobytes() for f in frames)
            head, self._header = (wav_header(self.rate) if self._header else b""), False
            return head + pcm
        for f in frames:
            for packet in self._stream.encode(f):
                self._container.mux(packet)
        if end:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
        return self._out.take()


def encode(samples: np.ndarray, in_rate: int, fmt: str) -> bytes:
    """A whole `fmt` file of `samples` (float32 mono at `in_rate`): the tab's download."""
    if fmt == "wav":
        pcm = Encoder("pcm", in_rate)
        data = pcm.feed(samples) + pcm.close()
        return wav_header(PCM_RATE, len(data)) + data
    enc = Encoder(fmt, in_rate)
    return enc.feed(samples) + enc.close()
