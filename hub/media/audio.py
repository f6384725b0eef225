"""The one audio decoder. Every tab's audio comes through `load_audio`: float32 mono at the rate asked for.

- WAV (8/16/24/32-bit PCM, 32/64-bit float, plain or WAVE_FORMAT_EXTENSIBLE) is parsed here with numpy, so it works
  with no ffmpeg at all.
- Every other format (mp3, flac, ogg, m4a, webm, the audio track of mp4) is decoded by PyAV (FFmpeg's libraries),
  else the `ffmpeg` program, else soundfile for FLAC/OGG; with none of them the sentence says what to install.
- `(sample_rate, samples)` tuples (gradio's numpy audio) and bare arrays (already at the asked rate) are accepted.
- Resampling is band-limited (Kaiser-windowed sinc) in numpy.
- The length cap is checked from the header (WAV), the container (PyAV) or while decoding: decoding stops one
  second past the cap, so memory is bounded by the cap even when the header gives no length, and the sentence says
  the real length, or "longer than" the cap when the file never said. Anything unusable raises `UserError` with a
  sentence saying what to upload instead.
- FFmpeg reads the upload and nothing else (hub.media.containers): playlists and scripts that name other files
  are refused.
"""

from __future__ import annotations

import math
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np

from hub.errors import UserError
from hub.media.containers import FFMPEG_INPUT, open_input, refused

SAMPLE_RATE = 16_000
MAX_SECONDS = 4 * 3600.0  # default cap: four hours
MIN_SECONDS = 0.1
MIN_INPUT_RATE, MAX_INPUT_RATE = 1_000, 768_000  # sample rates accepted for (rate, samples) input
FORMATS = "WAV, MP3, FLAC, OGG, M4A, WEBM or MP4"


