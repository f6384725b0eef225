"""The Stable Diffusion tab's ControlNet units in headless Chromium (issue #29): a control picture uploaded to unit
1, its canny map shown by Preview map (the same pixels as the preprocessor's, computed here), then a run with the
ControlNet whose record names it with its strength. Tiny random weights (random ControlNets at its architecture)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from tests import WAIT_S
from tests.browser import block, open_tab, see, see_field, shot
from tests.conftest import free_port
from tests.test_stable_diffusion_controlnet import square

pytestmark = pytest.mark.browser

TAB = "Stable Diffusion"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from hub.app import create_app, launch
    from hub.settings import Settings

    s = Settings.load({}, cache_dir=str(tmp_path_factory.mktemp("cache")), offline=True, device="cpu",
                      port=free_port())
    s = replace(s, models={"stable_diffusion": "tiny-random"})
    blocks = create_app(s, ("stable_diffusion",))
    launch(blocks, s, prevent_thread_lock=True, quiet=True)
    blocks.url = f"http://127.0.0.1:{s.port}/"
    yield blocks
    blocks.close()


def test_a_control_picture_previews_its_map_and_steers_the_run(page, tmp_path):
    from demos.stable_diffusion import control_maps

    picture = tmp_path / "square.png"
    square((512, 512), (128, 128, 383, 383), 12).save(picture)
    open_tab(page, TAB)
    page.locator(".label-wrap").filter(has_text="ControlNet").locator("visible=true").first.click()
    unit = page.locator("#sd-controlnet")
    unit.locator("input[type=file]").first.set_input_files(str(picture))
    model = unit.get_by_label("ControlNet model").locator("visible=true").first
    model.click()
    page.get_by_role("option", name="canny", exact=True).click()
    unit.get_by_role("button", name="Preview map").locator("visible=true").first.click()
    see(page, "The canny map at 64x64.")
    shown = unit.locator("img").nth(1)
    shown.wait_for()
    src = shown.get_attribute("src")
    import requests

    got = np.asarray(Image.open(requests.get(src if src.startswith("http") else page.url.rstrip("/") + src,
                                             timeout=WAIT_S, stream=True).raw).convert("RGB"))
    expected = control_maps.make({"image": Image.open(picture), "preprocessor": "canny", "low": 100, "high": 200},
                                 64, 64)
    assert np.array_equal(got, np.asarray(expected))
    shot(page, "stable-diffusion-controlnet-map")
    page.get_by_label("Prompt", exact=True).locator("visible=true").first.fill("a framed square")
    page.get_by_role("button", name="Generate", exact=True).click()
    see_field(page, "name", "canny")
    see_field(page, "preprocessor", "canny")
    assert '"strength"' in block(page, "Record").inner_text().replace(" ", "") or "strength" in \
        block(page, "Record").inner_text()
    shot(page, "after-stable-diffusion-controlnet")


def test_the_hires_fix_accordion_makes_a_picture_twice_the_size(page):
    """Text to image's *Hires fix*: Enable, Lanczos, Generate: the picture is 128 px (the tiny model draws 64) and
    the record says how it was made."""
    open_tab(page, TAB)
    page.locator(".label-wrap").filter(has_text="Hires fix").locator("visible=true").first.click()
    page.get_by_label("Enable").locator("visible=true").first.check()
    upscaler = page.get_by_label("Upscaler").locator("visible=true").first
    upscaler.click()
    page.get_by_role("option", name="Lanczos", exact=True).click()
    page.get_by_label("Prompt", exact=True).locator("visible=true").first.fill("a lighthouse")
    page.get_by_role("button", name="Generate", exact=True).click()
    see_field(page, "upscaler", "Lanczos")
    see_field(page, "width", 128)
    shot(page, "after-stable-diffusion-hires")
