"""Safe defaults: no files outside the allowed paths, upload cap, auth on every route when set."""

import urllib.error
import urllib.request
from dataclasses import replace

import pytest

from tests import WAIT_S

SECRET = "demohub-secret-canary"


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


@pytest.fixture
def secret_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("outside") / "secret.txt"
    p.write_text(SECRET)
    return p


@pytest.mark.parametrize("route", ["/gradio_api/file={p}", "/file={p}", "/gradio_api/file=../../../..{p}",
                                   "/gradio_api/file=%2e%2e/%2e%2e/%2e%2e{p}", "/static/..%2f..%2f..{p}"])
def test_path_traversal_through_file_routes_is_refused(serve, secret_file, route):
    client = serve(("tests.fake_demo",))
    status, body = get(client.src.rstrip("/") + route.format(p=secret_file))
    assert SECRET not in body and status in (400, 403, 404, 405)
    status, body = get(client.src.rstrip("/") + route.format(p="/etc/passwd"))
    assert "root:" not in body


def test_uploads_over_the_cap_are_refused(serve):
    client = serve(("tests.fake_demo",), max_upload_mb=1)
    import requests

    url = client.src.rstrip("/") + "/gradio_api/upload"
    small = requests.post(url, files={"files": ("a.txt", b"x" * 1000)}, timeout=WAIT_S)
    assert small.status_code == 200
    big = requests.post(url, files={"files": ("b.bin", b"x" * (2 * 1024 * 1024))}, timeout=WAIT_S)
    assert big.status_code == 413 and "1" in big.text


def test_auth_protects_the_page_and_the_api():
    from gradio_client import Client

    from hub.app import create_app, launch
    from hub.settings import Settings
    from tests.conftest import free_port

    s = replace(Settings.load({}), port=free_port(), auth=(("alice", "pw"),), device="cpu")
    blocks = create_app(s, ("tests.fake_demo",))
    try:
        _, url, _ = launch(blocks, s, prevent_thread_lock=True, quiet=True)
        status, body = get(url.rstrip("/") + "/config")
        assert status in (401, 403) or "login" in body.lower() and "echo" not in body
        with pytest.raises(Exception):
            Client(url, verbose=False).predict("echo-small", "a", 1, api_name="/echo")
        assert Client(url, auth=("alice", "pw"), verbose=False).predict("echo-small", "a", 1, api_name="/echo")[0] == "a"
    finally:
        blocks.close()


def test_visitors_of_a_public_hub_cannot_load_arbitrary_models(settings):
    from hub.context import DemoContext
    from hub.errors import UserError
    from hub.models import ModelManager
    from tests import fake_demo

    opted_in = replace(settings, allow_any_model=True)
    local = DemoContext(ModelManager(opted_in, {"fake_echo": (fake_demo.SPEC, fake_demo.DEMO.loader(), fake_demo.WORK)}), opted_in, fake_demo.SPEC)
    local.check_model("someone/any-repo")  # only this machine can reach it and the operator allowed any model
    for public in (replace(opted_in, share=True, auth=(("u", "p"),)), replace(opted_in, host="0.0.0.0")):
        ctx = DemoContext(ModelManager(public, {"fake_echo": (fake_demo.SPEC, fake_demo.DEMO.loader(), fake_demo.WORK)}), public, fake_demo.SPEC)
        ctx.check_model("echo-large")  # listed
        for bad in ("someone/any-repo", "/etc/passwd", "../models/x.gguf"):
            with pytest.raises(UserError, match="not one of this hub's"):
                ctx.check_model(bad)
        with pytest.raises(UserError, match="DEMOHUB_FAKE_ECHO_MODEL"):
            ctx.call("echo", fake_demo.EchoRequest("hi"), "someone/any-repo")


def test_which_names_and_pages_a_hub_answers(settings):
    from hub.hosts import Proxies, host_ok, origin_ok

    loop, lan = settings, replace(settings, host="0.0.0.0")
    named = replace(lan, allowed_hosts=("hub.example.test",))
    for host in ("127.0.0.1:7860", "127.0.0.1", "localhost:7860", "LOCALHOST", "[::1]:7860", "[::1]"):
        assert host_ok(host, loop, True) and host_ok(host, named, False), host
    for host in ("rebind.attacker.example:7860", "127.0.0.1.nip.io", "10.0.0.5:7860", "localhost.attacker.example"):
        assert not host_ok(host, loop, True), host  # a hub on loopback: its own names only
    assert host_ok("hub.example.test", named, False) and host_ok("192.168.1.5:7860", named, False)
    assert not host_ok("rebind.attacker.example", named, False)
    assert host_ok("anything.lan", lan, False)  # a hub on the network without a list: visitors name it as they like
    assert not host_ok("rebind.attacker.example", lan, True)  # ... but nobody on its own machine (rebinding)
    assert host_ok("abc.gradio.live", loop, True, frozenset({"abc.gradio.live"}))  # the share link's name
    assert origin_ok("https://abc.gradio.live", "127.0.0.1:7860", loop, extra=frozenset({"abc.gradio.live"}))
    assert host_ok(None, loop, True)  # HTTP/1.0 without Host: a program
    own = "127.0.0.1:7860"
    assert origin_ok("http://127.0.0.1:7860", own, loop) and origin_ok("http://localhost", "localhost:80", loop)
    for origin in ("null", "https://evil.example", "http://127.0.0.1:9999", "http://localhost:7860", "file://"):
        assert not origin_ok(origin, own, loop), origin
    assert origin_ok("https://hub.example.test", "10.0.0.2:7860", named)  # behind a proxy that sets its own Host
    allowed = replace(loop, allowed_origins=("https://app.example.com/",))
    assert origin_ok("https://APP.example.com", own, allowed) and not origin_ok("null", own, allowed)
    assert origin_ok("https://any.example", own, replace(loop, allowed_origins=("*",)))
    proxies = Proxies(("127.0.0.1/32", "10.0.0.0/8"))
    assert proxies.trusted("10.1.2.3") and not proxies.trusted("192.168.1.1") and not proxies.trusted("unknown")
    assert proxies.client("127.0.0.1", "6.6.6.6, 203.0.113.9, 10.0.0.7") == "203.0.113.9"  # the right-most stranger
    assert proxies.client("127.0.0.1", "") == "unknown"  # a proxy that names nobody: never this machine
