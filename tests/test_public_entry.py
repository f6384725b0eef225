"""The security guards through the real entry point (issues #22, #33): `demohub serve` in public mode (all
interfaces, one user, one allowed name) and on loopback without login, started by the test as an operator would, and
a visitor (from this machine's network address, or a web page in a browser on this machine) trying every route the
way an attacker or a careless client would: without login, from another website (`Origin`, `null` included),
through a name of its own (DNS rebinding: `Host`), and guessing passwords (`/login`, `/login/`, Bearer on `/v1`
and `/metrics`, a new `X-Forwarded-For` per try).

The routes come from the app itself (hub.app.api_routers, and gradio's own from gradio.routes.App) and the tab APIs
from gradio's view of it, so a new route or API is tried here without editing this file; a new POST route needs a
request body below, or this test says so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from hub.registry import DEMOS
from tests import WAIT_S
from tests.conftest import free_port
from tests.test_crawl import _lan_ip

ROOT = Path(__file__).resolve().parents[1]
USER = ("visitor", "s3cret-pass")
NOT_LISTED = "/etc/passwd"
NAME = "hub.example.test"  # the public hub's DEMOHUB_ALLOWED_HOSTS
REBIND = "rebind.attacker.example"  # a name a web page's author points at the hub's address

# One request per POST route, naming a model no visitor may pick: {path: (json body, multipart files)}.
BODIES = {
    "/v1/chat/completions": ({"model": NOT_LISTED, "messages": [{"role": "user", "content": "hi"}]}, None),
    "/v1/embeddings": ({"model": NOT_LISTED, "input": "a photo of a cat"}, None),
    "/v1/images/generations": ({"model": NOT_LISTED, "prompt": "a red cube"}, None),
    "/v1/images/edits": ({"model": NOT_LISTED, "prompt": "a red cube"}, "image"),
    "/v1/audio/transcriptions": ({"model": NOT_LISTED}, "file"),
    "/v1/audio/translations": ({"model": NOT_LISTED}, "file"),
    "/v1/audio/speech": ({"model": NOT_LISTED, "input": "hello"}, None),
}


def _routes() -> list[tuple[str, str]]:
    """(method, path) of every route the hub adds beside gradio's, built as `demohub serve` builds them."""
    from hub.app import api_routers, create_app
    from hub.settings import Settings

    s = replace(Settings.load({}), device="cpu", offline=True, models={d: "tiny-random" for d in DEMOS})
    blocks = create_app(s)
    try:
        return sorted({(m, r.path) for _ctx, router in api_routers(blocks, s) for r in router.routes
                       for m in r.methods})
    finally:
        blocks.close()


def _every_route() -> list[tuple[str, str]]:
    """(method, path) of every HTTP route `demohub serve` answers: gradio's own (its app, built as launch builds
    it) and the hub's; path parameters filled with 'x'."""
    import re

    import gradio.routes

    from hub.app import api_routers, create_app
    from hub.settings import Settings

    s = replace(Settings.load({}), device="cpu", offline=True, models={d: "tiny-random" for d in DEMOS})
    blocks = create_app(s)
    try:
        app = gradio.routes.App.create_app(blocks, app_kwargs={"openapi_url": None})
        routes = list(app.router.routes) + [r for _ctx, router in api_routers(blocks, s) for r in router.routes]
        found, todo = set(), routes
        while todo:
            r = todo.pop()
            if getattr(r, "original_router", None) is not None:  # FastAPI's included router (gradio_api/...)
                todo.extend(r.original_router.routes)
            elif getattr(r, "methods", None):
                path = re.sub(r"\{[^{}]*\}", "x", r.path)
                found |= {(m, path) for m in r.methods}
        return sorted(found)
    finally:
        blocks.close()


