"""The app shell in a real browser: tabs, a demo's main action, the Models tab."""

import pytest

from tests.browser import browser_page, open_tab, shot

pytestmark = pytest.mark.browser


def test_demo_tab_and_models_tab_in_chromium(serve):
    client = serve(("tests.fake_demo", "tests.broken_demo"))
    with browser_page(client.src) as page:
        open_tab(page, "Echo (test demo)")
        page.get_by_label("Text").fill("hello")
        page.get_by_role("button", name="Echo", exact=True).click()
        page.wait_for_function("() => [...document.querySelectorAll('textarea')].some(t => t.value === 'hello hello')")
        assert page.get_by_text("Random weights").first.is_visible()
        shot(page, "shell-echo")
        open_tab(page, "Broken Demo")
        assert page.get_by_text("failed to import").is_visible()
        open_tab(page, "Models")
        page.get_by_role("button", name="Refresh").click()
        page.get_by_text("echo-small", exact=True).locator("visible=true").first.wait_for()
        shot(page, "shell-models")


def test_an_offline_model_is_announced_up_front_and_an_error_keeps_the_outputs(serve):
    """Issue #16 point 3: the tab says before any click that its model is not here (one fetch command); a refused
    request shows one sentence, once, without a class name, and the earlier answer stays on the page."""
    client = serve(("tests.fake_demo",), models={"fake_echo": "acme/echo-hf"})
    with browser_page(client.src) as page:
        open_tab(page, "Echo (test demo)")
        note = page.locator(".model-note").locator("visible=true").first
        note.get_by_text("is not on this machine").wait_for()
        assert note.inner_text().count("demohub fetch fake_echo --model acme/echo-hf") == 1
        _pick(page, "echo-small")
        page.wait_for_function("() => !document.querySelector('.model-note').innerText.trim()")  # random: nothing to say

        page.get_by_label("Text").fill("hi")
        page.get_by_role("button", name="Echo", exact=True).click()
        answer = page.get_by_label("Echo", exact=True)
        page.wait_for_function("() => [...document.querySelectorAll('textarea')].some(t => t.value === 'hi hi')")
        times = page.get_by_label("Times")
        times.fill("0")
        page.get_by_role("button", name="Echo", exact=True).click()
        toast = page.locator(".toast-body").locator("visible=true")
        toast.first.wait_for()
        said = "Times is 0, which is out of range; use a whole number from 1 to 10."
        assert toast.count() == 1 and said in toast.first.inner_text()
        assert answer.input_value() == "hi hi"  # the earlier answer stays, with no error pill over it
        assert page.locator(".block").filter(has=answer).locator(".error").count() == 0
        shot(page, "shell-error-keeps-outputs")

        page.locator(".toast-close").first.click()
        times.fill("2")
        _pick(page, "acme/echo-hf (unpinned)")
        page.get_by_role("button", name="Echo", exact=True).click()
        toast.first.get_by_text("is not on this machine").wait_for()
        text = page.locator(".gradio-container").first.inner_text() + toast.first.inner_text()
        assert toast.first.inner_text().count("demohub fetch") == 1 and "Unavailable" not in text
        assert answer.input_value() == "hi hi"


def _pick(page, label: str) -> None:
    box = page.get_by_label("Model").locator("visible=true").first
    box.click()
    page.get_by_role("option", name=label, exact=True).click()
