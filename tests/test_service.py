"""The hub as a service: /v1/models for every demo, /metrics (prometheus_client), keep-alive and pinned models,
and API keys for every /v1 route and /metrics."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import replace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hub.models import ModelManager
from tests import WAIT_S
from tests.test_models import loader, manager, spec


def get(url: str, token: str | None = None):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=WAIT_S) as r:
        return r.status, r.headers.get("content-type", ""), r.read().decode()


def samples(text: str) -> dict:
    """{(name, frozenset(labels)): value} of a Prometheus text page, read with prometheus_client's own parser."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_v1_models_lists_every_demos_models_with_its_demo(serve):
    client = serve(("tests.fake_demo",))
    status, _, body = get(client.src + "v1/models")
    data = json.loads(body)["data"]
    assert status == 200 and {(m["id"], m["demo"]) for m in data} == {("echo-small", "fake_echo"),
                                                                      ("echo-large", "fake_echo")}
    assert [m["default"] for m in data if m["id"] == "echo-small"] == [True]


def test_metrics_count_requests_by_demo_api_and_outcome_and_show_loaded_models(serve):
    client = serve(("tests.fake_demo",))
    client.predict("echo-small", "hi", 2, api_name="/echo")
    client.predict("echo-small", "hi", 3, api_name="/echo")
    with pytest.raises(Exception, match="out of range"):
        client.predict("echo-small", "hi", 99, api_name="/echo")
    status, ctype, text = get(client.src + "metrics")
    assert status == 200 and ctype.startswith("text/plain")
    m = samples(text)
    ok = ("demohub_requests_total", frozenset({"demo": "fake_echo", "api": "echo", "outcome": "ok"}.items()))
    refused = ("demohub_requests_total", frozenset({"demo": "fake_echo", "api": "echo", "outcome": "user_error"}.items()))
    assert m[ok] == 2 and m[refused] == 1
    assert m[("demohub_request_seconds_count", frozenset({"demo": "fake_echo", "api": "echo"}.items()))] == 3
    key = frozenset({"demo": "fake_echo", "model": "echo-small", "device": "cpu"}.items())
    assert m[("demohub_model_loaded", key)] == 1 and m[("demohub_model_bytes", key)] == 1000
    assert ("demohub_queue_waiting", frozenset()) in m
    client.predict("echo-small", "again", 1, api_name="/echo")  # counters rise with requests
    assert samples(get(client.src + "metrics")[2])[ok] == 3


def post(url: str, body: dict):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=WAIT_S) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_a_request_that_fails_is_counted_as_failed_on_every_path_never_ok(serve):
    """The outcome label tells an operator's alert what failed: the visitor's input (user_error) or the hub (error)."""
    from tests.fake_demo import CRASH

    client = serve(("tests.fake_demo",))
    with pytest.raises(Exception):
        client.predict("echo-small", CRASH, 1, api_name="/echo")  # the tab: a bug in the engine
    url = client.src + "v1/echo"
    assert post(url, {"text": "hi", "times": 2}) == (200, {"text": "hi hi"})
    assert post(url, {"text": CRASH})[0] == 500
    assert post(url, {"text": "hi", "times": 99})[0] == 400  # the engine's own check refuses it
    assert post(url, {"nothing": 1})[0] == 400  # the route answers the error itself, without raising
    m = samples(get(client.src + "metrics")[2])

    def count(api, outcome):
        return m.get(("demohub_requests_total", frozenset({"demo": "fake_echo", "api": api, "outcome": outcome}.items())), 0)

    assert (count("echo", "ok"), count("echo", "error")) == (0, 1)
    assert (count("v1_echo", "ok"), count("v1_echo", "error"), count("v1_echo", "user_error")) == (1, 1, 2)


def test_api_keys_guard_v1_and_metrics(serve):
    client = serve(("tests.fake_demo",), api_keys=("sk-test",))
    for path in ("v1/models", "metrics"):
        with pytest.raises(urllib.error.HTTPError) as e:
            get(client.src + path)
        assert e.value.code == 401 and "API key" in json.loads(e.value.read())["error"]["message"]
        with pytest.raises(urllib.error.HTTPError):
            get(client.src + path, "sk-wrong")
        assert get(client.src + path, "sk-test")[0] == 200


