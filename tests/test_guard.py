"""Issues #21 and #33 on a live hub: no page describes anything before login, wrong passwords slow down on every
door (one throttle per address and user, whatever headers say), the login cookie stays on its own site, one upload
cap per request, cut-off uploads leave no files, and only operators unload models (a rebinding name or a proxy
makes nobody the operator)."""

from __future__ import annotations

import os
import socket
import time
import urllib.error
import urllib.request
from types import SimpleNamespace

import pytest
import requests

from hub.auth import is_operator
from hub.guard import Throttle, client_addr, strip_api_info, throttle_of, too_many
from tests import WAIT_S

PUBLIC = dict(host="0.0.0.0", auth=(("visitor", "pw"), ("op", "secret")), operators=("op",))


def _get(url: str, **kw) -> tuple[int, str, dict]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, **kw), timeout=WAIT_S) as r:
            return r.status, r.read().decode(errors="replace"), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace"), dict(e.headers)


def test_no_page_describes_an_endpoint_or_a_model_until_login(serve):
    client = serve(("tests.fake_demo",), **PUBLIC)
    base = client.src.rstrip("/")
    for path in ("/", "/gradio_api/runs", "/gradio_api/runs/"):
        for encoding in ("identity", "gzip", "br"):  # gradio compresses what the client accepts
            page = requests.get(base + path, headers={"Accept-Encoding": encoding}, timeout=WAIT_S)
            assert page.status_code == 200 and "gradio_api_info" in page.text, (path, encoding)
            for word in ("echo-small", "/echo", "named_endpoints\": {\"", "fake_echo", "Times"):
                assert word not in page.text, (path, encoding, word)
    session = requests.Session()
    assert session.post(base + "/login", data={"username": "visitor", "password": "pw"}).ok
    assert "echo-small" in session.get(base + "/").text  # logged in: the whole page
    assert "echo-small" in session.get(base + "/gradio_api/runs").text


def test_strip_api_info_keeps_the_rest_of_the_page():
    html = b'<script>window.gradio_config = {"a": 1}; gradio_api_info = {"named_endpoints": {"/x": {"p": "};"}}};' \
           b' window.after = 2;</script>'
    out = strip_api_info(html)
    assert b'"/x"' not in out and b"window.after = 2;" in out and b'window.gradio_config = {"a": 1};' in out


def test_wrong_passwords_slow_down_the_address_then_it_may_try_again():
    t = Throttle(free=5, window=300, max_wait=300)
    for i in range(5):
        assert t.wait("1.2.3.4", now=100 + i) == 0
        t.failed("1.2.3.4", now=100 + i)
    assert t.wait("1.2.3.4", now=104.5) == pytest.approx(0.5)  # 1 s after the 5th failure
    t.failed("1.2.3.4", now=106)
    assert t.wait("1.2.3.4", now=106) == 2  # doubling
    assert t.wait("5.6.7.8", now=106) == 0  # other addresses are not affected
    assert t.wait("1.2.3.4", now=106 + 301) == 0  # failures older than the window are forgotten
    for i in range(6):
        t.failed("1.2.3.4", now=500 + i / 10)
    assert t.wait("1.2.3.4", now=501) > 0
    t.succeeded("1.2.3.4")  # the right password clears the address's failures
    assert t.wait("1.2.3.4", now=501) == 0
    t.succeeded("9.9.9.9")  # an address that never failed
    for i in range(6):
        t.failed("1.2.3.4", "alice", now=600 + i)
    assert t.wait("1.2.3.4", "alice", now=606) > 0
    assert t.wait("1.2.3.4", "bob", now=606) == 0  # guesses at alice's password do not lock bob out
    assert t.wait("5.6.7.8", "alice", now=606) == 0 and t.wait("1.2.3.4", now=606) == 0


def test_the_address_comes_from_the_connection_and_the_wait_is_said_in_whole_seconds():
    assert client_addr({"client": ("10.0.0.7", 5123)}) == "10.0.0.7"
    assert client_addr({"type": "http"}) == "unknown" and client_addr({"client": None}) == "unknown"
    assert client_addr(SimpleNamespace(client=("10.0.0.8", 80))) == "10.0.0.8"
    assert client_addr(SimpleNamespace(client=None)) == "unknown"
    assert too_many(0.2) == (429, {"Retry-After": "1"}, "Too many failed logins from your address; try again in 1 s.")
    assert too_many(2.6)[1] == {"Retry-After": "3"} and too_many(2.6)[2].endswith("try again in 3 s.")
    throttle = Throttle()
    assert throttle_of(SimpleNamespace(state=SimpleNamespace(hub_throttle=throttle))) is throttle
    assert throttle_of(SimpleNamespace(state=SimpleNamespace())) is None and throttle_of(None) is None


