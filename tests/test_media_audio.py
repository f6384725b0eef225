"""hub.media.audio: the one audio entry — WAV in every encoding with numpy, other formats through PyAV or ffmpeg,
mono float32 at the asked rate, bad files and lengths answered with a sentence."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from hub.errors import UserError
from hub.media import audio as A
from tests.audio_files import peak_hz, tone, write_wav

SR = 16_000
HEATH = Path(importlib.util.find_spec("gradio").origin).parent / "media_assets" / "audio" / "heath_ledger.mp3"


# ---- audio --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,extensible", [("pcm8", False), ("pcm16", False), ("pcm24", False), ("pcm32", False),
                                             ("float32", False), ("float64", False), ("pcm24", True),
                                             ("float32", True)])
@pytest.mark.parametrize("sr,channels", [(44100, 2), (8000, 1)])
def test_wav_encodings_rates_and_channels_decode_to_16k_mono(tmp_path, kind, extensible, sr, channels):
    path = write_wav(tmp_path / "a.wav", tone(440, 1.0, sr), sr, kind, channels, extensible)
    x = A.load_audio(path)
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(x.size - SR) <= 1
    assert abs(peak_hz(x) - 440) < 3
    assert 0.45 < np.abs(x[1000:-1000]).max() < 0.55  # scale right for every bit depth


def test_resampling_keeps_the_band_and_removes_what_16k_cannot_hold():
    x = tone(1000, 1.0, 44100) + tone(12000, 1.0, 44100)  # 12 kHz is above the new 8 kHz Nyquist
    y = A.resample(x, 44100, SR)
    spec = np.abs(np.fft.rfft(y[2000:-2000]))
    f = np.fft.rfftfreq(y[2000:-2000].size, 1 / SR)
    assert abs(f[spec.argmax()] - 1000) < 3
    alias = spec[np.abs(f - (SR - 12000)) < 50].max()  # where an unfiltered 12 kHz would fold to
    assert alias < 0.01 * spec.max()


def test_numpy_tuple_input_as_gradio_gives_it():
    stereo = (np.stack([tone(300, 0.5, 22050)] * 2, axis=1) * 32767).astype(np.int16)
    x = A.load_audio((22050, stereo))
    assert abs(x.size - SR // 2) <= 1 and abs(peak_hz(x) - 300) < 3


def test_compressed_formats_decode_without_the_ffmpeg_program(tmp_path, monkeypatch):
    import av

    monkeypatch.setattr(A.shutil, "which", lambda name: None)  # no ffmpeg binary: PyAV's libraries still decode
    path = tmp_path / "a.flac"
    with av.open(str(path), "w") as out:
        st = out.add_stream("flac", rate=22050, layout="mono")
        frame = av.AudioFrame.from_ndarray((tone(440, 1.0, 22050)[None] * 32767).astype(np.int16), format="s16",
                                           layout="mono")
        frame.sample_rate = 22050
        for p in st.encode(frame):
            out.mux(p)
        for p in st.encode(None):
            out.mux(p)
    x = A.load_audio(str(path))
    assert abs(x.size - SR) < 200 and abs(peak_hz(x) - 440) < 3
    assert abs(A.load_audio(str(HEATH)).size / SR - 3.03) < 0.1  # mp3


def test_without_any_decoder_wav_works_and_mp3_says_to_install_ffmpeg(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_av(name, *a, **k):
        if name in ("av", "soundfile"):
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_av)
    monkeypatch.setattr(A.shutil, "which", lambda name: None)
    assert A.load_audio(write_wav(tmp_path / "a.wav", tone(440, 0.5, 48000), 48000)).size == SR // 2
    with pytest.raises(UserError, match="needs ffmpeg.*apt-get install ffmpeg"):
        A.load_audio(str(HEATH))


@pytest.mark.parametrize("make,message", [
    (lambda p: p.write_text("hello, I am not audio at all " * 20), "not an audio"),
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt \x10\x00"), "damaged WAV"),
    (lambda p: write_wav(p, np.zeros(0, np.float32), 16000), "no audio samples"),
    (lambda p: write_wav(p, np.array([0.3], np.float32), 16000), "only 0.1 ms"),
    (lambda p: write_wav(p, tone(200, 0.5, 16000), 16000, "float32") and p.write_bytes(
        p.read_bytes()[:44] + np.full(100, np.nan, np.float32).tobytes() * 100), "NaN"),
])
def test_bad_files_end_in_a_sentence(tmp_path, make, message):
    p = tmp_path / "upload.bin"
    make(p)
    with pytest.raises(UserError, match=message):
        A.load_audio(str(p))


def test_length_cap_names_the_limit(tmp_path):
    path = write_wav(tmp_path / "long.wav", tone(200, 3.0, 8000), 8000)
    with pytest.raises(UserError, match="is 3 seconds long; this hub accepts at most 2 seconds. Cut it into parts.$"):
        A.load_audio(path, max_seconds=2.0)  # the hub names no demo
    with pytest.raises(UserError, match="at most"):
        A.load_audio(str(HEATH), max_seconds=1.0)
    with pytest.raises(UserError, match="is 1.5 minutes long; this hub accepts at most 60 seconds"):
        A.load_audio((8000, np.zeros(8000 * 90, np.int16)), max_seconds=60)