def load_audio(source, *, sample_rate: int = SAMPLE_RATE, max_seconds: float = MAX_SECONDS,
               limit_hint: str = "") -> np.ndarray:
    """Any audio (a path, a gradio file dict, `(sample_rate, samples)` as gradio's numpy audio, or samples already
    at `sample_rate`) -> float32 mono at `sample_rate`. See the module docstring for the policy.

    limit_hint: said after the length cap's sentence, e.g. which setting raises it.
    """
    if isinstance(source, dict):  # gradio FileData sent as a dict
        source = source.get("path") or source.get("url")
    if source is None or (isinstance(source, str) and not source.strip()):
        raise UserError("No audio given: upload an audio file or record from the microphone.")
    limit = _Limit(max_seconds, limit_hint)
    if isinstance(source, tuple):
        if len(source) != 2:
            raise UserError(f"Audio given as a tuple must be (sample_rate, samples), not {len(source)} items; "
                            "upload an audio file instead.")
        sr, data = source
        audio = _to_mono_float(np.asarray(data))
    elif isinstance(source, np.ndarray):
        sr, audio = sample_rate, _to_mono_float(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise UserError(f"The audio file {path.name!r} was not found; upload it again.")
        if path.stat().st_size == 0:
            raise UserError(f"The file {path.name!r} is empty (0 bytes); upload a file that contains audio.")
        with open(path, "rb") as fh:
            head = fh.read(12)
        if head[:4] in (b"RIFF", b"RIFX") and head[8:12] == b"WAVE":
            sr, audio = _read_wav(path, limit)
        else:
            return _check(_decode_other(path, sample_rate, limit), sample_rate, limit, path.name)
    if not isinstance(sr, (int, np.integer)) or isinstance(sr, bool) or sr <= 0:
        raise UserError(f"The sample rate {sr!r} is not valid; give the audio as (sample_rate, samples).")
    if not MIN_INPUT_RATE <= sr <= MAX_INPUT_RATE:  # resample() builds a kernel that grows with the rate
        raise UserError(f"The sample rate {int(sr)} Hz is not a real audio rate; give audio sampled between "
                        f"{MIN_INPUT_RATE} and {MAX_INPUT_RATE} Hz (e.g. 16000, 44100 or 48000).")
    limit.check(audio.size / sr)
    return _check(resample(audio, int(sr), sample_rate), sample_rate, limit, "the audio")


class _Limit:
    """The length cap and its sentence."""

    def __init__(self, max_seconds: float, hint: str):
        self.seconds, self.hint = float(max_seconds), hint

    def stop_at(self, rate: int) -> int:
        """Samples at `rate` past which decoding stops: one second beyond the cap."""
        return int((self.seconds + 1) * rate)

    def check(self, seconds: float, *, at_least: bool = False) -> None:
        """Refuse audio longer than the cap; `at_least`: decoding stopped at `seconds`, the real length unknown."""
        if seconds > self.seconds:
            length = f"longer than {_duration(self.seconds)}" if at_least else f"{_duration(seconds)} long"
            raise UserError(f"The audio is {length}; this hub accepts at most {_duration(self.seconds)}. Cut it "
                            "into parts" + (f" ({self.hint})." if self.hint else "."))


def _duration(seconds: float) -> str:
    """3.2 seconds, 1.5 minutes, 5 hours: the unit a person would use."""
    if seconds < 90:
        return f"{seconds:.3g} seconds"
    if seconds < 3 * 3600:
        return f"{seconds / 60:.4g} minutes"
    return f"{seconds / 3600:.3g} hours"


def _check(audio: np.ndarray, sample_rate: int, limit: _Limit, name: str) -> np.ndarray:
    if audio.size == 0:
        raise UserError(f"{name} contains no audio samples (zero length); upload a recording with sound in it.")
    if audio.size < sample_rate * MIN_SECONDS:
        raise UserError(f"{name} is only {audio.size / sample_rate * 1000:.1f} ms long; at least {MIN_SECONDS:g} "
                        "seconds of audio are needed.")
    if not all(np.isfinite(audio[i:i + (1 << 20)]).all() for i in range(0, audio.size, 1 << 20)):  # no big mask
        raise UserError(f"{name} contains invalid (NaN or infinite) samples; export it again.")
    limit.check(audio.size / sample_rate)
    return audio


def _to_mono_float(data: np.ndarray) -> np.ndarray:
    if data.ndim == 2:  # (samples, channels) as gradio gives it; (channels, samples) if clearly so
        data = data.T if data.shape[0] < data.shape[1] and data.shape[0] <= 8 else data
        data = data.astype(np.float64).mean(axis=1) if data.dtype.kind in "iu" else data.mean(axis=1)
        return _to_mono_float(np.asarray(data))
    if data.ndim != 1:
        raise UserError(f"Audio must be samples or (samples, channels), not an array of shape {data.shape}.")
    if data.dtype.kind == "f":
        return data.astype(np.float32, copy=False)  # already-decoded audio is not copied again
    if data.dtype.kind == "u":  # unsigned 8-bit PCM is centred on 128
        bits = data.dtype.itemsize * 8
        return ((data.astype(np.float64) - 2 ** (bits - 1)) / 2 ** (bits - 1)).astype(np.float32)
    if data.dtype.kind == "i":
        return (data.astype(np.float64) / 2 ** (data.dtype.itemsize * 8 - 1)).astype(np.float32)
    raise UserError(f"Audio samples of type {data.dtype} are not supported; use integers or floats.")


def _wav_chunks(fh, end: str, name: str, file_size: int):
    """(format tuple, data offset, data bytes) of a RIFF/RIFX WAVE file, walking the chunk headers (no body is read
    but the format's). A data size past the end of the file (a stream's 0xFFFFFFFF) is cut to the file."""
    pos, fmt = 12, None
    while pos + 8 <= file_size:
        fh.seek(pos)
        head = fh.read(8)
        cid, size = head[:4], struct.unpack(end + "I", head[4:8])[0]
        if cid == b"fmt ":
            body = fh.read(min(size, 64))
            if len(body) < 16:
                break
            tag, channels, sr, _, block, bits = struct.unpack(end + "HHIIHH", body[:16])
            if tag == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the real tag opens the sub-format GUID
                tag = struct.unpack(end + "H", body[24:26])[0]
            fmt = (tag, channels, sr, block, bits)
        elif cid == b"data":
            if fmt is None:
                break
            return fmt, pos + 8, min(size, file_size - pos - 8)
        pos += 8 + size + (size & 1)
    raise UserError(f"{name!r} is a damaged WAV file (no format or data chunk); export it again.")


def _read_wav(path: Path, limit: _Limit) -> tuple[int, np.ndarray]:
    """WAV by hand (the stdlib `wave` rejects float and 24-bit extensible files): PCM 8/16/24/32, float 32/64.
    The length is checked from the header before the samples are read; they are converted in blocks."""
    with open(path, "rb") as fh:
        end = "<" if fh.read(4) == b"RIFF" else ">"
        (tag, channels, sr, block, bits), offset, size = _wav_chunks(fh, end, path.name, path.stat().st_size)
        if channels < 1 or sr < 1 or block < 1 or block != channels * ((bits + 7) // 8):
            raise UserError(f"{path.name!r} has an invalid WAV header ({channels} channels, {sr} Hz, {bits}-bit); "
                            "export it again.")
        width = block // channels
        if not (tag == 1 and width in (1, 2, 3, 4) or tag == 3 and width in (4, 8)):
            raise UserError(f"{path.name!r} uses a WAV encoding this hub does not read (format {tag}, {bits}-bit); "
                            "save it as 16-bit PCM WAV, FLAC or MP3.")
        limit.check(size / block / sr)
        n = size // block  # a cut-off last frame is dropped
        out = np.empty(n, np.float32)
        fh.seek(offset)
        step = max(1, (1 << 22) // block)
        for at in range(0, n, step):
            raw = fh.read(min(step, n - at) * block)
            rows = len(raw) // block
            buf = np.frombuffer(raw[:rows * block], dtype=np.uint8).reshape(rows, channels, width)
            out[at:at + rows] = _wav_block(buf, tag, width, end).mean(axis=1)
            if rows < min(step, n - at):
                return sr, out[:at + rows]
    return sr, out


def _wav_block(buf: np.ndarray, tag: int, width: int, end: str) -> np.ndarray:
    """(frames, channels, bytes) of WAV samples -> (frames, channels) float32."""
    n, channels = buf.shape[:2]
    if tag == 1 and width == 1:
        return (buf[..., 0].astype(np.float32) - 128.0) / 128.0
    if tag == 1:
        le = buf if end == "<" else buf[..., ::-1]  # little-endian bytes, lowest first
        wide = np.zeros((n, channels, 4), dtype=np.uint8)
        wide[..., 4 - width:] = le  # left-align in 32 bits: sign extension for free
        return wide.view("<i4")[..., 0].astype(np.float32) / 2.0 ** 31
    return buf.reshape(n, -1).view(end + ("f4" if width == 4 else "f8")).reshape(n, channels).astype(np.float32)


def _decode_other(path: Path, sample_rate: int, limit: _Limit) -> np.ndarray:
    try:
        import av  # noqa: F401  (PyAV: FFmpeg's libraries)
    except ImportError:
        av = None
    if av is not None:
        return _decode_pyav(path, sample_rate, limit)
    if shutil.which("ffmpeg"):
        return _decode_ffmpeg(path, sample_rate, limit)
    if path.suffix.lower() in (".flac", ".ogg"):
        try:
            import soundfile
        except ImportError:
            soundfile = None
        if soundfile is not None:
            with soundfile.SoundFile(str(path)) as f:
                if f.frames > 0:
                    limit.check(f.frames / f.samplerate)
                data = f.read(limit.stop_at(f.samplerate), dtype="float32", always_2d=True)
                if data.shape[0] >= limit.stop_at(f.samplerate):
                    limit.check(data.shape[0] / f.samplerate, at_least=True)
                return resample(data.mean(axis=1), f.samplerate, sample_rate)
    raise UserError(f"Decoding {path.suffix or 'this'} audio needs ffmpeg, which is not installed here: install it "
                    "(Debian/Ubuntu: `apt-get install ffmpeg`; on a Space: add `ffmpeg` to packages.txt), or upload "
                    "a WAV file.")


def _decode_pyav(path: Path, sample_rate: int, limit: _Limit) -> np.ndarray:
    import av

    try:
        container = open_input(path)
    except (av.error.FFmpegError, UnicodeDecodeError):
        raise UserError(f"{path.name!r} is not an audio or video file this hub can read (or it is corrupt); "
                        f"upload {FORMATS}.") from None
    with container:
        if not container.streams.audio:
            raise UserError(f"{path.name!r} has no audio track: it is not an audio file, or a video without sound; "
                            "upload a file with sound in it.")
        stream = container.streams.audio[0]
        if container.duration:
            limit.check(container.duration / 1e6)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        parts, total, stop = [], 0, limit.stop_at(sample_rate)
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray().reshape(-1))
                    total += parts[-1].size
                if total > stop:  # the header said no length (or a wrong one): stop reading here
                    limit.check(total / sample_rate, at_least=True)
            for out in resampler.resample(None):
                parts.append(out.to_ndarray().reshape(-1))
                total += parts[-1].size
        except av.error.FFmpegError as e:
            if not parts:
                raise UserError(f"{path.name!r} could not be decoded ({e.strerror or e}); the file is corrupt or "
                                "not audio.") from None
            # a damaged tail: keep what decoded, like ffmpeg does
    return _join(parts, total)


def _join(parts: list, total: int) -> np.ndarray:
    """The decoded pieces as one float32 array, each piece freed as it is copied (memory peaks near one copy)."""
    out = np.empty(total, np.float32)
    end = total
    while parts:
        piece = parts.pop()
        out[end - piece.size:end] = piece
        end -= piece.size
    return out


def _decode_ffmpeg(path: Path, sample_rate: int, limit: _Limit) -> np.ndarray:
    cmd = ["ffmpeg", "-nostdin", "-v", "error", *FFMPEG_INPUT, "-i", str(path), "-t", str(limit.seconds + 1), "-vn",
           "-f", "f32le", "-ac", "1", "-ar", str(sample_rate), "-"]
    run = subprocess.run(cmd, capture_output=True)
    if run.returncode != 0:
        said = run.stderr.decode(errors="replace")
        if "not on whitelist" in said:
            raise refused(path.name)
        reason = (said.strip().splitlines() or ["no reason given"])[-1].replace(str(path), path.name)[:200]
        raise UserError(f"{path.name!r} could not be decoded by ffmpeg ({reason}); the file is corrupt or not audio.")
    audio = np.frombuffer(run.stdout, np.float32).copy()
    if audio.size >= limit.stop_at(sample_rate):
        limit.check(audio.size / sample_rate, at_least=True)
    return audio


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
    window = np.kaiser(2 * width + 1, 8.6)[np.clip(np.round(d + width), 0, 2 * width).astype(int)]
    kernel = cutoff * np.sinc(cutoff * d) * window
    kernel = (kernel / kernel.sum(axis=1, keepdims=True)).astype(np.float32)
    n_out = int(math.ceil(x.size * up / down))
    padded = np.pad(x, (width, width + 1))
    out = np.empty(n_out, np.float32)
    for s in range(0, n_out, 1 << 18):
        n = np.arange(s, min(n_out, s + (1 << 18)))
        base, phase = (n * down) // up, (n * down) % up
        out[n] = np.einsum("ij,ij->i", padded[base[:, None] + taps[None, :] + width], kernel[phase])
    return out
