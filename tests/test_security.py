"""Safe defaults: no files outside the allowed paths, upload cap, auth on every route when set."""

import urllib.error
import urllib.request
from dataclasses import replace

import pytest

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
    small = requests.post(url, files={"files": ("a.txt", b"x" * 1000)}, timeout=30)
    assert small.status_code == 200
    big = requests.post(url, files={"files": ("b.bin", b"x" * (2 * 1024 * 1024))}, timeout=30)
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
