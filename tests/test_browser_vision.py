"""The "Describe image" tab in headless Chromium at 1440x900, on the tiny random SmolVLM: a photo uploaded and
described (the answer and the status line under Describe), the question field shown only for "Ask a question",
an empty question said in one sentence, and a file that is not a picture refused on upload. Screenshots go to
tests/screenshots/ to be looked at."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.browser import block, browser_page, shot

pytestmark = pytest.mark.browser

BUS = Path(importlib.util.find_spec("ultralytics").origin).parent / "assets" / "bus.jpg"  # not imported: torch


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from dataclasses import replace

    from hub.app import create_app, launch
    from hub.settings import Settings
    from tests.conftest import free_port

    tmp = tmp_path_factory.mktemp("vision-browser")
    s = Settings.load({}, cache_dir=str(tmp / "cache"), offline=True, device="cpu", port=free_port())
    blocks = create_app(replace(s, models={"vision": "tiny-random"}), ("vision",))
    launch(blocks, s, prevent_thread_lock=True, quiet=True)
    with browser_page(f"http://127.0.0.1:{s.port}/", {"width": 1440, "height": 900}) as pg:
        pg.get_by_role("tab", name="Describe image").click()
        yield pg
    blocks.close()


def _shot(page, name: str) -> Path:
    return shot(page, f"vision-{name}")


def _picture(page) -> None:
    """The bus photo in the Picture box, shown."""
    block(page, "Picture").locator("input[type=file]").set_input_files(str(BUS))
    block(page, "Picture").locator("img").first.wait_for()


def _status(page) -> str:
    return page.locator("#vision-status").inner_text()


def test_a_photo_is_described_with_the_answer_and_its_stats(page):
    _picture(page)
    go = page.get_by_role("button", name="Describe", exact=True)
    assert not page.get_by_label("Question", exact=True).is_visible(), "the question field shows only for 'Ask'"
    go.click()
    page.wait_for_function("() => /tokens/.test(document.querySelector('#vision-status').innerText)")
    answer = page.locator("#vision-answer textarea").input_value()
    assert answer.strip(), "the answer box holds the streamed text"
    assert "256 tokens" in _status(page) and "random weights" in _status(page)
    box = go.bounding_box()
    assert box["y"] + box["height"] < 900, "Describe is on the first screen at 1440x900"
    _shot(page, "described")
    go.click()  # the same picture again: its features come from this page's conversation
    page.wait_for_function("() => /reused/.test(document.querySelector('#vision-status').innerText)")


def test_ask_shows_the_question_and_an_empty_one_is_one_sentence(page):
    _picture(page)  # whatever the tests before left in it (xdist may run them in another order)
    page.get_by_label("Ask a question").check()
    question = page.get_by_label("Question", exact=True)
    question.wait_for(state="visible")
    page.get_by_role("button", name="Describe", exact=True).click()
    page.get_by_text("Type a question about the image").first.wait_for()
    _shot(page, "empty-question")
    question.fill("What colour is the bus?")
    page.get_by_role("button", name="Describe", exact=True).click()
    page.wait_for_function("() => /first token/.test(document.querySelector('#vision-status').innerText)")
    _shot(page, "asked")


def test_a_file_that_is_not_a_picture_is_refused_on_upload(page, tmp_path):
    fake = tmp_path / "holiday.jpg"
    fake.write_bytes(b"this is a text file, not a photo")
    block(page, "Picture").locator("input[type=file]").set_input_files(str(fake))
    page.get_by_text("holiday.jpg is not an image").first.wait_for()
    block(page, "Picture").locator("img").first.wait_for(state="detached")  # the refused file is not kept
    _shot(page, "bad-upload")
