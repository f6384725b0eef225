"""The app shell: tabs from the registry, the Models tab, the API through gradio_client, safe launch."""

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from gradio_client import Client

from tests import WAIT_S, fake_demo
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]


def test_fake_demo_answers_through_gradio_client_and_loads_lazily(serve):
    fake_demo.LOADS.clear()
    client = serve(("tests.fake_demo", "tests.broken_demo"))
    manager = client.blocks.hub_manager
    assert manager.status() == [] and fake_demo.LOADS == []  # nothing loaded at start
    text, record = client.predict("echo-small", "hi", 3, api_name="/echo")
    assert text == "hi hi hi" and record["model"] == "echo-small" and record["device"] == "cpu"
    assert fake_demo.LOADS == ["echo-small"]
    rows = client.predict(api_name="/model_status")[0]["data"]
    assert rows[0][:3] == ["fake_echo", "echo-small", "CPU"]
    message, table, _system = client.predict("fake_echo", api_name="/unload_model")
    assert "Unloaded 1" in message and table["data"] == []


def test_user_errors_reach_the_client_as_sentences_and_the_server_keeps_serving(serve):
    client = serve(("tests.fake_demo",))
    with pytest.raises(Exception, match="Type some text to echo"):
        client.predict("echo-small", "   ", 3, api_name="/echo")
    with pytest.raises(Exception, match="from 1 to 10"):
        client.predict("echo-small", "x", 99, api_name="/echo")
    with pytest.raises(Exception, match="'not-a-model' is not one of this hub's.*echo-small"):  # a sentence, not a crash
        client.predict("not-a-model", "x", 1, api_name="/echo")
    assert client.predict("echo-large", "ok", 1, api_name="/echo")[0] == "ok"


def test_a_demo_that_fails_to_import_gets_an_explaining_tab(settings):
    from hub.app import create_app

    blocks = create_app(settings, ("tests.broken_demo", "tests.fake_demo"))
    broken, ok = blocks.hub_demos
    assert broken.demo is None and "not_a_real_library_for_demohub" in broken.error
    assert ok.demo is not None
    config = str(blocks.get_config_file())
    assert "failed to import" in config and "not_a_real_library_for_demohub" in config


def test_random_weights_show_a_banner(settings):
    from dataclasses import replace

    from hub.app import create_app

    config = str(create_app(replace(settings, weights="hf"), ("tests.fake_demo",)).get_config_file())
    assert "Random weights" in config  # the fake demo's models are random


def test_unknown_demo_name_fails_with_the_list(settings):
    from hub.app import create_app
    from hub.errors import SettingsError

    with pytest.raises(SettingsError, match="unknown demo 'nope'.*whisper_asr"):
        create_app(settings, ("nope",))


def test_share_without_auth_refuses_to_start():
    r = subprocess.run([sys.executable, "-m", "hub.cli", "serve", "--share", "--weights", "random"], cwd=ROOT,
                       capture_output=True, text=True, timeout=WAIT_S)
    assert r.returncode == 2 and "--auth" in r.stderr and "--insecure-share" in r.stderr


@pytest.mark.parametrize("env", [{"DEMOHUB_SHARE": "1"}, {"DEMOHUB_SHARE": "1", "DEMOHUB_AUTH": ""}])
def test_python_app_py_refuses_a_share_link_without_login(env):
    """The entry point a Space and `python app.py` use: the guard must hold there, not only in `demohub serve`.
    Without it gradio would start serving (and try to open a public link): the run would not end."""
    env = {**env, "PATH": os.environ["PATH"], "DEMOHUB_WEIGHTS": "random", "DEMOHUB_PORT": str(free_port()),
           "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    try:
        r = subprocess.run([sys.executable, "app.py"], cwd=ROOT, capture_output=True, text=True, timeout=WAIT_S, env=env)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"app.py started serving a share link without login: {e.stdout!r}") from None
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().startswith("demohub: --share makes the hub public: give --auth USER:PASSWORD")
    assert "Running on" not in r.stdout


def test_invalid_setting_fails_at_start_with_a_sentence():
    r = subprocess.run([sys.executable, "-m", "hub.cli", "serve"], cwd=ROOT, capture_output=True, text=True,
                       timeout=WAIT_S, env={"DEMOHUB_DEVICE": "gpu", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 2 and "DEMOHUB_DEVICE='gpu'" in r.stderr and "cuda" in r.stderr


def test_serve_starts_without_torch_and_answers_http(tmp_path):
    """`demohub serve` with every demo: first HTTP 200, and no torch imported in the server process."""
    port = free_port()
    code = ("import sys, threading, os; from hub.cli import main; "
            "threading.Timer(0.1, lambda: None).start(); "
            "import hub.app as a; orig = a.launch\n"
            "def launch(b, s, **kw):\n"
            "    orig(b, s, prevent_thread_lock=True, quiet=True)\n"
            "    print('TORCH', 'torch' in sys.modules, flush=True); b.block_thread()\n"
            "a.launch = launch; sys.exit(main(['serve', '--port', '%d', '--weights', 'random', '--cache-dir', %r]))"
            % (port, str(tmp_path)))
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={"PATH": "/usr/bin:/bin", "GRADIO_ANALYTICS_ENABLED": "False", "HOME": str(tmp_path)})
    try:
        deadline = time.time() + WAIT_S
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=WAIT_S) as r:
                    assert r.status == 200
                    break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail(f"the hub did not answer within {WAIT_S} s")
        tabs = Client(f"http://127.0.0.1:{port}/", verbose=False).view_api(print_info=False, return_format="dict")
        assert "/unload_model" in tabs["named_endpoints"]
    finally:
        proc.terminate()
        out = proc.communicate(timeout=WAIT_S)[0]
    assert "TORCH False" in out, out[-2000:]


