"""Shared fixtures: offline settings with a temporary cache, and a live loopback hub for gradio_client tests."""

from __future__ import annotations

import os
import socket
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")
# gradio's upload and example files of this run only: two runs at once (a developer's and CI's) must not delete
# each other's files when one of them exits; nor two xdist workers of one run (their files have the same hashed
# names, and one worker's app deletes its files when it closes), so each worker gets a folder of its own
os.environ.setdefault("GRADIO_TEMP_DIR", tempfile.mkdtemp(prefix="demohub-gradio-"))
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1" under `-n 2`; "" in a serial run
if WORKER:
    os.environ["GRADIO_TEMP_DIR"] = os.path.join(os.environ["GRADIO_TEMP_DIR"], WORKER)
    os.makedirs(os.environ["GRADIO_TEMP_DIR"], exist_ok=True)

from tests import hermetic  # noqa: E402

hermetic.install()

from hub.settings import Settings  # noqa: E402
from tests import WAIT_S  # noqa: E402


def _clients_wait_as_long_as_the_tests() -> None:
    """Every gradio_client.Client of the tests waits WAIT_S for an answer. Its own waits are httpx's default of 5 s
    for the API's description and each /queue/join (20 s for a heartbeat): on a busy machine a hub took longer to
    describe its API, and a test failed on a ReadTimeout in `Client(...)` although nothing was wrong."""
    import functools

    from gradio_client import Client

    real = Client.__init__
    if getattr(real, "waits", False):
        return

    @functools.wraps(real)
    def init(self, *args, httpx_kwargs: dict | None = None, **kwargs):
        real(self, *args, httpx_kwargs={"timeout": WAIT_S, **(httpx_kwargs or {})}, **kwargs)

    init.waits = True
    Client.__init__ = init


_clients_wait_as_long_as_the_tests()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    hermetic.CURRENT["test"] = item.nodeid  # named when a test reaches for the network


# `bash run.sh test` splits the suite over two pytest-xdist workers (`-n 2 --dist loadgroup`; DEMOHUB_TEST_WORKERS=1:
# serial). A test file runs whole on one worker, so its module-scoped hubs and engines are built once. The files
# below share one group, so they run one after another on one worker and never beside each other: they drive
# Chromium, start Ray or a 50-session load, or assert that cancel/stop/keep-alive/a client going away acts in time.
SERIAL = "serial"
SERIAL_MARKERS = ("browser", "load")
SERIAL_FILES = {
    "test_faults.py", "test_load.py", "test_ray_backend.py", "test_llm_chat_stop.py",
    "test_stable_diffusion_openai.py", "test_service.py", "test_public_entry.py", "test_edit_object.py",
}


def group_of(nodeid: str) -> str:
    """The worker group of a test: SERIAL for the files above and the browser files, else its own file."""
    path = nodeid.split("::", 1)[0]
    name = path.rsplit("/", 1)[-1]
    return SERIAL if name in SERIAL_FILES or name.startswith("test_browser_") else path


def pytest_xdist_make_scheduler(config, log):
    """The groups, kept by the scheduler itself. xdist's own `loadgroup` reads `xdist_group` marks into
    `item._nodeid`, which pytest 9.2 no longer reads: the groups silently fell apart (a file's tests went to both
    workers, its module fixtures were built twice, and the serial files ran beside each other)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FileGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

    return FileGroups(config, log)


def pytest_collection_modifyitems(config, items):
    """A test marked browser or load must be in the serial group (its file named test_browser_* or listed)."""
    stray = sorted({item.path.name for item in items
                    if any(item.get_closest_marker(m) for m in SERIAL_MARKERS) and group_of(item.nodeid) != SERIAL})
    if stray:
        raise pytest.UsageError(f"{', '.join(stray)}: browser and load tests run in the serial group; name the file "
                                "test_browser_*.py or add it to SERIAL_FILES in tests/conftest.py.")


def _conversions_root(config) -> Path:
    """This run's shared folder for converted models: under pytest's basetemp, the one the xdist workers share."""
    base = Path(config._tmp_path_factory.getbasetemp())
    return (base.parent if WORKER else base) / "shared-conversions"


@pytest.fixture(scope="session", autouse=True)
def _conversions_once_per_run(request):
    """Each YOLO OpenVINO conversion, and random chat CTranslate2 conversion and GenAI export, is made once per run
    (tests/conversion_cache.py); DEMOHUB_TEST_SHARE_CONVERSIONS=0 makes every cache folder convert its own, as the
    product does."""
    from tests import conversion_cache

    if os.environ.get("DEMOHUB_TEST_SHARE_CONVERSIONS", "1") != "0":
        conversion_cache.install(_conversions_root(request.config))


def pytest_terminal_summary(terminalreporter, config):
    if WORKER:
        return
    from tests import conversion_cache

    line = conversion_cache.summary(_conversions_root(config))
    if line:
        terminalreporter.write_line(f"converted models shared by this run: {line}")


def free_port() -> int:
    """A free loopback port. Under xdist each worker takes only ports of its own residue (port % workers), so two
    workers never pick the same port between one's pick and its server's bind. (Linux hands out even ports for
    bind(0), so a worker's port is the one the kernel offered moved up to its residue, and checked.)"""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    mine = int(WORKER[2:]) % workers if WORKER.startswith("gw") and WORKER[2:].isdigit() else 0
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        port += (mine - port) % workers
        if workers == 1 or port < 65536 and _bindable(port):
            return port


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


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

    blocks, url = serve_tiny(free_port(), cache_dir=tmp_path_factory.mktemp("tiny-hub-cache"))
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


