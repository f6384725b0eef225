"""Pictures in the chat tab in headless Chromium (issue #32): a photo attached to a message shows in the chat and is
answered by the vision demo's random SmolVLM (the answer says which model read it); the next question about it
reuses its features; a file that is not a picture is refused in one sentence and the typed text and the chat stay
as they were. Screenshots go to tests/screenshots/ to be looked at."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.browser import browser_page, open_tab, shot

pytestmark = pytest.mark.browser

BUS = Path(importlib.util.find_spec("ultralytics").origin).parent / "assets" / "bus.jpg"  # not imported: torch


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from dataclasses import replace

    from hub.app import create_app, launch
    from hub.settings import Settings
    from tests.conftest import free_port

    s = Settings.load({}, cache_dir=str(tmp_path_factory.mktemp("chat-images") / "cache"), offline=True,
                      device="cpu", port=free_port())
    blocks = create_app(replace(s, models={"llm_chat": "tiny-random", "vision": "tiny-random"}),
                        ("llm_chat", "vision"))
    launch(blocks, s, prevent_thread_lock=True, quiet=True)
    with browser_page(f"http://127.0.0.1:{s.port}/", {"width": 1440, "height": 1000}) as pg:
        open_tab(pg, "LLM chat")
        yield pg
    blocks.close()


def _answers(page, n: int, has: str) -> None:
    """Wait for the n-th finished answer (its stats footer shown), which says `has`."""
    page.wait_for_function("([n, has]) => { const done = [...document.querySelectorAll('.message.bot')].filter(m => "
                           "m.innerText.includes('tokens/s')); return done.length >= n && "
                           "done[n - 1].innerText.includes(has); }", arg=[n, has])
    # and the box is given back (Send instead of Stop, editable): a picture attached before that is emptied with it
    box = page.locator("#chat-message")
    box.locator("[data-testid=submit-button]").wait_for()
    page.wait_for_function("() => { const t = document.querySelector('#chat-message textarea'); "
                           "return t && !t.disabled && !document.querySelector('#chat-message .stop-button'); }")


def test_a_photo_in_the_chat_is_answered_and_a_file_that_is_not_one_keeps_the_message(page, tmp_path):
    from playwright.sync_api import expect

    box = page.locator("#chat-message")
    box.locator("input[type=file]").set_input_files(str(BUS))
    box.get_by_label("File thumbnail").first.wait_for()
    message = page.get_by_role("textbox", name="Message")
    message.fill("What is in this picture?")
    message.press("Enter")
    _answers(page, 1, "🖼 tiny random SmolVLM (tests)")
    user = page.locator(".message.user")
    expect(user.first.locator("img")).to_be_visible()  # the picture stays in the conversation
    expect(page.locator(".message.bot").first).to_contain_text("reads text only")
    shot(page, "chat-images-answered")

    message.fill("What colour is it?")
    message.press("Enter")
    _answers(page, 2, "picture features reused")

    fake = tmp_path / "holiday.png"
    fake.write_bytes(b"this is a text file, not a photo")
    box.locator("input[type=file]").set_input_files(str(fake))
    # attached, not visible: Chromium draws a broken picture with alt="" at 0x0 px
    box.get_by_label("File thumbnail").first.wait_for(state="attached")
    message.fill("And this one?")
    message.press("Enter")
    page.locator(".toast-body").filter(has_text="holiday.png is not an image").first.wait_for()
    expect(message).to_have_value("And this one?")  # nothing lost: the text (and the file) stay in the box
    expect(box.get_by_label("File thumbnail")).to_have_count(1)
    assert user.count() == 2, "the refused message was not sent"
    shot(page, "chat-images-refused")
