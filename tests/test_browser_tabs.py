"""Every tab in headless Chromium with tiny random weights: the main action from an upload or a shipped example, the
output on the page, a screenshot (tests/screenshots/); Cancel in Stable Diffusion and Stop in the chat, released
leases included. One hub serves the whole module (the `serve` fixture's setup, once)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from tests.browser import (block, engine, flat, gated, in_use, open_tab, see, see_field, settled, shot, shows,
                           gated_chat, text_of, type_number, wait_until)

pytestmark = pytest.mark.browser

ZIDANE = Path(importlib.util.find_spec("ultralytics").origin).parent / "assets" / "zidane.jpg"  # not imported: torch


# ---- the main action of every tab -------------------------------------------------------------------------------


def test_stable_diffusion_generates_an_image(page):
    open_tab(page, "Stable Diffusion")
    page.get_by_label("Prompt", exact=True).fill("a watercolor fox in a snowy forest")
    page.get_by_role("button", name="Generate", exact=True).click()
    see(page, '"seeds"')
    assert block(page, "Images (PNG with parameters)").locator("img").count() >= 1
    assert shows(page, "prompt", "a watercolor fox in a snowy forest")
    assert page.get_by_label("Seed used").input_value() not in ("", "0")
    shot(page, "tab-stable-diffusion")


def test_whisper_transcribes_a_shipped_speech_clip(page):
    open_tab(page, "Whisper speech to text")
    page.get_by_role("button", name="heath_ledger.mp3").click()  # an example that ships with gradio
    page.locator("audio").first.wait_for(state="attached")
    page.get_by_role("button", name="Transcribe", exact=True).click()
    see(page, "Took:")
    text = text_of(page)
    assert re.search(r"Audio: 3\.0 s", text), text[:2000]  # the 3.04 s clip was decoded whole
    assert "heath_ledger.srt" in flat(page) and "heath_ledger.vtt" in flat(page)
    shot(page, "tab-whisper")


def test_yolo_detects_in_an_uploaded_image_and_a_sample_video(page):
    open_tab(page, "Object detection (YOLO)")
    block(page, "Image").locator("input[type=file]").set_input_files(str(ZIDANE))
    page.get_by_role("button", name="Detect", exact=True).click()
    see(page, '"detections"')
    assert shows(page, "image", "1280x720")
    assert block(page, "Detections", has="img").locator("img").count() == 1
    assert "detections.csv" in flat(page)
    shot(page, "tab-yolo-image")

    page.get_by_role("tab", name="Video", exact=True).click()
    see(page, "Sample video")
    page.locator(".gallery-item").locator("visible=true").first.click()
    block(page, "Video file", has="video").locator("video").wait_for(state="attached")  # the sample is in the input
    page.get_by_role("button", name="Detect in video").click()
    see(page, "Done:")
    assert "Done: 36 frames at 12.00 frames/s" in text_of(page)  # the whole 3 s sample at 12 frames/s
    assert block(page, "Annotated video (H.264 MP4)").locator("video").get_attribute("src")
    assert "counts_per_frame.csv" in flat(page)
    shot(page, "tab-yolo-video")


def test_clip_classifies_and_searches_shipped_photos(page):
    open_tab(page, "CLIP zero-shot")
    labels = ["cheetah", "lion", "house cat", "tower", "bus"]
    page.get_by_text(", ".join(labels), exact=True).click()
    from playwright.sync_api import expect

    # the example fills the form asynchronously: wait for it (Playwright retries until the value matches)
    expect(block(page, re.compile("^Candidate labels"), has="textarea").locator("textarea")).to_have_value(", ".join(labels))
    page.get_by_role("button", name="Classify", exact=True).click()
    see(page, '"template"')
    top = block(page, "Top labels (first image)").inner_text()
    assert any(label in top for label in labels), top
    table = block(page, "All images x labels").inner_text()
    assert all(name in table for name in ("cheetah.jpg", "lion.jpg", "tower.jpg")), table
    shot(page, "tab-clip-classify")

    page.get_by_role("tab", name="Search images", exact=True).click()
    page.get_by_text("a man wearing a tie", exact=True).click()
    # as above: the example fills the query asynchronously (on a busy machine the click could come first)
    expect(block(page, "Text query", has="textarea").locator("textarea")).to_have_value("a man wearing a tie")
    page.get_by_role("button", name="Search", exact=True).click()
    see_field(page, "query", "a man wearing a tie")
    ranking = block(page, "Ranking").inner_text()
    assert all(name in ranking for name in ("bus.jpg", "zidane.jpg", "groot.jpeg")), ranking
    assert block(page, "Best matches first").locator("img").count() == 6
    shot(page, "tab-clip-search")


def test_sam_segments_where_the_user_clicks_a_sample_photo(page):
    open_tab(page, "Segment Anything")
    page.locator(".gallery-item").locator("visible=true").first.click()  # bus.jpg, 810x1080
    picture = block(page, "Image: click to add points").locator("img").first
    picture.wait_for()
    page.wait_for_timeout(500)  # let the image lay out before measuring it
    box = picture.bounding_box()
    picture.click(position={"x": box["width"] * 0.5, "y": box["height"] * 0.6})
    see(page, '"decode_ms"')
    assert shows(page, "image", "810x1080")
    details = re.sub(r"\s+", "", block(page, "Details").inner_text())
    x, y = (int(v) for v in re.search(r'"points":\[\[(\d+),(\d+)', details).groups())
    assert abs(x - 405) <= 8 and abs(y - 648) <= 8, details  # page pixels -> image pixels
    assert block(page, "Mask (PNG)").locator("img").count() == 1
    assert block(page, "Cut-out (transparent PNG)").locator("img").count() == 1
    shot(page, "tab-sam")

    # another sample photo is a new image: the old masks and clicks go
    page.locator(".gallery-item").locator("visible=true").nth(2).click()
    page.get_by_text('"decode_ms"').wait_for(state="detached")
    assert block(page, "Mask (PNG)").locator("img").count() == 0


def test_chat_answers_an_example_prompt(page):
    open_tab(page, "LLM chat")
    page.get_by_text("Write a haiku about a GPU running out of memory.").click()
    see(page, "512 tokens")  # the tiny model never stops early: the footer counts max_new_tokens
    assert page.locator(".message.bot").locator("visible=true").count() >= 1
    shot(page, "tab-chat")


# ---- Cancel and Stop --------------------------------------------------------------------------------------------


def steps_shown(page):
    return [int(n) for n in re.findall(r"Step (\d+) of 150", text_of(page))]


def test_stable_diffusion_cancel_stops_the_run_and_the_next_one_works(page, app):
    """Cancel mid-run: the run stops before its last step, the model is given back, the status says "Cancelled."
    and no later step overwrites it, no image or record shows; the next run works. The run is held at step 2 by a
    gate (not by hoping the machine is slow) until Cancel has been seen."""
    open_tab(page, "Stable Diffusion")
    page.get_by_label("Prompt", exact=True).fill("a slow cube")
    page.locator(".label-wrap").filter(has_text="Settings").locator("visible=true").first.click()  # collapsed
    steps = page.get_by_label("number input for Steps").locator("visible=true").first
    type_number(steps, "150")
    with gated(engine(app, "stable_diffusion").pipe.unet) as gate:
        page.get_by_role("button", name="Generate", exact=True).click()
        page.get_by_text(re.compile(r"Step \d+ of 150")).locator("visible=true").first.wait_for()
        assert in_use(app, "stable_diffusion") == 1
        page.get_by_role("button", name="Cancel", exact=True).click()
        status = page.get_by_text("Cancelled.", exact=True).locator("visible=true").first
        status.wait_for()
        gate.set()  # step 2 ends; the pipeline sees the stop before step 3 and gives the model back
        assert wait_until(lambda: in_use(app, "stable_diffusion") == 0, 120), app.hub_manager.status()
        settled(page)
        assert status.is_visible() and max(steps_shown(page), default=0) < 150, text_of(page)
        assert not shows(page, "prompt", "a slow cube")  # no image, no record
    shot(page, "sd-cancelled")

    page.get_by_label("Prompt", exact=True).fill("a quick cube")
    type_number(steps, "2")
    page.get_by_role("button", name="Generate", exact=True).click()
    see_field(page, "prompt", "a quick cube")
    assert shows(page, "steps", 2)
    shot(page, "sd-after-cancel")


def test_chat_stop_ends_the_reply_and_the_next_one_works(page, app):
    """Stop mid-answer: no token shows after it, no stats footer (the answer did not end), the model is given back,
    and the next answer runs in full. The answer is held after 30 tokens by a gate until Stop has been seen."""
    open_tab(page, "LLM chat")
    message = page.locator("textarea").locator("visible=true").first
    with gated_chat(engine(app, "llm_chat")) as gate:
        message.fill("Tell me a long story.")
        message.press("Enter")
        page.wait_for_function("() => [...document.querySelectorAll('.message.bot')].some(m => m.innerText.length > 20)")
        stop = page.locator("button.stop-button").locator("visible=true")
        stop.click()
        stop.wait_for(state="hidden")  # the page has let go of the answer
        reply = page.locator(".message.bot").locator("visible=true").last
        stopped = reply.inner_text()
        gate.set()  # the engine goes on to its next token, sees the stop and gives the model back
        assert wait_until(lambda: in_use(app, "llm_chat") == 0, 120), app.hub_manager.status()
        assert gate.calls[0] < 512  # the engine stopped too, not only the page (512 new tokens is the full answer)
        settled(page)
        assert reply.inner_text() == stopped  # no token after Stop
        assert "tokens/s" not in stopped  # stopped before the end: no stats footer
    shot(page, "chat-stopped")

    message.fill("And another one.")
    message.press("Enter")
    see(page, "512 tokens")
    shot(page, "chat-after-stop")
