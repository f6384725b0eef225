"""A visitor's crawl of a public hub (issue #21, point 6): every page route, every API's example and bad variant,
the Models tab; no answer may show a server path (the project, the model cache, the Python install) or a library
version. The visitor comes from this machine's network address, not loopback (loopback is the operator)."""

from __future__ import annotations

import importlib.metadata
import json
import socket
import sys
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from hub.registry import DEMOS
from tests import WAIT_S
from tests.conftest import free_port
from tests.test_contract import EXAMPLES

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["/", "/config", "/gradio_api/info", "/v1/models", "/metrics", "/manifest.json", "/openapi.json",
         "/gradio_api/openapi.json", "/docs", "/gradio_api/runs"]


def _lan_ip() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # picks the outgoing interface; sends nothing
            ip = s.getsockname()[0]
    except OSError:
        return None
    return None if ip.startswith("127.") else ip


@pytest.fixture(scope="module")
def visitor(tmp_path_factory):
    from gradio_client import Client

    from hub.app import create_app, launch
    from hub.settings import Settings

    ip = _lan_ip()
    if ip is None:
        pytest.skip("this machine has no non-loopback address to visit the hub from")
    tmp = tmp_path_factory.mktemp("crawl")
    s = replace(Settings.load({}), host="0.0.0.0", port=free_port(), device="cpu", offline=True,
                cache_dir=tmp / "cache", models={d: "tiny-random" for d in DEMOS})
    blocks = create_app(s)
    launch(blocks, s, prevent_thread_lock=True, quiet=True)
    url = f"http://{ip}:{s.port}/"
    yield Client(url, verbose=False, download_files=False), url, tmp
    blocks.close()


def _secrets(tmp: Path) -> list[str]:
    site = Path(importlib.metadata.distribution("gradio").locate_file("")).resolve()
    return [str(ROOT), str(tmp), str(site), sys.prefix, f"gradio {importlib.metadata.version('gradio')}",
            f"torch {importlib.metadata.version('torch')}"]


def _get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=WAIT_S) as r:
            return r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.read().decode(errors="replace")


def test_nothing_a_visitor_can_reach_shows_a_server_path_or_a_version(visitor):
    from hub.samples import fill, make_samples

    client, url, tmp = visitor
    seen: list[tuple[str, str]] = [(p, _get(url.rstrip("/") + p)) for p in PAGES]
    from gradio_client import handle_file

    paths = make_samples(tmp / "media")
    for name, ex in EXAMPLES:
        api = f"/{ex.api_name}"
        seen.append((api, json.dumps(client.predict(*fill(ex.values(), paths, handle_file), api_name=api),
                                     default=str)))
        try:
            client.predict(*fill(ex.values(**ex.bad), paths, handle_file), api_name=api)
        except Exception as e:  # the refusal's sentence is what the visitor reads
            seen.append((f"{api} (bad)", str(e)))
    seen.append(("/model_status", json.dumps(client.predict(api_name="/model_status"), default=str)))
    for what in ("/unload_all",):
        with pytest.raises(Exception) as e:
            client.predict(api_name=what)
        seen.append((what, str(e.value)))
    leaks = [(where, secret) for where, text in seen for secret in _secrets(tmp) if secret in text]
    assert not leaks, leaks
    assert len(seen) >= len(PAGES) + len(EXAMPLES) + 2
