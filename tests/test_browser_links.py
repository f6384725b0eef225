"""Tabs that work together, in headless Chromium at 1440x900 on the tiny random models (hub.links):

- Edit by object -> "Send to SD tab": the hub switches to Stable Diffusion's Inpaint mode (its one main button is
  Inpaint) with the photo in the editor and the object's mask as its mask, and Inpaint runs on them (it refuses a
  missing mask, and its note names the photo's own size);
- Describe image's "Stable Diffusion prompt" -> "Send to SD tab as the prompt": SD's prompt holds the answer;
- SD's own Describe under the gallery writes a caption through the vision demo, and "Use as prompt" puts it in the
  prompt.

Screenshots go to tests/screenshots/links-*.png to be looked at."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.browser import block, open_tab, see_field, shot

pytestmark = pytest.mark.browser

ASSETS = Path(importlib.util.find_spec("ultralytics").origin).parent / "assets"  # not imported: torch
ZIDANE, BUS = ASSETS / "zidane.jpg", ASSETS / "bus.jpg"


def _has(page, text: str) -> None:
    page.wait_for_function("t => document.querySelector('.gradio-container').innerText.replace(/\\s+/g, '')"
                           ".includes(t.replace(/\\s+/g, ''))", arg=text)


def _selected(page, tab: str) -> bool:
    return page.get_by_role("tab", name=tab, exact=True).get_attribute("aria-selected") == "true"


def _visible(locator):
    return locator.locator("visible=true").first


def test_edit_by_object_and_describe_send_their_results_to_the_sd_tab(page):
    page.set_viewport_size({"width": 1440, "height": 900})
    open_tab(page, "Edit by object")
    photo = block(page, "Photo (click it to pick)")
    photo.locator("input[type=file]").set_input_files(str(ZIDANE))
    img = _visible(photo.locator("img"))
    img.wait_for()
    page.get_by_label("+ point (SAM)").check()
    box = img.bounding_box()
    img.click(position={"x": box["width"] * 0.35, "y": box["height"] * 0.5})
    _has(page, "Make masks (SAM), clicked points: done")
    page.get_by_role("button", name="Cut out", exact=True).click()
    _has(page, "Compose: done")
    _has(page, "mask.png")
    send = page.get_by_role("button", name="Send to SD tab: inpaint with this mask")
    shot(page, "links-edit-object-result")
    send.click()
    page.wait_for_function("() => document.querySelector('button[role=tab][aria-selected=true]')"
                           "?.innerText.includes('Stable Diffusion')")
    assert _selected(page, "Inpaint"), "the SD tab opened in its Inpaint mode"
    _visible(page.get_by_role("button", name="Inpaint", exact=True)).wait_for()  # the mode's one main button
    page.get_by_role("button", name="Generate", exact=True).wait_for(state="hidden")
    _visible(block(page, "Or upload a mask (white = repaint)").locator("img")).wait_for()  # the object's mask
    shot(page, "links-sd-inpaint-received")
    _visible(page.get_by_label("Prompt", exact=True)).fill("a red ball")
    page.get_by_role("button", name="Inpaint", exact=True).click()
    see_field(page, "mode", "inpaint")  # ran: without a mask it is refused with a sentence
    _has(page, "The image was resized from 1280x720")  # the photo itself (zidane.jpg), not the cut-out
    shot(page, "links-sd-inpainted")

    open_tab(page, "Describe image")
    block(page, "Picture").locator("input[type=file]").set_input_files(str(BUS))
    block(page, "Picture").locator("img").first.wait_for()
    to_sd = page.get_by_role("button", name="Send to SD tab as the prompt")
    assert not to_sd.locator("visible=true").count(), "shown for the Stable Diffusion prompt only"
    page.get_by_label("Stable Diffusion prompt").check()
    _visible(to_sd).wait_for()
    page.get_by_role("button", name="Describe", exact=True).click()
    page.wait_for_function("() => /tokens/.test(document.querySelector('#vision-status').innerText)")
    answer = " ".join(page.locator("#vision-answer textarea").input_value().split())
    assert answer
    to_sd.click()
    prompt = _visible(page.get_by_label("Prompt", exact=True))
    prompt.wait_for()
    assert _selected(page, "Stable Diffusion") and prompt.input_value() == answer
    shot(page, "links-describe-sent-prompt")


def test_sd_describes_its_image_and_uses_the_caption_as_the_prompt(page):
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1440, "height": 900})
    open_tab(page, "Stable Diffusion")
    prompt = _visible(page.get_by_label("Prompt", exact=True))
    prompt.fill("a red square")
    page.get_by_role("button", name="Generate", exact=True).click()
    see_field(page, "prompt", "a red square")
    describe = _visible(page.get_by_role("button", name="Describe this image"))
    describe.click()
    caption = page.locator("#sd-caption textarea")
    use = page.get_by_role("button", name="Use as prompt")
    _visible(use).wait_for()  # shown once the caption is written
    text = caption.input_value()
    assert text.strip()
    shot(page, "links-sd-described")
    use.click()
    expect(prompt).to_have_value(text)
