"""Deployability: Space front matter, requirements vs pyproject, app.py import, share link, ZeroGPU wrapper."""

import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path

import yaml

from tests import WAIT_S

ROOT = Path(__file__).resolve().parents[1]


def front_matter() -> dict:
    text = (ROOT / "README.md").read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_space_front_matter_has_the_required_keys_and_matches_pinned_gradio():
    fm = front_matter()
    for key in ("title", "emoji", "sdk", "sdk_version", "app_file", "python_version", "suggested_hardware", "license"):
        assert fm.get(key), f"front matter misses {key}"
    assert fm["sdk"] == "gradio" and fm["app_file"] == "app.py" and (ROOT / fm["app_file"]).exists()
    import gradio

    assert fm["sdk_version"] == gradio.__version__


def test_readme_opens_with_exactly_two_commands():
    body = (ROOT / "README.md").read_text().split("---\n", 2)[2].lstrip()
    block = body.split("```")[1]
    commands = [line for line in block.splitlines()[1:] if line.strip()]
    assert len(commands) == 2 and "run.sh serve" in commands[0] and "run.sh test" in commands[1]
    assert "run.sh test" in (ROOT / ".ci" / "run").read_text()


def test_requirements_txt_agrees_with_pyproject():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    reqs = [l.strip() for l in (ROOT / "requirements.txt").read_text().splitlines() if l.strip() and not l.startswith("#")]
    assert sorted(reqs) == sorted(deps)
    assert "ffmpeg" in (ROOT / "packages.txt").read_text().split()


def test_app_py_imports_without_server_torch_or_weights(tmp_path):
    code = ("import sys, app; import gradio; assert isinstance(app.demo, gradio.Blocks); "
            "assert 'torch' not in sys.modules; assert 'ray' not in sys.modules; "
            "assert app.demo.hub_manager.status() == []; "
            "assert not getattr(app.demo, 'is_running', False); print('ok')")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=WAIT_S,
                       env={"PATH": "/usr/bin:/bin", "GRADIO_ANALYTICS_ENABLED": "False", "HOME": str(tmp_path),
                            "DEMOHUB_CACHE_DIR": str(tmp_path / "cache")})
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_share_with_auth_but_no_network_keeps_serving_locally(settings, caplog):
    from dataclasses import replace

    from hub.app import create_app, launch

    s = replace(settings, share=True, auth=(("alice", "pw"), ("bob", "pw2")))
    blocks = create_app(s, ("tests.fake_demo",))
    try:
        _, local_url, share_url = launch(blocks, s, prevent_thread_lock=True, quiet=True)
        if share_url is None:  # no network here: the link fails, the local server does not
            assert "Could not create the public share link" in caplog.text
        with urllib.request.urlopen(local_url, timeout=10) as r:
            assert r.status == 200
        from gradio_client import Client

        assert Client(local_url, auth=("bob", "pw2"), verbose=False).predict("echo-small", "a", 2, api_name="/echo")[0] == "a a"
    finally:
        blocks.close()


def test_zero_gpu_wrapper_is_a_no_op_off_spaces_and_wraps_on_zero_gpu(monkeypatch):
    import types

    from hub import zerogpu

    fn = lambda: 1  # noqa: E731
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert zerogpu.gpu(fn, 30) is fn
    seen = {}
    fake = types.ModuleType("spaces")
    fake.GPU = lambda duration: (lambda f: seen.setdefault("wrapped", (duration, f)) and f)
    monkeypatch.setitem(sys.modules, "spaces", fake)
    monkeypatch.setattr(zerogpu.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert zerogpu.gpu(fn, 30) is fn and seen["wrapped"] == (30, fn)