def _start(tmp, port: int, args: list[str], env_extra: dict):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMOHUB_")}
    env.update({f"DEMOHUB_{d.upper()}_MODEL": "tiny-random" for d in DEMOS}, HOME=str(tmp), **env_extra)
    cmd = [sys.executable, "-m", "hub.cli", "serve", "--port", str(port), "--weights", "random", "--offline",
           "--device", "cpu", "--cache-dir", str(tmp / "cache"), *args]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_up(proc, url: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            httpx.get(url + "/", timeout=WAIT_S)
            return
        except httpx.TransportError:
            time.sleep(0.3)
    pytest.fail(f"demohub serve did not answer within {WAIT_S} s:\n{_output(proc)[-3000:]}")


@pytest.fixture(scope="module")
def public_hub(tmp_path_factory):
    ip = _lan_ip()
    if ip is None:
        pytest.skip("this machine has no non-loopback address to visit the hub from")
    tmp, port = tmp_path_factory.mktemp("public-entry"), free_port()
    proc = _start(tmp, port, ["--host", "0.0.0.0", "--auth", ":".join(USER)], {"DEMOHUB_ALLOWED_HOSTS": NAME})
    url = f"http://{ip}:{port}"
    try:
        _wait_up(proc, url)
        yield url
    finally:
        proc.terminate()
        _output(proc)


@pytest.fixture(scope="module")
def loopback_hub(tmp_path_factory):
    """The default hub: this machine only, no login; what a web page open in the operator's browser may reach."""
    tmp, port = tmp_path_factory.mktemp("loopback-entry"), free_port()
    proc = _start(tmp, port, [], {})
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_up(proc, url)
        yield url
    finally:
        proc.terminate()
        _output(proc)


def _output(proc) -> str:
    try:
        return proc.communicate(timeout=WAIT_S)[0] or ""
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[0] or ""


def _send(url: str, method: str, path: str, *, auth: bool = True, origin: str | None = None,
          plain: bool = False, sample: Path | None = None) -> httpx.Response:
    headers = {"Authorization": "Bearer " + ":".join(USER)} if auth else {}
    if origin:
        headers["Origin"] = origin
    path = path.replace("{name}", "x.png")
    if method == "GET":
        return httpx.get(url + path, headers=headers, timeout=WAIT_S)
    body, file_field = BODIES[path]
    if plain:  # what a web page may send without asking the browser first
        return httpx.post(url + path, content=json.dumps(body), headers={**headers, "Content-Type": "text/plain"},
                          timeout=WAIT_S)
    if file_field:
        return httpx.post(url + path, data=body, files={file_field: sample.open("rb")}, headers=headers, timeout=WAIT_S)
    return httpx.post(url + path, json=body, headers=headers, timeout=WAIT_S)


def test_every_route_refuses_strangers_other_websites_and_models_not_listed(public_hub, tmp_path):
    from hub.samples import make_samples

    routes = _routes()
    posts = {p for m, p in routes if m == "POST"}
    assert posts == set(BODIES), f"give each POST route a request in BODIES: {sorted(posts ^ set(BODIES))}"
    assert ("GET", "/v1/models") in routes and ("GET", "/metrics") in routes
    samples = make_samples(tmp_path)
    for method, path in routes:
        sample = Path(samples["audio" if "audio" in path else "image"])
        r = _send(public_hub, method, path, auth=False, sample=sample)
        assert r.status_code == 401 and "Log in" in r.json()["error"]["message"], (path, r.status_code, r.text)
        r = _send(public_hub, method, path, origin="https://evil.example", sample=sample)
        assert r.status_code in (401, 403), (path, r.status_code, r.text)
        if method != "POST":
            continue
        r = _send(public_hub, method, path, plain=True, sample=sample)
        assert r.status_code in (400, 415), (path, r.status_code, r.text)
        r = _send(public_hub, method, path, sample=sample)
        said = r.json()["error"]["message"]
        assert r.status_code in (400, 404) and "is not one of this hub's" in said, (path, r.status_code, said)
        assert "does not exist" not in said and "No such file" not in said  # nothing learnt about the file system
    r = _send(public_hub, "GET", "/v1/models")
    ids = [m["id"] for m in r.json()["data"]]
    assert r.status_code == 200 and NOT_LISTED not in ids and not any(i.startswith("/") for i in ids)


def test_every_tab_api_needs_login_and_a_visitor_cannot_unload(public_hub):
    from gradio_client import Client

    client = Client(public_hub + "/", auth=USER, verbose=False)
    apis = list(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/chat", "/transcribe", "/detect", "/classify", "/segment", "/generate_image"} <= set(apis)
    for api in apis:
        r = httpx.post(f"{public_hub}/gradio_api/call{api}", json={"data": []}, timeout=WAIT_S)
        assert r.status_code == 401, (api, r.status_code, r.text[:200])
    for api in ("/unload_all", "/unload_model"):
        args = () if api == "/unload_all" else ("llm_chat",)
        with pytest.raises(Exception, match="Only the hub.s operator"):
            client.predict(*args, api_name=api)


def _try(url: str, method: str, path: str, headers: dict) -> httpx.Response:
    return httpx.request(method, url + path, headers=headers, timeout=WAIT_S)


def test_every_route_refuses_other_websites_and_null_origins(public_hub, loopback_hub):
    routes = _every_route()
    paths = {p for _m, p in routes}
    assert {"/gradio_api/upload", "/gradio_api/queue/join", "/gradio_api/call/x", "/config", "/login", "/login/",
            "/v1/models", "/metrics", "/v1/chat/completions", "/gradio_api/runs"} <= paths, sorted(paths)
    for url in (public_hub, loopback_hub):
        for method, path in routes:
            for origin in ("https://evil.example", "null", f"http://{REBIND}:{url.rsplit(':', 1)[1]}"):
                r = _try(url, method, path, {"Origin": origin})
                said = "other websites" in r.text or method == "HEAD"  # a HEAD answer has no body
                assert r.status_code == 403 and said, (url, method, path, origin, r.text[:200])
    own = _try(loopback_hub, "POST", "/gradio_api/upload", {"Origin": loopback_hub})
    assert own.status_code != 403, own.text[:200]  # the hub's own page still uploads (here: no file, so 4xx)


def test_every_route_of_a_loopback_hub_refuses_a_name_a_web_page_points_at_it(loopback_hub, public_hub):
    port = loopback_hub.rsplit(":", 1)[1]
    for method, path in _every_route():
        r = _try(loopback_hub, method, path, {"Host": f"{REBIND}:{port}", "Origin": f"http://{REBIND}:{port}"})
        assert r.status_code == 403, (method, path, r.status_code, r.text[:200])
        said = f"http://127.0.0.1:{port}/" in r.text and "DEMOHUB_ALLOWED_HOSTS" in r.text or method == "HEAD"
        assert said, (method, path, r.text)
    for host in (f"127.0.0.1:{port}", "127.0.0.1", f"localhost:{port}", "localhost", f"[::1]:{port}"):
        assert _try(loopback_hub, "GET", "/", {"Host": host}).status_code == 200, host  # the page at its names
    config = httpx.get(loopback_hub + "/config", headers={"X-Forwarded-Host": "evil.example"}, timeout=WAIT_S).json()
    assert "evil.example" not in json.dumps(config) and config["root"].startswith(loopback_hub)  # file URLs
    public_port = public_hub.rsplit(":", 1)[1]
    r = httpx.get(public_hub + "/v1/models", headers={"Host": f"{REBIND}:{public_port}"}, timeout=WAIT_S)
    assert r.status_code == 403 and "DEMOHUB_ALLOWED_HOSTS" in r.json()["error"]["message"]
    r = httpx.get(public_hub + "/v1/models", headers={"Host": f"{NAME}:{public_port}", "Origin": f"https://{NAME}",
                                                      "Authorization": "Bearer " + ":".join(USER)}, timeout=WAIT_S)
    assert r.status_code == 200, r.text  # a name the operator allowed, and a page served under it
    from gradio_client import Client

    for url in (loopback_hub, f"http://localhost:{port}"):  # the page's own API at its own names still works
        client = Client(url + "/", verbose=False)
        assert "gradio" in client.predict(api_name="/model_status")[1]  # this machine's browser: the operator
        message, *_ = client.predict(api_name="/unload_all")
        assert message == "Nothing was loaded." or message.startswith("Unloaded"), message


def test_no_header_makes_a_visitor_the_operator_or_resets_the_password_throttle(public_hub):
    """Last in this module: it leaves the visitor's address throttled for minutes."""
    from gradio_client import Client

    local = "http://127.0.0.1:" + public_hub.rsplit(":", 1)[1]
    assert "gradio" in Client(local + "/", auth=USER, verbose=False).predict(api_name="/model_status")[1]
    for header in ({"X-Forwarded-For": "203.0.113.9"}, {"Forwarded": "for=203.0.113.9"},
                   {"X-Real-IP": "203.0.113.9"}):  # a proxy on this machine forwards other people
        proxied = Client(local + "/", auth=USER, verbose=False, headers=header)
        assert "gradio" not in proxied.predict(api_name="/model_status")[1], header
        with pytest.raises(Exception, match="Only the hub.s operator"):
            proxied.predict(api_name="/unload_all")

    def guesses(n, path, user, **kw):
        if path.startswith("/login"):
            return [httpx.post(public_hub + path, data={"username": user, "password": f"guess{i}"}, timeout=WAIT_S,
                               **kw).status_code for i in range(n)]
        return [httpx.get(public_hub + path, headers={"Authorization": f"Bearer {user}:guess{i}"},
                          timeout=WAIT_S).status_code for i in range(n)]

    assert guesses(6, "/login", USER[0]) == [400] * 5 + [429]
    right = httpx.get(public_hub + "/v1/models", headers={"Authorization": "Bearer " + ":".join(USER)}, timeout=WAIT_S)
    assert right.status_code == 429 and int(right.headers["Retry-After"]) >= 1  # one throttle: the page's failures
    assert guesses(6, "/login/", "slash") == [400] * 5 + [429]  # the trailing slash is the same door
    assert guesses(6, "/v1/models", "models") == [401] * 5 + [429]
    assert guesses(6, "/metrics", "metrics") == [401] * 5 + [429]
    codes = [httpx.post(local + "/login", data={"username": "xff", "password": f"guess{i}"}, timeout=WAIT_S,
                        headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code for i in range(6)]
    assert codes == [400] * 5 + [429]  # a new X-Forwarded-For per try is the same client
