"""The LLM chat tab in headless Chromium, one test per point of issue #16 that applies to it: an empty message and any
error leave the chat usable (1, 3), a first answer says it is loading and times its first token from the click (2), a
GGUF model is named and described for what it is (4), the API page names every parameter (8)."""

from __future__ import annotations

import re
import time

import pytest

from tests.browser import browser_page, open_tab, shot

pytestmark = pytest.mark.browser

EXAMPLE = "Write a haiku about a GPU running out of memory."
SAID = "Type a message first."


def _message(page):
    return page.get_by_role("textbox", name=re.compile(r"^Message"))  # a refused validator adds its sentence to the name


def _toasts(page, text: str):
    return page.locator(".toast-body").locator("visible=true").filter(has_text=text)


def _usable(page) -> None:
    """The input takes a message now: enabled, Send shown, no Stop."""
    from playwright.sync_api import expect

    expect(_message(page)).to_be_enabled()
    expect(page.locator("button.submit-button").locator("visible=true")).to_have_count(1)
    expect(page.locator("button.stop-button").locator("visible=true")).to_have_count(0)


def _answered(page, n: int) -> str:
    """The text of the n-th answer (1-based) once its stats footer is there."""
    page.wait_for_function("n => [...document.querySelectorAll('.message.bot')].filter(m => "
                           "m.innerText.includes('tokens/s')).length >= n", arg=n)
    return page.locator(".message.bot").locator("visible=true").nth(n - 1).inner_text()


def test_an_empty_message_is_refused_with_one_sentence_and_the_chat_stays_usable(page):
    """Point 1. Before: "   " + Enter showed the sentence, then the input stayed disabled behind a Stop icon (Stop,
    closing the toast and Clear did nothing) and the example prompts were gone until a reload."""
    open_tab(page, "LLM chat")
    message = _message(page)
    message.fill("   ")
    message.press("Enter")
    _toasts(page, SAID).first.wait_for()
    _usable(page)
    assert _toasts(page, SAID).count() == 1  # said once
    assert page.get_by_text(EXAMPLE).is_visible()  # the chat did not change: the examples stay
    assert page.locator(".message.user").count() == 0
    shot(page, "after-llm_chat-empty-message")

    page.locator(".toast-close").first.click()
    message.fill("")
    message.press("Enter")  # nothing to send: still usable
    _usable(page)
    message.fill("Hello there")
    message.press("Enter")
    assert "512 tokens" in _answered(page, 1)
    _usable(page)


def test_an_error_says_one_sentence_and_gives_the_input_back(page):
    """Points 1 and 3. Before: any error (here a model the hub does not list, typed into the picker) locked the input
    like an empty message; the picker said nothing about the model before the send."""
    open_tab(page, "LLM chat")
    picker = page.get_by_label("Model").locator("visible=true").first
    chat = page.locator(".bubble-wrap, [role=log]").locator("visible=true").first
    assert picker.bounding_box()["y"] < chat.bounding_box()["y"]  # the model first, then the chat
    picker.fill("someone/not-listed")
    picker.press("Enter")
    note = page.locator(".model-note").locator("visible=true").first
    note.get_by_text("is not one of this hub's LLM chat models").wait_for()  # said up front, before any send

    message = _message(page)
    message.fill("Are you there?")
    message.press("Enter")
    toast = _toasts(page, "is not one of this hub's LLM chat models")
    toast.first.wait_for()
    _usable(page)
    assert message.input_value() == "Are you there?"  # given back, to send again
    assert page.locator(".message.user").count() == 0  # the chat is as it was before the send
    assert _toasts(page, "").count() == 1 and not re.search(r"\w+(Error|Exception)\b", toast.first.inner_text())
    shot(page, "after-llm_chat-error")

    picker.click()
    page.get_by_role("option", name="tiny random Llama (tests)", exact=True).click()
    page.wait_for_function("() => !document.querySelector('.model-note').innerText.trim()")
    message.press("Enter")
    assert "512 tokens" in _answered(page, 1)
    _usable(page)


def test_a_first_answer_says_the_model_is_loading_and_times_the_first_token_from_the_click(page, app, monkeypatch):
    """Point 2. Before: the first answer waited behind "*Loading tiny random Llama (tests)…*" (no size, no word on
    the wait) and its footer said "first token 0.01 s": the load was not counted."""
    import demos.llm_chat.ct2 as ct2
    import demos.llm_chat.engine as chat_engine
    import demos.llm_chat.ov_genai as ov_genai

    app.hub_manager.unload("llm_chat", "tiny-random")

    def slowed_load(real):
        def slow_load(*args, **kwargs):  # a load of 3 s or more, like a real model's
            time.sleep(3)
            return real(*args, **kwargs)
        return slow_load

    monkeypatch.setattr(chat_engine, "random_model", slowed_load(chat_engine.random_model))  # transformers
    monkeypatch.setattr(ct2, "load", slowed_load(ct2.load))  # CTranslate2
    monkeypatch.setattr(ov_genai, "load", slowed_load(ov_genai.load))  # OpenVINO GenAI (a CPU's default)
    open_tab(page, "LLM chat")
    message = _message(page)
    message.fill("Hi")
    message.press("Enter")
    page.locator(".message.bot").get_by_text("Loading tiny random Llama (tests) (1 MB): the first request waits for "
                                             "it").wait_for()
    shot(page, "after-llm_chat-loading")
    footer = _answered(page, 1)
    first, loading = (float(x) for x in re.search(r"first token (\d+\.\d+) s \((\d+\.\d+) s of it loading the model\)",
                                                  footer).groups())
    assert first >= loading >= 3.0, footer
    message.fill("And now?")
    message.press("Enter")
    again = _answered(page, 2)
    assert "loading the model" not in again and re.search(r"first token \d+\.\d+ s", again)  # loaded: no wait counted
    shot(page, "after-llm_chat-answered")


