"""SAM 2.1 video tracking as a person meets it, in headless Chromium on the hidden tiny-random model (which tracks
with a tiny random SAM 2.1): upload a clip, its first frame appears, a click marks the object, Track runs with
progress, and the page offers the tracked video and the zip of per-frame masks."""

from __future__ import annotations

import pytest

from hub.samples import make_samples
from tests.browser import block, open_tab, see

pytestmark = pytest.mark.browser


def test_upload_click_track_and_download(page, tmp_path):
    clip = make_samples(tmp_path)["video"]  # 12 frames, 128x96
    open_tab(page, "Segment Anything")
    page.locator(".label-wrap").filter(has_text="Video: click an object").click()
    block(page, "Video to track").locator("input[type=file]").set_input_files(clip)
    frame = page.locator("#sam-video-frame img").first
    frame.wait_for()
    page.wait_for_function("() => { const i = document.querySelector('#sam-video-frame img');"
                           " return i && i.complete && i.naturalWidth === 128; }")
    box = frame.bounding_box()
    frame.click(position={"x": box["width"] * 0.4, "y": box["height"] * 0.4})
    see(page, "Prompts (what the /track_video API takes)")
    page.wait_for_function("() => document.querySelector('#sam-video-frame img').src.length > 0")
    page.locator("#sam-track").click()
    see(page, "Tracked 12 frames")
    video = block(page, "Tracked video (H.264 MP4)").locator("video")
    video.wait_for(state="attached")
    assert video.get_attribute("src")
    see(page, "Per-frame masks (zip of PNGs, 255 = object)")
    page.locator("a[href*='masks.zip']").first.wait_for(state="attached")  # the download link of the zip
    assert "Error" not in page.locator("#sam-video-status").inner_text()