def test_repeated_wrong_logins_are_refused_even_with_the_right_password(serve):
    client = serve(("tests.fake_demo",), **PUBLIC)
    url = client.src.rstrip("/") + "/login"
    codes = [requests.post(url + "/" * (i % 2), data={"username": "visitor", "password": f"guess{i}"}).status_code
             for i in range(6)]  # /login and /login/ are one door
    assert codes[:5] == [400] * 5 and codes[5] == 429
    right = requests.post(url, data={"username": "visitor", "password": "pw"})
    assert right.status_code == 429 and int(right.headers["Retry-After"]) >= 1
    assert "Too many failed logins" in right.text
    models = client.src.rstrip("/") + "/v1/models"
    status, body, headers = _get(models, headers={"Authorization": "Bearer visitor:pw"})
    assert status == 429 and "Too many failed logins" in body  # one throttle: the page's failures count here
    status, _, _ = _get(models, headers={"Authorization": "Bearer op:secret"})
    assert status == 200  # another user at the same address is not locked out


def test_guessed_credentials_on_models_and_metrics_are_throttled(serve):
    client = serve(("tests.fake_demo",), **PUBLIC)
    for path, user in (("/v1/models", "op"), ("/metrics", "visitor")):
        url = client.src.rstrip("/") + path
        codes = [_get(url, headers={"Authorization": f"Bearer {user}:guess{i}"})[0] for i in range(6)]
        assert codes == [401] * 5 + [429], (path, codes)


def test_the_login_cookie_is_not_sent_by_other_sites_unless_the_hub_is_embedded(serve):
    for embed, same_site in ((False, "samesite=lax"), (True, "samesite=none")):
        client = serve(("tests.fake_demo",), embed=embed, **PUBLIC)
        r = requests.post(client.src.rstrip("/") + "/login", data={"username": "visitor", "password": "pw"})
        cookies = [c.strip().lower() for c in r.raw.headers.getlist("set-cookie")]
        assert r.ok and cookies[0].startswith("access-token-") and same_site in cookies[0], cookies
        assert embed or not any("samesite=none" in c for c in cookies), cookies


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(serve):
    from gradio_client import Client

    client = serve(("tests.fake_demo",), trusted_proxies=("127.0.0.1",), **PUBLIC)
    base = client.src.rstrip("/")
    for via in ({"X-Forwarded-For": "203.0.113.9"}, {}):  # a visitor, or a proxy that names nobody: no operator
        visitor = Client(base + "/", auth=("visitor", "pw"), verbose=False, headers=via)
        assert "gradio" not in visitor.predict(api_name="/model_status")[1], via
        with pytest.raises(Exception, match="Only the hub.s operator"):
            visitor.predict(api_name="/unload_all")

    def login(addr: str, password: str) -> int:
        return requests.post(base + "/login", data={"username": "visitor", "password": password},
                             headers={"X-Forwarded-For": addr}).status_code
    assert [login("198.51.100.1", f"guess{i}") for i in range(6)] == [400] * 5 + [429]
    assert login("198.51.100.2", "pw") == 200  # another visitor behind the same proxy
    upload = base + "/gradio_api/upload"
    page = {"Origin": "https://hub.example.test", "X-Forwarded-For": "198.51.100.3"}
    assert requests.post(upload, headers=page).status_code == 403  # not the name this request came by
    assert requests.post(upload, headers={**page, "X-Forwarded-Host": "hub.example.test"}).status_code == 401


