"""Playwright helpers for the browser tests: Debian's Chromium, headless, no downloads (never `playwright install`).

The `app` fixture (tests/conftest.py) is one hub with all six demos on their hidden tiny-random models, started
once per module; `page` is a fresh Chromium page on it."""

from __future__ import annotations

import json
import os
import re
import time
from contextlib import contextmanager
from pathlib import Path

from tests import WAIT_S

CHROMIUM = os.environ.get("DEMOHUB_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
SHOTS = Path(__file__).resolve().parent / "screenshots"
# How long any wait on the page may take (every locator, `wait_for_function` and `expect`): a condition, not a
# deadline; a busy 2-vCPU CI machine has taken over a minute to draw a result that takes seconds when it is quiet.
WAIT_MS = WAIT_S * 1000


@contextmanager
def browser_page(url: str, viewport: dict | None = None, mic: str | Path | None = None, timeout_ms: int = WAIT_MS):
    """A fresh Chromium page on `url` once its tabs are drawn. `mic`: a wav that Chromium's fake microphone plays
    (once), with the microphone permission granted."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=timeout_ms)  # its own default is 5 s
    args = list(ARGS)
    if mic is not None:
        args += ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                 f"--use-file-for-fake-audio-capture={mic}%noloop"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        context = browser.new_context(viewport=viewport or {"width": 1400, "height": 1000},
                                      permissions=["microphone"] if mic is not None else [])
        page = context.new_page()
        page.set_default_timeout(timeout_ms)
        page.goto(url)
        page.wait_for_selector("button[role=tab]")
        try:
            yield page
        finally:
            browser.close()


def open_tab(page, title: str) -> None:
    page.get_by_role("tab", name=title).click()


def shot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def in_use(app, demo: str) -> int:
    """Leases the hub holds on the demo's models right now (a running request holds one)."""
    return sum(r["in_use"] for r in app.hub_manager.status() if r["demo"] == demo)


def engine(app, demo: str):
    """The demo's loaded tiny-random engine (loads it if needed), as its handlers get it."""
    with app.hub_manager.use(demo, "tiny-random") as lease:
        return lease.engine


@contextmanager
def slowed(module, seconds: float):
    """Make every forward call of a torch module take `seconds` longer, so Cancel/Stop land mid-run on any machine."""
    fast = module.forward

    def slow(*args, **kwargs):
        time.sleep(seconds)
        return fast(*args, **kwargs)

    module.forward = slow
    try:
        yield
    finally:
        del module.forward  # back to the class's forward


@contextmanager
def gated(module, after: int = 1):
    """Let a torch module's first `after` forward calls through, then hold every later one until the test opens the
    gate (`gate.set()`): a run is then surely mid-way for as long as the test needs, on any machine. The gate opens
    by itself when the block ends. `gate.calls[0]`: the forward calls so far."""
    import threading

    fast, gate, calls = module.forward, threading.Event(), [0]
    gate.calls = calls

    def held(*args, **kwargs):
        calls[0] += 1
        if calls[0] > after:
            gate.wait()
        return fast(*args, **kwargs)

    module.forward = held
    try:
        yield gate
    finally:
        gate.set()
        del module.forward  # back to the class's forward


def settled(page) -> None:
    """Two animation frames have passed: what the page was about to draw is drawn."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def type_number(box, text: str, tries: int = 5) -> None:
    """Type `text` into a slider's number box and leave it (Tab), as a person does, and see it stay. A box drawn a
    moment ago (Settings just opened on a busy machine) can still take the slider's first value back once the page
    catches up: then type again, as a person would. Any other value (a clamp, a rounding) fails at once."""
    box.wait_for()
    first = box.input_value()
    for _ in range(tries):
        box.fill(text)
        box.press("Tab")
        settled(box.page)
        shown = box.input_value()
        if shown == text:
            return
        assert shown == first, f"typed {text!r}, the box shows {shown!r}"
    raise AssertionError(f"typed {text!r} {tries} times, the box went back to {first!r} each time")


class _GatedStreamer:
    """The streamer a fast decoder writes into: passes the prompt and `after` tokens, then holds the next one until
    `gate` opens (so it holds the decoder's thread, whichever decoder it is)."""

    def __init__(self, streamer, gate, after: int):
        self.streamer, self.gate, self.after, self.puts = streamer, gate, after, 0

    def put(self, value):
        if self.puts > self.after:  # the first put is the prompt
            self.gate.wait()
        if self.puts:
            self.gate.calls[0] += 1
        self.puts += 1
        self.streamer.put(value)

    def end(self):
        self.streamer.end()


@contextmanager
def gated_chat(engine, after: int = 30):
    """The chat engine answers `after` tokens, then holds the next until the test opens the gate (`gate.set()`), on
    transformers or on a CPU's fast decoder (OpenVINO GenAI, CTranslate2). The gate opens by itself when the block
    ends. `gate.calls[0]`: the tokens (or forward calls) made so far."""
    import threading

    if engine.model is not None:
        with gated(engine.model, after) as gate:
            yield gate
        return
    real, gate = engine.fast.submit, threading.Event()
    gate.calls = [0]
    engine.fast.submit = lambda ids, params, max_new, streamer, run: real(
        ids, params, max_new, _GatedStreamer(streamer, gate, after), run)
    try:
        yield gate
    finally:
        gate.set()
        engine.fast.submit = real


def wait_until(cond, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


def block(page, label, has: str | None = None):
    """The innermost visible component block labelled `label` (text or regex), holding a `has` element if given."""
    blocks = page.locator(".block").filter(has=page.get_by_text(label, exact=True))
    if has:
        blocks = blocks.filter(has=page.locator(has))
    return blocks.locator("visible=true").last


def text_of(page) -> str:
    return page.locator(".gradio-container").first.inner_text()


def flat(page) -> str:
    """The page's text without whitespace (file lists and JSON split names and values over several elements)."""
    return re.sub(r"\s+", "", text_of(page))


def see(page, text: str) -> None:
    page.get_by_text(text).locator("visible=true").first.wait_for()


def _field(key: str, value) -> str:
    # A gr.JSON renders every key, colon and value in its own element: compare without whitespace.
    return re.sub(r"\s+", "", f'"{key}":{json.dumps(value)}')


def shows(page, key: str, value) -> bool:
    """Whether a JSON output on the page shows `"key": value`."""
    return _field(key, value) in flat(page)


def see_field(page, key: str, value) -> None:
    page.wait_for_function("n => document.querySelector('.gradio-container').innerText.replace(/\\s+/g, '').includes(n)",
                           arg=_field(key, value))


@contextmanager
def slow_load(app, demo: str, seconds: float):
    """Loading the demo's model takes `seconds` longer (a real checkpoint takes that long), from unloaded."""
    manager = app.hub_manager
    manager.unload(demo)
    spec, load, *work = manager._demos[demo]  # (spec, load, work table)

    def slow(*args, **kwargs):
        time.sleep(seconds)
        return load(*args, **kwargs)

    manager._demos[demo] = (spec, slow, *work)
    try:
        yield
    finally:
        manager._demos[demo] = (spec, load, *work)
