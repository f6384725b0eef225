"""Whisper: large-v3's 128-mel front end and distil-large-v3.5 (English only, 2 decoder layers), with a tiny random
model of that shape (128 mel bins, large-v3's 100-language vocabulary, 2 decoder layers) through the engine and the
tab's API; the pinned distil and turbo entries of both engines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from demos.whisper_asr import SPEC, engine as W
from hub.errors import UserError
from hub.weights import Weights
from tests.audio_files import write_wav

SR = 16_000


def babble(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    env = np.clip(np.sin(2 * np.pi * 3.0 * np.arange(n) / SR), 0, None)
    return (0.3 * env * rng.standard_normal(n)).astype(np.float32)


@pytest.fixture(scope="module")
def distil():
    return W.load(Weights("whisper_asr", SPEC.choice("tiny-random-distil"), "random", None, Path(".")), "cpu",
                  "float32")


def test_the_random_distil_shape_is_large_v3s_front_end_with_two_decoder_layers(distil):
    dims = distil.model.dims
    assert (dims.n_mels, dims.n_vocab, dims.n_text_layer) == (128, 51866, 2)
    assert dims.n_audio_layer > dims.n_text_layer and distil.model.num_languages == 100
    assert distil.multilingual and distil.english_only  # the vocabulary has languages; the model only English


def test_a_128_mel_model_transcribes_with_timed_words(distil, monkeypatch):
    import whisper

    seen = []
    real = whisper.log_mel_spectrogram
    monkeypatch.setattr(whisper, "log_mel_spectrogram",
                        lambda audio, n_mels, **kw: seen.append(n_mels) or real(audio, n_mels, **kw))
    t = W.transcribe(distil, (SR, babble(4)), vad=False, beam_size=1, word_timestamps=True)
    assert seen == [128]
    assert t.done and t.text and t.segments and t.language == "en" and t.language_probability == 1.0
    assert all(0 <= s.start <= s.end <= 4.0 for s in t.segments)
    assert any(s.words for s in t.segments)


def test_english_only_distil_refuses_translation_and_other_languages_with_a_sentence(distil):
    with pytest.raises(UserError, match="English-only.*cannot translate"):
        W.transcribe(distil, (SR, babble(1)), task="translate")
    with pytest.raises(UserError, match="only understands English.*French"):
        W.transcribe(distil, (SR, babble(1)), language="fr")
    assert W.transcribe(distil, (SR, babble(1)), language="en", vad=False, beam_size=1).language == "en"


def test_a_multilingual_128_mel_model_still_detects_the_language():
    eng = W.build_random("tiny-random-distil", sample_len=8)
    assert not eng.english_only  # without the choice's flag: large-v3-turbo's case
    t = W.transcribe(eng, (SR, babble(2)), vad=False, beam_size=1)
    assert t.language in W.languages() and 0 < t.language_probability <= 1


def test_random_weights_for_the_distil_choice_build_distils_architecture(monkeypatch):
    from dataclasses import replace

    asked, real = [], W.build_random
    # the real size is a 32-layer encoder (~20 s to build here): record the size asked for, build the tiny one
    monkeypatch.setattr(W, "build_random", lambda size, *a, **kw: asked.append(size) or real("tiny-random"))
    choice = replace(SPEC.choice("distil-whisper/distil-large-v3.5-ct2"), source="random")
    eng = W.load(Weights("whisper_asr", choice, "random", None, Path(".")), "cpu", "float32")
    assert asked == ["distil-large-v3.5"] and eng.english_only
    assert W._DIMS["distil-large-v3.5"][0] == 128 and W._DIMS["distil-large-v3.5"][-1] == 2
    assert W._DIMS["distil-large-v3.5"][2:7] == W._DIMS["large-v3"][2:7]  # large-v3's encoder, kept whole


def test_distil_and_turbo_are_pinned_for_both_engines():
    distil = SPEC.choice("distil-whisper/distil-large-v3.5-ct2")
    assert distil.revision == "9793ccc07920e0f830e1dba0343efcdf0ef8c903" and distil.options["english_only"]
    assert distil.license == "MIT" and distil.approx_bytes > 1e9 and "model.bin" in distil.files
    turbo_ct2 = SPEC.choice("dropbox-dash/faster-whisper-large-v3-turbo")
    assert len(turbo_ct2.revision) == 40 and not turbo_ct2.options["english_only"]
    turbo = SPEC.choice("turbo")
    assert turbo.source == "native" and len(turbo.sha256) == 64 and turbo.files == ("large-v3-turbo.pt",)


def test_distil_through_the_tab_api(serve, tmp_path):
    from gradio_client import handle_file

    client = serve(("whisper_asr",), models={"whisper_asr": "tiny-random-distil"})
    wav = write_wav(tmp_path / "talk.wav", babble(3), SR, "pcm16")
    args = dict(model="tiny-random-distil", audio=handle_file(wav), media_file=None, task="transcribe",
                language="auto", word_timestamps=False, vad=False, initial_prompt="", beam_size=1)
    info, text, table, _, files, record = client.predict(**args, api_name="/transcribe")
    assert text and table["data"] and "English" in info
    assert record["model"] == "tiny-random-distil" and record["detected_language"] == "en"
    with pytest.raises(Exception, match="English-only"):
        client.predict(**{**args, "task": "translate"}, api_name="/transcribe")
