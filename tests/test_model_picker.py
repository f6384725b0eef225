"""What a tab says about its model before anything runs, and how a local model is named to visitors (issue #16,
points 2-4): the picker's notice, the loading text, readable names instead of server paths, honest Unload."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import replace

import pytest

from hub import weights
from hub.context import DemoContext
from hub.models import ModelManager
from tests import WAIT_S


def _ctx(settings, module: str) -> DemoContext:
    import importlib

    demo = importlib.import_module(module).DEMO
    manager = ModelManager(settings, {demo.spec.name: (demo.spec, demo.loader(None), demo.work)})
    return DemoContext(manager, settings, demo.spec)


def test_an_uncached_model_on_an_offline_hub_is_announced_with_the_one_fetch_command(settings):
    ctx = _ctx(settings, "demos.clip_zero_shot")
    model = ctx.default_model()
    note = ctx.model_note()
    assert "is not on this machine" in note and "this hub is offline" in note
    assert note.count("demohub fetch") == 1 and f"`demohub fetch clip_zero_shot --model {model}`" in note
    assert str(settings.cache_dir) not in note
    assert ctx.loading_text() is None  # it cannot be had: no promise of a download; the request says why


def test_an_uncached_model_online_says_the_first_request_downloads_it(settings, monkeypatch):
    online = replace(settings, offline=False)
    monkeypatch.setattr(weights, "_REACH", {})
    monkeypatch.setattr(weights, "_unreachable", lambda timeout=3.0: None)
    ctx = _ctx(online, "demos.clip_zero_shot")
    note = ctx.model_note()
    size = ctx.choice().approx_bytes
    assert "the first request downloads it" in note and "demohub fetch" not in note
    assert ctx.loading_text().startswith("Downloading and loading ")  # no file yet: the wait includes the download
    assert (f"({size / 1e9:.1f} GB)" if size >= 1e9 else f"({size / 1e6:.0f} MB)") in note

    monkeypatch.setattr(weights, "_REACH", {})
    monkeypatch.setattr(weights, "_unreachable", lambda timeout=3.0: "cannot reach huggingface.co: no route")
    note = ctx.model_note()
    assert "cannot reach huggingface.co" in note and "demohub fetch clip_zero_shot" in note


def test_loading_text_until_the_model_is_loaded_then_nothing(settings):
    ctx = _ctx(settings, "tests.fake_demo")
    assert ctx.model_note() == ""  # random weights: always at hand, nothing to announce
    assert ctx.loading_text() == "Loading echo-small (1 kB): the first request waits for it, later ones don't…"
    from tests.fake_demo import EchoRequest

    assert ctx.call("echo", EchoRequest("hi", 1)).text == "hi"
    assert ctx.loading_text() is None and ctx.is_loaded()


def test_a_local_model_is_shown_by_a_readable_name_never_its_path(serve, tmp_path):
    folder = tmp_path / "echo-ckpt" / "model"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    client = serve(("tests.fake_demo",), models={"fake_echo": str(folder)}, host="0.0.0.0", auth=(("u", "p"),))
    answer, record = client.predict("echo-ckpt/model (local)", "hi", 2, api_name="/echo")
    assert answer == "hi hi" and record["model"] == "echo-ckpt/model (local)"
    rows = client.predict(api_name="/model_status")[0]
    assert [r[1] for r in rows["data"]] == ["echo-ckpt/model (local)"]
    everything = json.dumps([client.view_api(return_format="dict", print_info=False), rows, record, _config(client)])
    assert str(tmp_path) not in everything and "echo-ckpt/model (local)" in everything


def _config(client) -> dict:
    req = urllib.request.Request(client.src.rstrip("/") + "/config", headers=client.headers)
    for k, v in client.cookies.items():
        req.add_header("Cookie", f"{k}={v}")
    with urllib.request.urlopen(req, timeout=WAIT_S) as r:
        return json.loads(r.read())


def test_unload_names_only_models_that_were_loaded_and_refreshes_the_memory_figure(serve, monkeypatch):
    import tests.fake_demo as fake

    client = serve(("tests.fake_demo",))
    client.predict("echo-small", "hi", 1, api_name="/echo")
    _rows, system = client.predict(api_name="/model_status")
    assert "Models resident on cpu" in system
    message, _rows, system = client.predict("fake_echo", api_name="/unload_model")
    assert message == "Unloaded 1 model(s) of fake_echo." and "Models resident on cpu" not in system

    monkeypatch.setattr(fake, "load", _broken_load)
    client.blocks.hub_manager._demos["fake_echo"] = (fake.SPEC, _broken_load, fake.WORK)
    with pytest.raises(Exception, match="cannot load"):
        client.predict("echo-small", "hi", 1, api_name="/echo")
    assert [r["state"] for r in client.blocks.hub_manager.status()] == ["failed"]
    message, rows, _system = client.predict(api_name="/unload_all")
    assert message == "Nothing was loaded." and rows["data"] == []


def _broken_load(weights, device, dtype, settings=None):
    from hub.errors import UserError

    raise UserError("The echo model cannot load here.")
