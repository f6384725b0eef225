"""The Stable Diffusion tab's LoRA picker in headless Chromium (issue #29): the operator's LoRAs listed with their
trigger words and base model, one picked from the list lands in the LoRAs field with weight 1, the run applies it and
the record names it with its hash. Tiny random weights; a LoRA file written by tests/test_stable_diffusion_lora.py's
helper."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from tests.browser import block, open_tab, see_field, shot
from tests.conftest import free_port
from tests.test_stable_diffusion_lora import kohya_file

pytestmark = pytest.mark.browser

TAB = "Stable Diffusion"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The Stable Diffusion tab alone, on its tiny random model, with a LoRA folder."""
    from hub.app import create_app, launch
    from hub.settings import Settings

    folder = tmp_path_factory.mktemp("loras")
    kohya_file(folder / "red-cube-style.safetensors", 1, metadata={
        "ss_tag_frequency": json.dumps({"10_ds": {"red cube": 9, "glossy": 4}})})
    s = Settings.load({"DEMOHUB_STABLE_DIFFUSION_LORA_DIR": str(folder)},
                      cache_dir=str(tmp_path_factory.mktemp("cache")), offline=True, device="cpu", port=free_port())
    s = replace(s, models={"stable_diffusion": "tiny-random"})
    blocks = create_app(s, ("stable_diffusion",))
    launch(blocks, s, prevent_thread_lock=True, quiet=True)
    blocks.url = f"http://127.0.0.1:{s.port}/"
    yield blocks
    blocks.close()


def test_a_lora_picked_from_the_list_is_applied_and_named_in_the_record(page):
    open_tab(page, TAB)
    page.locator(".label-wrap").filter(has_text="LoRA").locator("visible=true").first.click()
    table = page.locator("#sd-lora").get_by_text("red-cube-style").locator("visible=true").first
    table.wait_for()
    assert "red cube, glossy" in page.locator("#sd-lora").inner_text()  # trigger words from the file's metadata
    picker = page.get_by_label("Add a LoRA").locator("visible=true").first
    picker.click()
    page.get_by_role("option", name="red-cube-style (32-wide) \u2014 red cube, glossy").click()
    field = page.get_by_label("LoRAs", exact=True).locator("visible=true").first
    page.wait_for_function("() => [...document.querySelectorAll('#sd-lora textarea')].some(t => "
                           "t.value == 'red-cube-style:1')")
    field.fill("red-cube-style:0.8")
    page.get_by_label("Prompt", exact=True).locator("visible=true").first.fill("a red cube")
    page.get_by_role("button", name="Generate", exact=True).click()
    see_field(page, "name", "red-cube-style")
    see_field(page, "weight", 0.8)
    record = block(page, "Record").inner_text()
    assert '"hash"' in record.replace(" ", "") or "hash" in record
    shot(page, "after-stable-diffusion-lora-picker")