def test_the_upload_cap_counts_every_file_of_a_request(serve):
    client = serve(("tests.fake_demo",), max_upload_mb=2)
    url = client.src.rstrip("/") + "/gradio_api/upload"
    one = requests.post(url, files=[("files", ("a.bin", b"x" * 2**20))], timeout=WAIT_S)
    assert one.status_code == 200
    many = requests.post(url, files=[("files", (f"{i}.bin", b"x" * 2**20)) for i in range(3)], timeout=WAIT_S)
    assert many.status_code == 413 and "2 MB per request (all files together)" in many.text
    chunked = requests.post(url, data=_chunks(3 * 2**20), timeout=WAIT_S,
                            headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert chunked.status_code == 413  # no Content-Length: counted as it streams in


def _chunks(n: int):
    yield b'--b\r\nContent-Disposition: form-data; name="files"; filename="c.bin"\r\n\r\n'
    for _ in range(n // 65536 + 1):
        yield b"x" * 65536


def test_a_cut_off_upload_leaves_no_file_behind(serve):
    client = serve(("tests.fake_demo",), max_upload_mb=50)
    folder = client.blocks.hub_app.uploaded_file_dir
    before = {e for e in os.listdir(folder)}
    host, port = "127.0.0.1", int(client.src.rstrip("/").rsplit(":", 1)[1])
    head = b'--b\r\nContent-Disposition: form-data; name="files"; filename="cut.bin"\r\n\r\n'
    with socket.create_connection((host, port)) as s:
        s.sendall(b"POST /gradio_api/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 20000000\r\n\r\n"
                  + head + b"x" * 3_000_000)
        time.sleep(1.0)  # the server has written part of the file
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        left = {e for e in os.listdir(folder)} - before
        if not left:
            break
        time.sleep(0.2)
    assert not left, left


def test_operators_are_listed_users_or_this_machine_never_a_share_link_visitor():
    from hub.settings import Settings

    s = Settings.load({}).with_flags(host="0.0.0.0")
    s = type(s)(**{**s.__dict__, "operators": ("op",), "auth": (("op", "x"), ("v", "y"))})
    def req(user, host):
        return SimpleNamespace(username=user, client=SimpleNamespace(host=host))
    assert is_operator(s, req("op", "203.0.113.9"))
    assert not is_operator(s, req("v", "203.0.113.9"))
    assert is_operator(s, req("v", "127.0.0.1"))  # the CLI and the operator's browser on this machine
    shared = type(s)(**{**s.__dict__, "share": True})
    assert not is_operator(shared, req("v", "127.0.0.1"))  # share-link visitors arrive through a local tunnel
    assert is_operator(shared, req("op", "127.0.0.1"))

    def browser(host_header, **headers):
        return SimpleNamespace(username=None, client=SimpleNamespace(host="127.0.0.1"),
                               headers={"host": host_header, **headers})
    for name in ("127.0.0.1:7860", "localhost:7860", "[::1]:7860", "localhost"):
        assert is_operator(s, browser(name)), name
    assert not is_operator(s, browser("rebind.attacker.example:7860"))  # a page that points its name at 127.0.0.1
    for header in ("x-forwarded-for", "forwarded", "x-real-ip"):  # a proxy on this machine forwards other people
        assert not is_operator(s, browser("127.0.0.1:7860", **{header: "203.0.113.9"})), header


def _lan_ip() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            ip = s.getsockname()[0]
    except OSError:
        return None
    return None if ip.startswith("127.") else ip


def test_a_visitor_from_another_machine_cannot_unload_models(serve):
    from gradio_client import Client

    ip = _lan_ip()
    if ip is None:
        pytest.skip("this machine has no non-loopback address to visit the hub from")
    client = serve(("tests.fake_demo",), **PUBLIC)
    url = client.src.replace("127.0.0.1", ip)
    visitor = Client(url, auth=("visitor", "pw"), verbose=False)
    visitor.predict("echo-small", "hi", 1, api_name="/echo")
    with pytest.raises(Exception, match="Only the hub's operator can unload models"):
        visitor.predict("fake_echo", api_name="/unload_model")
    with pytest.raises(Exception, match="Only the hub's operator"):
        visitor.predict(api_name="/unload_all")
    assert client.blocks.hub_manager.is_loaded("fake_echo")
    _table, system = visitor.predict(api_name="/model_status")
    assert "gradio" not in system and str(client.blocks.hub_settings.cache_dir) not in system
    operator = Client(url, auth=("op", "secret"), verbose=False)
    message, _rows, system = operator.predict("fake_echo", api_name="/unload_model")
    assert message == "Unloaded 1 model(s) of fake_echo." and "gradio" in system


def test_the_sweep_removes_only_stale_top_level_partial_uploads(tmp_path):
    from hub.guard import sweep_partial_uploads

    def made(name: str, age_s: float, folder=tmp_path):
        path = folder / name
        path.write_bytes(b"x")
        os.utime(path, (time.time() - age_s, time.time() - age_s))
        return path

    stale, fresh = made("tmpab12cd", 600), made("tmpfresh", 0)
    kept_name, outside = made("photo.png", 600), made("tmpkeep", 600, tmp_path.parent)
    link = tmp_path / "tmplink"
    link.symlink_to(outside)
    os.utime(link, (time.time() - 600, time.time() - 600), follow_symlinks=False)
    (tmp_path / "tmpfolder").mkdir()
    assert sweep_partial_uploads(tmp_path, stale_s=300) == 1
    assert not stale.exists() and fresh.exists() and kept_name.exists() and outside.exists() and link.is_symlink()
    assert (tmp_path / "tmpfolder").is_dir()
    assert sweep_partial_uploads(tmp_path, stale_s=300) == 0
    assert sweep_partial_uploads(None) == 0 and sweep_partial_uploads(tmp_path / "missing") == 0