def test_keep_alive_unloads_idle_models_and_counts_it(settings):
    m = manager(replace(settings, keep_alive=0.3), {"a": (spec("a"), loader(100))})
    with m.use("a"):
        time.sleep(0.5)  # a model in use never expires
        assert m.status()[0]["unload_in_s"] is None
        released = time.monotonic()  # the countdown starts after this
    left = m.status()
    if time.monotonic() - released < 0.3:  # read before it could run out (a stalled machine may read it later)
        assert left and 0 < left[0]["unload_in_s"] <= 0.3, left
    events = []
    m.on_event = lambda kind, **kw: events.append((kind, kw))
    deadline = time.monotonic() + WAIT_S
    while m.status() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert m.status() == [] and events == [("evict", {"reason": "keep_alive"})]


def test_keep_alive_zero_unloads_after_each_request_and_minus_one_never(settings):
    m = manager(replace(settings, keep_alive=-1, keep_alives={"a": 0.0}),
                {"a": (spec("a"), loader(100)), "b": (spec("b"), loader(100))})
    with m.use("a"):
        assert len(m.status()) == 1
    with m.use("b"):
        pass
    assert [r["demo"] for r in m.status()] == ["b"] and m.status()[0]["unload_in_s"] is None


def test_pinned_demos_are_never_evicted_for_room_or_time(settings):
    m = manager(replace(settings, keep_alive=0.0, pinned=("a",)), {"a": (spec("a", 600), loader(600)),
                                                                   "b": (spec("b", 600), loader(600))}, budget=1000)
    with m.use("a"):
        pass
    with m.use("b"):
        pass
    rows = {r["demo"]: r for r in m.status()}
    assert set(rows) == {"a"} and rows["a"]["pinned"]  # b unloaded after its request (keep-alive 0); a stayed
    assert "a" in {r["demo"] for r in m.status()}


def test_keep_alive_settings_parse_and_misspellings_stop_the_start():
    from hub.errors import SettingsError
    from hub.options import check_names
    from hub.settings import Settings

    s = Settings.load({"DEMOHUB_KEEP_ALIVE": "30m", "DEMOHUB_LLM_CHAT_KEEP_ALIVE": "0", "DEMOHUB_PINNED": "llm_chat",
                       "DEMOHUB_API_KEYS": "k1, k2"})
    assert (s.keep_alive, s.keep_alives, s.pinned, s.api_keys) == (1800.0, {"llm_chat": 0.0}, ("llm_chat",), ("k1", "k2"))
    assert Settings.load({"DEMOHUB_KEEP_ALIVE": "never"}).keep_alive == -1
    with pytest.raises(SettingsError, match="DEMOHUB_KEEP_ALIVE='soon' is not a duration"):
        Settings.load({"DEMOHUB_KEEP_ALIVE": "soon"})
    with pytest.raises(SettingsError, match="DEMOHUB_PINNED: 'llm' is not a demo"):
        check_names({"DEMOHUB_PINNED": "llm"}, ("llm_chat",), [])
    check_names({"DEMOHUB_LLM_CHAT_KEEP_ALIVE": "5m"}, ("llm_chat",), [])


def test_the_models_tab_shows_the_time_left(settings):
    from hub import models_tab

    m = ModelManager(replace(settings, keep_alive=60), {"a": (spec("a"), loader(100))})
    with m.use("a"):
        pass
    (row,) = models_tab.status_rows(m)
    assert row[models_tab.COLUMNS.index("unload in")].endswith("s")


@pytest.mark.parametrize("keep", [0.0, 0.4])
def test_keep_alive_through_metrics_and_the_models_status(serve, keep):
    client = serve(("tests.fake_demo",), keep_alive=keep)
    client.predict("echo-small", "hi", 1, api_name="/echo")
    loaded = ("demohub_model_loaded", frozenset({"demo": "fake_echo", "model": "echo-small", "device": "cpu"}.items()))
    if keep:
        assert samples(get(client.src + "metrics")[2]).get(loaded) == 1
    deadline = time.monotonic() + WAIT_S
    while client.blocks.hub_manager.status() and time.monotonic() < deadline:
        time.sleep(0.05)
    m = samples(get(client.src + "metrics")[2])
    assert client.blocks.hub_manager.status() == [] and loaded not in m
    assert m[("demohub_evictions_total", frozenset({"reason": "keep_alive"}.items()))] == 1


