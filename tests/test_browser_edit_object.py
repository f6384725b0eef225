"""The Edit-by-object tab in headless Chromium at 1440x900 (tiny random models: YOLO finds nothing, SAM and SD run):
a click on the photo in "+ point" mode masks the object with SAM directly, Cut out hands back the PNG and the chain's
record, and a class that is not in the photo gets one sentence naming the step while the mask stays on screen.
Screenshots go to /work/shots/ (looked at by hand)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.browser import block, open_tab

pytestmark = pytest.mark.browser

ZIDANE = Path(importlib.util.find_spec("ultralytics").origin).parent / "assets" / "zidane.jpg"
SHOTS = Path("/work/shots")


def _has(page, text: str) -> None:
    # file lists split a name over elements: compare without whitespace
    page.wait_for_function("t => document.querySelector('.gradio-container').innerText.replace(/\\s+/g, '')"
                           ".includes(t.replace(/\\s+/g, ''))", arg=text)


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def test_click_a_point_mask_it_cut_it_out_and_a_missing_class_is_one_sentence(page):
    page.set_viewport_size({"width": 1440, "height": 900})
    open_tab(page, "Edit by object")
    photo = block(page, "Photo (click it to pick)")
    photo.locator("input[type=file]").set_input_files(str(ZIDANE))
    img = photo.locator("img").locator("visible=true").first
    img.wait_for()
    page.get_by_label("+ point (SAM)").check()
    box = img.bounding_box()
    img.click(position={"x": box["width"] * 0.35, "y": box["height"] * 0.5})
    _has(page, "Make masks (SAM), clicked points: done")
    clicks = block(page, "Clicks [x, y, kind]").locator("textarea, input").first
    assert '"+"' in clicks.input_value()
    view = block(page, "Objects and masks").locator("img").locator("visible=true").first
    view.wait_for()
    page.get_by_role("button", name="Cut out", exact=True).click()
    _has(page, "Compose: done")
    block(page, "Result").locator("img").locator("visible=true").first.wait_for()
    _has(page, "cutout.png")
    _shot(page, "edit_object-cut-out")
    # a class the (random) detector does not find: one sentence naming the step; the mask stays on screen
    field = block(page, "Classes to pick").locator("textarea, input").first
    field.fill("giraffe")
    page.get_by_role("button", name="Find and mask").click()
    toast = page.locator(".toast-body").locator("visible=true").first
    toast.wait_for()
    assert "Find objects (YOLO): no giraffe was found in the photo" in toast.inner_text()
    assert view.is_visible()
    _shot(page, "edit_object-missing-class")