@pytest.fixture(scope="module")
def gguf_hub(tmp_path_factory):
    """A hub whose operator set DEMOHUB_LLM_CHAT_MODEL to a local Q4_1 GGUF file."""
    from dataclasses import replace

    from hub.app import create_app, launch
    from hub.settings import Settings
    from tests.conftest import free_port
    from tests.test_llm_chat_gguf import write_tiny_gguf

    path = write_tiny_gguf(tmp_path_factory.mktemp("operator-models") / "tiny-chat.Q4_1.gguf")
    s = Settings.load({}, cache_dir=str(tmp_path_factory.mktemp("cache")), offline=True, device="cpu",
                      port=free_port())
    blocks = create_app(replace(s, models={"llm_chat": str(path)}), ("llm_chat",))
    launch(blocks, replace(s, models={"llm_chat": str(path)}), prevent_thread_lock=True, quiet=True)
    blocks.url, blocks.gguf = f"http://127.0.0.1:{s.port}/", path
    yield blocks
    blocks.close()


def test_a_gguf_model_is_named_and_described_for_what_it_is(gguf_hub):
    """Point 4. Before: the Models tab said "float32" for a Q4_1 GGUF file, and a local file showed as its path."""
    with browser_page(gguf_hub.url) as page:
        open_tab(page, "LLM chat")
        assert page.get_by_label("Model").locator("visible=true").first.input_value() == "tiny-chat.Q4_1.gguf (local)"
        message = _message(page)
        message.fill("Hello")
        message.press("Enter")
        _answered(page, 1)
        open_tab(page, "Models")
        page.get_by_role("button", name="Refresh").click()
        page.get_by_text("Q4_1 GGUF, dequantized to float32 in memory").locator("visible=true").first.wait_for()
        assert page.get_by_text("tiny-chat.Q4_1.gguf (local)").locator("visible=true").count() >= 1
        shot(page, "after-llm_chat-gguf-models")
        assert str(gguf_hub.gguf.parent) not in page.content()


def test_the_api_page_names_every_chat_parameter(page):
    """Point 8. Before: the message was an unnamed Textbox, the model `model_id` and the system prompt `system`."""
    page.locator("footer").get_by_text("Use via API").click()
    page.get_by_text('api_name="/chat"').first.wait_for()
    text = page.locator("body").inner_text()
    chat = re.search(r"API name: /chat .*?(?=API name: |$)", text, re.S).group(0)  # the /chat endpoint's section
    for name in ("message=", "model=", "system_prompt=", "temperature=", "top_p=", "top_k=", "max_new_tokens=",
                 "repetition_penalty="):
        assert name in chat, name
    assert 'provided in the "Message" Multimodaltextbox component' in chat and "model_id" not in chat
    # text, or text with pictures (issue #32): the box takes both
    assert re.search(r"message\s+str \| dict\(text: str, files: list\[filepath\]\)\s+Required", chat)
    assert re.search(r"system_prompt\s+str\s+Default", chat)
    page.get_by_text('api_name="/chat"').first.scroll_into_view_if_needed()
    shot(page, "after-llm_chat-api")


@pytest.fixture(scope="module")
def qwen3_hub(tmp_path_factory):
    """A hub whose chat runs the tiny random Qwen3 (a model with a thinking switch)."""
    from dataclasses import replace

    from hub.app import create_app, launch
    from hub.settings import Settings
    from tests.conftest import free_port

    s = replace(Settings.load({}, cache_dir=str(tmp_path_factory.mktemp("cache")), offline=True, device="cpu",
                              port=free_port()), models={"llm_chat": "tiny-random-qwen3"})
    blocks = create_app(s, ("llm_chat",))
    launch(blocks, s, prevent_thread_lock=True, quiet=True)
    blocks.url = f"http://127.0.0.1:{s.port}/"
    yield blocks
    blocks.close()


def test_thinking_is_a_switch_and_the_reasoning_a_collapsible_message(qwen3_hub, monkeypatch):
    """Issue 20: the Thinking switch is shown for a thinking model, off on a CPU; the reasoning streams into a
    "💭 Thinking" message above the answer that a click folds, and the next turn is sent without it."""
    from playwright.sync_api import expect

    from tests.test_llm_chat_thinking import ANSWER, REASONING, SCRIPT, Scripted

    with qwen3_hub.hub_manager.use("llm_chat", "tiny-random-qwen3") as lease:
        engine = lease.engine
    monkeypatch.setattr(engine, "fast", Scripted(engine.tokenizer, SCRIPT))
    with browser_page(qwen3_hub.url) as page:
        open_tab(page, "LLM chat")
        page.get_by_text("Settings").first.click()
        switch = page.get_by_label("Thinking")
        expect(switch).to_be_visible()
        expect(switch).not_to_be_checked()  # the CPU default
        switch.check()
        _message(page).fill("What is 2+2?")
        _message(page).press("Enter")
        _answered(page, 1)
        expect(page.locator(".message.bot").filter(has_text="tokens/s").first).to_contain_text(ANSWER)
        title = page.get_by_text("💭 Thinking").first
        expect(title).to_be_visible()
        reasoning = page.get_by_text(REASONING).first
        shot(page, "after-llm_chat-thinking")
        if not reasoning.is_visible():  # closed once the answer began: a click opens it
            title.click()
        expect(reasoning).to_be_visible()
        title.click()
        expect(reasoning).to_be_hidden()
        _message(page).fill("And 3+3?")
        _message(page).press("Enter")
        _answered(page, 2)
    assert ANSWER in engine.last_run["prompt"] and REASONING not in engine.last_run["prompt"]