def test_other_websites_cannot_drive_the_api_and_bodies_must_be_bounded_json(serve):
    client = serve(("llm_chat",), models={"llm_chat": "tiny-random"})
    url = client.src + "v1/chat/completions"
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}).encode()

    def post(data, headers):
        req = urllib.request.Request(url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=WAIT_S) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    status, reply = post(body, {"Content-Type": "text/plain", "Origin": "https://evil.example"})
    assert status == 403 and "other websites" in reply["error"]["message"]
    status, reply = post(body, {"Content-Type": "text/plain"})  # a form post a page could send without asking
    assert status == 415 and "application/json" in reply["error"]["message"]
    host = client.src.split("//", 1)[1].rstrip("/")
    import socket  # a 9 MiB body is refused from its declared length, before the hub reads it

    with socket.create_connection((host.split(":")[0], int(host.split(":")[1]))) as sock:
        sock.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {9 * 2**20}\r\nConnection: close\r\n\r\n".encode() + b'{"messages": "xx')
        answer = sock.makefile("rb").read().decode()
    assert answer.startswith("HTTP/1.1 413") and "MiB" in answer
    status, _ = post(body, {"Content-Type": "application/json", "Origin": f"http://{host}"})  # the hub's own page
    assert status == 200
    status, _ = post(body, {"Content-Type": "application/json"})  # programs send no Origin
    assert status == 200


def test_v1_requests_wait_without_threads_and_a_full_backlog_gets_429(settings):
    """Work waits in the demo's /v1 queue (one at a time, as the tab), holds no server thread while waiting, and
    beyond the backlog a request is told to come back (429 + Retry-After) instead of piling up."""
    import asyncio

    import httpx
    from fastapi import APIRouter, FastAPI

    from hub.api import add_route, call
    from hub.context import DemoContext
    from tests import slow_demo

    s = replace(settings, queue_size=3)
    ctx = DemoContext(ModelManager(s, {"fake_slow": (slow_demo.SPEC, slow_demo.DEMO.loader(), slow_demo.WORK)}), s,
                      slow_demo.SPEC)
    router, app = APIRouter(), FastAPI()

    @add_route(router, ctx, "/v1/slow")
    async def slow(request):
        return {"text": await call(ctx, "held", slow_demo.Steps(), None)}

    @app.get("/ping")
    async def ping():
        return {"ok": True}

    app.include_router(router)

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            posts = [asyncio.create_task(client.post("/v1/slow")) for _ in range(8)]
            deadline = time.monotonic() + WAIT_S
            while sum(p.done() for p in posts) < 4 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)  # the four beyond the backlog are answered at once
            held = [p for p in posts if not p.done()]
            # the server answers other requests while one works (held until the test says) and 3 wait
            ping = await asyncio.wait_for(client.get("/ping"), WAIT_S)
            assert ping.status_code == 200
            assert len(held) == 4 and not any(p.done() for p in held)
            slow_demo.GATE.set()
            return [await p for p in posts]

    slow_demo.GATE.clear()
    try:
        answers = asyncio.run(main())
    finally:
        slow_demo.GATE.set()
    codes = sorted(r.status_code for r in answers)
    assert codes.count(200) == 4 and codes.count(429) == 4  # one at work + 3 waiting; the rest told to retry
    assert all(r.json()["text"] == "released" for r in answers if r.status_code == 200)
    refused = next(r for r in answers if r.status_code == 429)
    assert refused.headers["retry-after"] == "5" and "try again" in refused.json()["error"]["message"]


def test_no_fastapi_description_of_every_route(serve):
    client = serve(("tests.fake_demo",), api_keys=("sk-1",))
    for path in ("openapi.json", "docs", "redoc"):
        with pytest.raises(urllib.error.HTTPError) as e:
            get(client.src + path)
        assert e.value.code in (401, 404)


def test_the_models_tab_shows_visitors_no_server_paths_or_versions(settings):
    from hub import models_tab
    from hub.models import ModelManager

    m = ModelManager(settings, {"a": (spec("a"), loader(100))})
    from hub.device import cpu_info

    local = models_tab.system_info(m, settings)
    assert str(settings.cache_dir.resolve()) in local and "gradio" in local
    assert f"- CPU: {cpu_info()['name']}" in local  # the operator sees which CPU the figures come from
    for public in (replace(settings, host="0.0.0.0"), replace(settings, share=True, auth=(("u", "p"),))):
        shown = models_tab.system_info(m, public)
        assert str(settings.cache_dir.resolve()) not in shown and "gradio" not in shown and "Python" not in shown
        assert "CPU:" not in shown
        assert "Cache folder" in shown and "Keep-alive" in shown
