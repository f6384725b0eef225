"""Opt-in http(s) image URLs (demos/vision/fetch.py, DEMOHUB_VISION_FETCH_URLS=1), against a local HTTP server.

The SSRF rule refuses loopback, so the local server is reached through an injected resolver that maps the name
`images.test` to 127.0.0.1 (the only way to point a name at a test server without the network); the same server
asked for by its address, or through the real resolver, is refused. Truth: the bytes the server sent, the special
address ranges of RFC 6890 / 4193 / 6598, and what the server saw of the request."""

from __future__ import annotations

import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from demos.vision import fetch
from hub.errors import UserError
from tests.test_contract import is_sentence


def png(seed=0, size=(120, 90)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(
        buf, "PNG")
    return buf.getvalue()


PICTURE = png()


class Handler(BaseHTTPRequestHandler):
    seen: list = []
    release = threading.Event()

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 (http.server's name)
        Handler.seen.append((self.path, self.headers.get("Host")))
        routes = {
            "/cat.png": (200, "image/png", PICTURE),
            "/page": (200, "text/html; charset=utf-8", b"<html>not a picture</html>"),
            "/missing.png": (404, "text/plain", b"no"),
        }
        if self.path in routes:
            code, kind, body = routes[self.path]
            return self._send(code, kind, body)
        if self.path == "/big.png":  # says its size up front
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(50 * 2**20))
            self.end_headers()
            return
        if self.path == "/endless.png":  # no Content-Length: the cap must stop the reading
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            try:
                for _ in range(4096):
                    self.wfile.write(b"\0" * 65536)
            except OSError:
                pass  # the client hung up at the cap
            return
        if self.path == "/slow.png":  # a trickle that never ends until the test lets go
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            while not Handler.release.wait(0.05):
                try:
                    self.wfile.write(b"\0")
                    self.wfile.flush()
                except OSError:
                    return
            return
        targets = {"/to-cat": "/cat.png", "/to-file": "file:///etc/passwd", "/to-private": "http://10.1.2.3/x.png",
                   "/loop": "/loop"}
        self.send_response(302)
        self.send_header("Location", targets.get(self.path, "/loop"))
        self.end_headers()

    def _send(self, code, kind, body):
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv.server_address[1]
    Handler.release.set()
    srv.shutdown()


def to_local(host, port):
    """The test's resolver: `images.test` is the local server; any other name does not exist."""
    if host != "images.test":
        raise UserError(f"The image URL's host {host} could not be found; check the URL.")
    return ["127.0.0.1"]


def get(port, path, **kw):
    return fetch.fetch_image(f"http://images.test:{port}{path}", kw.pop("max_bytes", 2**20), resolve=to_local, **kw)


def test_a_picture_is_downloaded_from_its_url_by_name_with_the_host_header_of_the_url(server):
    Handler.seen.clear()
    assert get(server, "/cat.png") == PICTURE
    assert Handler.seen == [("/cat.png", f"images.test:{server}")], "sent to the checked address, named as the URL"
    assert get(server, "/to-cat") == PICTURE, "a redirect to http(s) is followed"


@pytest.mark.parametrize("path, words", [
    ("/page", "not an image"),
    ("/missing.png", "HTTP 404"),
    ("/big.png", "larger than 1 MB"),
    ("/endless.png", "larger than 1 MB"),
    ("/to-file", "http or https"),
    ("/to-private", "local or private address"),
    ("/loop", "redirects more than 3 times"),
])
def test_what_the_url_gives_or_where_it_leads_is_refused_in_one_sentence(server, path, words):
    with pytest.raises(UserError) as e:
        get(server, path)
    assert words in str(e.value) and is_sentence(str(e.value)), str(e.value)


def test_a_download_that_does_not_finish_in_time_is_refused(server):
    with pytest.raises(UserError, match="within 0.5 s"):
        get(server, "/slow.png", limit_s=0.5)


def test_the_server_asked_for_by_its_loopback_address_or_name_is_refused_before_any_connection(server):
    Handler.seen.clear()
    for url in (f"http://127.0.0.1:{server}/cat.png", f"http://localhost:{server}/cat.png",
                f"http://[::1]:{server}/cat.png"):
        with pytest.raises(UserError, match="local or private address"):
            fetch.fetch_image(url, 2**20)  # the real resolver
    assert Handler.seen == [], "nothing reached the server"


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254",
                                     "100.64.0.1", "0.0.0.0", "224.0.0.1", "::1", "fe80::1", "fc00::1",
                                     "::ffff:127.0.0.1", "::ffff:10.0.0.1", "192.0.2.1"])
def test_special_addresses_are_refused(address):
    with pytest.raises(UserError, match="local or private address"):
        fetch.check_public(address, address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "151.101.1.1"])
def test_public_addresses_are_allowed(address):
    fetch.check_public(address, address)


@pytest.fixture(scope="module")
def fetching_hub(tmp_path_factory):
    """A hub whose operator turned URL downloads on (DEMOHUB_VISION_FETCH_URLS=1), through the openai SDK."""
    from dataclasses import replace

    from openai import OpenAI

    from hub.app import create_app, launch
    from hub.settings import Settings
    from tests.conftest import free_port

    env = {"DEMOHUB_VISION_FETCH_URLS": "1"}
    s = Settings.load(env, cache_dir=str(tmp_path_factory.mktemp("fetch") / "cache"), offline=True, device="cpu",
                      port=free_port())
    s = replace(s, models={"llm_chat": "tiny-random", "vision": "tiny-random"})
    blocks = create_app(s, ("llm_chat", "vision"))
    launch(blocks, s, prevent_thread_lock=True, quiet=True)
    yield OpenAI(base_url=f"http://127.0.0.1:{s.port}/v1", api_key="unused", max_retries=0)
    blocks.close()


def ask(url: str):
    return [{"role": "user", "content": [{"type": "text", "text": "What is in the picture?"},
                                         {"type": "image_url", "image_url": {"url": url}}]}]


def test_the_openai_sdk_sends_an_image_url_that_the_hub_downloads_when_its_operator_allows_it(fetching_hub, server,
                                                                                               monkeypatch):
    """The same answer as for the picture's bytes sent inline: the model saw the downloaded file."""
    import base64

    import openai

    monkeypatch.setattr(fetch, "resolve_public", to_local)
    by_url = fetching_hub.chat.completions.create(model="default", messages=ask(f"http://images.test:{server}/cat.png"),
                                                  max_tokens=5)
    inline = fetching_hub.chat.completions.create(
        model="default", messages=ask("data:image/png;base64," + base64.b64encode(PICTURE).decode()), max_tokens=5)
    assert by_url.choices[0].message.content == inline.choices[0].message.content
    assert by_url.usage.prompt_tokens == inline.usage.prompt_tokens > 20
    for url, words in ((f"http://images.test:{server}/page", "not an image"),
                       (f"http://127.0.0.1:{server}/cat.png", "local or private address")):
        with pytest.raises(openai.BadRequestError) as e:
            fetching_hub.chat.completions.create(model="default", messages=ask(url), max_tokens=3)
        assert words in e.value.body["message"] and is_sentence(e.value.body["message"])
