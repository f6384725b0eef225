"""DEMOHUB_PRELOAD: models loaded in the background after launch, while the page already answers (issue 35)."""

from __future__ import annotations

import threading
import time
import urllib.request

import pytest

from hub.contract import Demo, EngineBase
from hub.errors import SettingsError
from hub.settings import Settings, parse_preload
from hub.spec import DemoSpec, ModelChoice
from tests import WAIT_S
from tests.conftest import free_port

GATE = threading.Event()  # the gated demo's load waits for it: the test decides when the load ends


class _Engine(EngineBase):
    pass


def _gated_load(weights, device, dtype, options=None):
    assert GATE.wait(120), "the test never opened the gate"
    return _Engine()


DEMO = Demo(spec=DemoSpec("gated_preload", "Gated", "Loads when the test says.",
                          (ModelChoice("m", "random", approx_bytes=10),), {"cpu": "m"}, ()),
            load=_gated_load, ui=lambda ctx: None)


def _wait(condition, what: str, cap_s: float = 300.0):
    deadline = time.monotonic() + cap_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {cap_s:.0f} s")
        time.sleep(0.1)


def _page_answers(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=WAIT_S) as r:
        return r.status == 200 and b"demohub" in r.read()


def _launch(tmp_path, env: dict, demos: tuple[str, ...]):
    from hub.app import create_app, launch

    s = Settings.load(env, cache_dir=str(tmp_path / "cache"), offline=True, device="cpu", port=free_port())
    blocks = create_app(s, demos)
    launch(blocks, s, prevent_thread_lock=True, quiet=True)
    return blocks, s.port


@pytest.mark.parametrize("text, items", [
    ("", ()), ("none", ()), (" none ", ()), ("pinned", ("pinned",)),
    ("yolo_detect, llm_chat:HuggingFaceTB/SmolLM2-135M-Instruct", ("yolo_detect", "llm_chat:HuggingFaceTB/SmolLM2-135M-Instruct")),
])
def test_the_setting_takes_demos_demo_model_pinned_or_none(text, items):
    assert parse_preload(text, "DEMOHUB_PRELOAD") == items
    assert Settings.load({"DEMOHUB_PRELOAD": text}).preload == items


def test_the_default_preloads_the_pinned_demos_only():
    assert Settings.load({}).preload == ("pinned",)


@pytest.mark.parametrize("text", ["yolo detect", "none,yolo_detect", "llm_chat:", ":model", "a/b"])
def test_a_malformed_item_stops_the_start_with_a_sentence(text):
    with pytest.raises(SettingsError) as e:
        Settings.load({"DEMOHUB_PRELOAD": text})
    assert str(e.value).startswith("DEMOHUB_PRELOAD: ") and "comma-separated" in str(e.value)
    assert "Error" not in str(e.value)


def test_the_plan_expands_pinned_and_refuses_what_this_hub_cannot_load(settings):
    from dataclasses import replace

    from hub.models import ModelManager
    from hub.preload import plan
    from hub.registry import load_demos

    handles = {h.name: h for h in load_demos(("yolo_detect", "sam_segment"))}
    manager = ModelManager(settings, {n: (h.spec, h.demo.loader()) for n, h in handles.items()})
    s = replace(settings, pinned=("sam_segment",), preload=("yolo_detect:tiny-random", "pinned", "yolo_detect:tiny-random"))
    assert plan(s, manager, list(handles)) == [("yolo_detect", "tiny-random"), ("sam_segment", None)]
    with pytest.raises(SettingsError, match=r"^DEMOHUB_PRELOAD: 'whisper_asr' is not a demo of this hub"):
        plan(replace(s, preload=("whisper_asr",)), manager, list(handles))
    with pytest.raises(SettingsError, match=r"^DEMOHUB_PRELOAD: 'yolo_detect:no/such/thing.pt'.* does not exist"):
        plan(replace(s, preload=("yolo_detect:no/such/thing.pt",)), manager, list(handles))


def test_the_page_answers_while_a_preload_is_still_loading(tmp_path):
    GATE.clear()
    blocks, port = _launch(tmp_path, {"DEMOHUB_PRELOAD": "gated_preload"}, ("tests.test_preload",))
    try:
        manager = blocks.hub_manager
        _wait(lambda: any(r["state"] == "loading" for r in manager.status()), "the preload started")
        assert _page_answers(port)  # the load is held at the gate: the page is served meanwhile
        (row,) = manager.status()
        assert row["state"] == "loading" and row["note"].startswith("loading: ")
        GATE.set()
        _wait(lambda: manager.is_loaded("gated_preload"), "the preload finished")
        _wait(lambda: manager.status()[0]["in_use"] == 0, "the preload let go of the model")  # no request holds it
    finally:
        GATE.set()
        blocks.close()


def test_a_hub_started_with_preload_yolo_detect_has_the_model_resident_without_a_request(tmp_path):
    env = {"DEMOHUB_PRELOAD": "yolo_detect", "DEMOHUB_YOLO_DETECT_MODEL": "tiny-random",
           "DEMOHUB_YOLO_DETECT_OPENVINO": "0"}
    blocks, port = _launch(tmp_path, env, ("yolo_detect",))
    try:
        assert _page_answers(port)
        manager = blocks.hub_manager
        _wait(lambda: manager.is_loaded("yolo_detect"), "YOLO preloaded")
        (row,) = manager.status()
        assert row["demo"] == "yolo_detect" and row["model"] == "tiny-random" and row["state"] == "CPU"
        assert row["bytes"] > 1_000_000 and set(row["stages"]) >= {"import", "build"}
        assert blocks.hub_metrics is not None and _page_answers(port)
    finally:
        blocks.close()


def test_without_the_setting_nothing_loads_after_launch(tmp_path):
    blocks, port = _launch(tmp_path, {"DEMOHUB_YOLO_DETECT_MODEL": "tiny-random"}, ("yolo_detect",))
    try:
        assert _page_answers(port)
        assert blocks.hub_preload is None and blocks.hub_manager.status() == []
    finally:
        blocks.close()
