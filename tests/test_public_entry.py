"""The security guards through the real entry point (issue #22): `demohub serve` in public mode (all interfaces,
one user), started by the test as an operator would, and a visitor from this machine's network address trying every
`/v1` route and every tab's API the way an attacker or a careless client would.

The routes come from the app itself (hub.app.api_routers) and the tab APIs from gradio's view of it, so a new route
or API is tried here without editing this file; a new POST route needs a request body below, or this test says so.
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
from tests.conftest import free_port
from tests.test_crawl import _lan_ip

ROOT = Path(__file__).resolve().parents[1]
USER = ("visitor", "s3cret-pass")
NOT_LISTED = "/etc/passwd"

# One request per POST route, naming a model no visitor may pick: {path: (json body, multipart files)}.
BODIES = {
    "/v1/chat/completions": ({"model": NOT_LISTED, "messages": [{"role": "user", "content": "hi"}]}, None),
    "/v1/embeddings": ({"model": NOT_LISTED, "input": "a photo of a cat"}, None),
    "/v1/images/generations": ({"model": NOT_LISTED, "prompt": "a red cube"}, None),
    "/v1/images/edits": ({"model": NOT_LISTED, "prompt": "a red cube"}, "image"),
    "/v1/audio/transcriptions": ({"model": NOT_LISTED}, "file"),
    "/v1/audio/translations": ({"model": NOT_LISTED}, "file"),
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


@pytest.fixture(scope="module")
def public_hub(tmp_path_factory):
    ip = _lan_ip()
    if ip is None:
        pytest.skip("this machine has no non-loopback address to visit the hub from")
    tmp, port = tmp_path_factory.mktemp("public-entry"), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMOHUB_")}
    env.update({f"DEMOHUB_{d.upper()}_MODEL": "tiny-random" for d in DEMOS}, HOME=str(tmp))
    cmd = [sys.executable, "-m", "hub.cli", "serve", "--host", "0.0.0.0", "--port", str(port), "--auth",
           ":".join(USER), "--weights", "random", "--offline", "--device", "cpu", "--cache-dir", str(tmp / "cache")]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://{ip}:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                httpx.get(url + "/", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.3)
        else:
            pytest.fail(f"demohub serve did not answer within 180 s:\n{_output(proc)[-3000:]}")
        yield url
    finally:
        proc.terminate()
        _output(proc)


def _output(proc) -> str:
    try:
        return proc.communicate(timeout=30)[0] or ""
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
        return httpx.get(url + path, headers=headers, timeout=60)
    body, file_field = BODIES[path]
    if plain:  # what a web page may send without asking the browser first
        return httpx.post(url + path, content=json.dumps(body), headers={**headers, "Content-Type": "text/plain"},
                          timeout=60)
    if file_field:
        return httpx.post(url + path, data=body, files={file_field: sample.open("rb")}, headers=headers, timeout=60)
    return httpx.post(url + path, json=body, headers=headers, timeout=60)


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
        r = httpx.post(f"{public_hub}/gradio_api/call{api}", json={"data": []}, timeout=30)
        assert r.status_code == 401, (api, r.status_code, r.text[:200])
    for api in ("/unload_all", "/unload_model"):
        args = () if api == "/unload_all" else ("llm_chat",)
        with pytest.raises(Exception, match="Only the hub.s operator"):
            client.predict(*args, api_name=api)
