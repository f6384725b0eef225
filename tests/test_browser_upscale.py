"""The Upscale tab in headless Chromium at 1440x900, beside Stable Diffusion (both on their tiny random models): a
picture generated in SD goes to the Upscale tab with the gallery's **Upscale** button (the hub switches tabs, the
picture is in the input), Upscale shows "Tile k of n…" then the PNG 4x larger, downloadable, with the record.
Screenshots go to tests/screenshots/upscale-*.png to be looked at."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.browser import block, open_tab, see_field, shot
from tests.conftest import free_port

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from hub.app import create_app, launch
    from hub.settings import Settings

    s = Settings.load({}, cache_dir=str(tmp_path_factory.mktemp("cache")), offline=True, device="cpu",
                      port=free_port())
    s = replace(s, models={"stable_diffusion": "tiny-random", "upscale": "tiny-random"})
    blocks = create_app(s, ("stable_diffusion", "upscale"))
    launch(blocks, s, prevent_thread_lock=True, quiet=True)
    blocks.url = f"http://127.0.0.1:{s.port}/"
    yield blocks
    blocks.close()


def _visible(locator):
    return locator.locator("visible=true").first


def test_an_sd_picture_is_sent_to_the_upscale_tab_and_upscaled_there(page):
    page.set_viewport_size({"width": 1440, "height": 900})
    open_tab(page, "Stable Diffusion")
    _visible(page.get_by_label("Prompt", exact=True)).fill("a lighthouse")
    page.get_by_role("button", name="Generate", exact=True).click()
    see_field(page, "mode", "txt2img")
    send = _visible(page.get_by_role("button", name="Upscale", exact=True))  # beside "Reuse this seed"
    send.wait_for()
    shot(page, "upscale-sd-gallery")
    send.click()
    page.wait_for_function("() => document.querySelector('button[role=tab][aria-selected=true]')"
                           "?.innerText.includes('Upscale')")
    picture = block(page, "Picture (transparency is kept)")
    _visible(picture.locator("img")).wait_for()  # the SD picture arrived
    page.wait_for_timeout(300)
    shot(page, "upscale-received")
    _visible(page.get_by_role("button", name="Upscale", exact=True)).click()  # this tab's own main button
    page.get_by_text("Done: 256x256 px.").wait_for()
    see_field(page, "scale", 4)
    see_field(page, "width", 256)
    output = block(page, "Upscaled (PNG)")
    _visible(output.locator("img")).wait_for()
    assert output.get_by_role("button", name="Download").count() or output.locator("a[download]").count()
    shot(page, "upscale-done")
    open_tab(page, "Upscale")
    page.locator(".label-wrap").filter(has_text="Settings").locator("visible=true").first.click()
    _visible(page.get_by_text("Tile size", exact=True)).wait_for()
    shot(page, "upscale-settings")
