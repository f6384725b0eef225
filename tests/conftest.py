"""Shared fixtures: offline settings with a temporary cache, and a live loopback hub for gradio_client tests."""

from __future__ import annotations

import os
import socket
import tempfile
from dataclasses import replace

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")
# gradio's upload and example files of this run only: two runs at once (a developer's and CI's) must not delete
# each other's files when one of them exits
os.environ.setdefault("GRADIO_TEMP_DIR", tempfile.mkdtemp(prefix="demohub-gradio-"))

from tests import hermetic  # noqa: E402

hermetic.install()

from hub.settings import Settings  # noqa: E402


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    hermetic.CURRENT["test"] = item.nodeid  # named when a test reaches for the network


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Offline, CPU, a fresh cache folder; no DEMOHUB_* from the outer environment."""
    return Settings.load({}, cache_dir=str(tmp_path / "cache"), offline=True, device="cpu", port=free_port())


@pytest.fixture
def serve(tmp_path):
    """serve(demos, models={demo: model_id}, **settings) -> gradio_client.Client on a loopback server."""
    from gradio_client import Client

    from hub.app import create_app, launch

    apps = []

    def _serve(demos: tuple[str, ...], models: dict | None = None, **kw):
        s = Settings.load({}, cache_dir=str(tmp_path / "cache"), offline=True, device="cpu", port=free_port())
        s = replace(s, models=dict(models or {}), **kw)
        blocks = create_app(s, demos)
        launch(blocks, s, prevent_thread_lock=True, quiet=True)
        apps.append(blocks)
        client = Client(f"http://127.0.0.1:{s.port}/", verbose=False, auth=s.auth[0] if s.auth else None)
        client.blocks = blocks
        return client

    yield _serve
    for b in apps:
        b.close()


@pytest.fixture(scope="module")
def tiny_hub(tmp_path_factory):
    """Every registered demo with its tiny random model, on CPU, on a loopback port, for a whole test module.

    Yields a gradio_client.Client with `.blocks` (the app: `.blocks.hub_manager`) and `.tmp` (a scratch folder).
    """
    from gradio_client import Client

    from bench.load_test import serve_tiny

    blocks, url = serve_tiny(free_port())
    client = Client(url, verbose=False)
    client.blocks, client.tmp = blocks, tmp_path_factory.mktemp("tiny-hub")
    yield client
    blocks.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """For browser tests: all six demos on one loopback server, every tab on its hidden tiny-random model (as `serve`
    does), one per test module."""
    from hub.app import create_app, launch
    from hub.registry import DEMOS

    s = Settings.load({}, cache_dir=str(tmp_path_factory.mktemp("cache")), offline=True, device="cpu",
                      port=free_port())
    s = replace(s, models={d: "tiny-random" for d in DEMOS})
    blocks = create_app(s, DEMOS)
    launch(blocks, s, prevent_thread_lock=True, quiet=True)
    blocks.url = f"http://127.0.0.1:{s.port}/"
    yield blocks
    blocks.close()


@pytest.fixture
def page(app, request):
    from tests.browser import browser_page, shot

    failed = request.session.testsfailed
    with browser_page(app.url) as p:
        yield p
        if request.session.testsfailed > failed:  # what the page showed when the test failed
            shot(p, f"failed-{request.node.name}")


