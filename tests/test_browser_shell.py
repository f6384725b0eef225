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