def test_unexpected_errors_are_logged_with_traceback_and_reported_as_bugs(settings, caplog):
    import gradio as gr

    from hub.context import DemoContext
    from hub.models import ModelManager

    ctx = DemoContext(ModelManager(settings, {}), settings, fake_demo.SPEC)

    @ctx.handler
    def broken():
        return {}["missing"]

    import asyncio

    with pytest.raises(gr.Error, match="failed unexpectedly.*bug") as e:
        asyncio.run(broken())  # handlers run in a worker gradio's Cancel does not wait for: gradio awaits them
    assert "KeyError" not in str(e.value), "no Python class names in what the user reads"
    assert "Unexpected error in the Echo (test demo) tab" in caplog.text and "Traceback" in caplog.text
    assert e.value.print_exception is False

    @ctx.handler
    def streaming():
        yield 1
        raise UserError_("Pick a file first.")

    from hub.errors import UserError as UserError_

    async def read(gen):
        assert await gen.__anext__() == 1
        await gen.__anext__()

    with pytest.raises(gr.Error) as e2:
        asyncio.run(read(streaming()))
    assert e2.value.message == "Pick a file first."


def test_unreadable_uploads_and_wrong_types_become_sentences_naming_the_input(tmp_path):
    """Gradio decodes inputs before any demo code runs; HubBlocks turns those failures into gr.Error sentences."""
    import gradio as gr

    from hub.app import launch
    from hub.blocks import HubBlocks
    from hub.settings import Settings

    with HubBlocks() as blocks:
        photo = gr.Image(type="pil", label="Photo")
        count = gr.Number(label="Count")
        out = gr.Textbox()
        gr.Button().click(lambda im, n: f"{im.size} {n}", [photo, count], out, api_name="size")
    blocks.hub_demos = []
    s = Settings.load({}, port=free_port())
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    from PIL import Image

    good = tmp_path / "good.png"
    Image.new("RGB", (3, 2)).save(good)
    try:
        launch(blocks, s, prevent_thread_lock=True, quiet=True)
        from gradio_client import handle_file

        client = Client(f"http://127.0.0.1:{s.port}/", verbose=False)
        with pytest.raises(Exception, match=r"Could not read the Photo input .*notes\.png.*Upload a PNG"):
            client.predict(handle_file(str(bad)), 1, api_name="/size")
        assert client.predict(handle_file(str(good)), 2, api_name="/size") == "(3, 2) 2"
    finally:
        blocks.close()


def test_numbers_out_of_range_through_the_api_get_the_one_validator_sentence():
    import gradio as gr

    from hub.blocks import check_sliders

    steps = gr.Slider(1, 50, step=1, label="Steps")
    seed = gr.Number(label="Seed (-1 = random)", minimum=-1, maximum=2**32 - 1, precision=0)
    scale = gr.Slider(0, 2, step=0.05, label="Temperature")
    check_sliders([steps, gr.Textbox(), seed, scale], [10, "x", -1, 0.35])
    check_sliders([steps, seed, scale], [50, 2**32 - 1, 2])  # the bounds themselves are valid
    cases = ((steps, 0, "Steps is 0, which is out of range; use a whole number from 1 to 50."),
             (steps, 51, "Steps is 51, which is out of range; use a whole number from 1 to 50."),
             (steps, 2.5, "Steps must be a whole number, not 2.5; use a whole number from 1 to 50."),
             (steps, float("nan"), "Steps must be a real number, not nan; use a whole number from 1 to 50."),
             (steps, "ten", "Steps must be a number, not 'ten'; use a whole number from 1 to 50."),
             (seed, 99999999999, "Seed is 99999999999, which is out of range; use a whole number from -1 to 4294967295."),
             (seed, -2, "Seed is -2, which is out of range; use a whole number from -1 to 4294967295."),
             (scale, 2.05, "Temperature is 2.05, which is out of range; use a number from 0 to 2."))
    for block, bad, said in cases:
        with pytest.raises(gr.Error) as e:
            check_sliders([block], [bad])
        assert e.value.message == said


def test_a_busy_machine_does_not_stop_the_hub_from_starting(serve, monkeypatch):
    """gradio's own check of the new server gives up at its first 3 s timeout; on a loaded machine (CI with every
    core busy) that refused to start the hub. Here the server's first two answers time out, as they did there."""
    import httpx

    real_head, timeouts = httpx.head, []

    def slow_head(url, **kw):
        if len(timeouts) < 2:
            timeouts.append(url)
            raise httpx.ReadTimeout("the machine is busy")
        return real_head(url, **kw)

    monkeypatch.setattr(httpx, "head", slow_head)
    client = serve(("tests.fake_demo",))
    assert len(timeouts) == 2  # gradio's check did meet the timeouts, and the start went on
    monkeypatch.undo()
    assert client.predict("echo-small", "up", 2, api_name="/echo")[0] == "up up"
