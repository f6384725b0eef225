"""The `demohub` command: list, fetch offline, bad arguments."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def demohub(*args, env=None, tmp_path=None):
    base = {"PATH": "/usr/bin:/bin", "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    if tmp_path is not None:
        base["HOME"] = str(tmp_path)
        base["DEMOHUB_CACHE_DIR"] = str(tmp_path / "cache")
    return subprocess.run([sys.executable, "-m", "hub.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**base, **(env or {})})


def test_list_shows_every_demo_and_model_with_cache_state(tmp_path):
    r = demohub("list", tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    from hub.registry import load_demos

    for h in load_demos():
        assert h.name in r.stdout
        if h.demo:
            for m in h.spec.models:
                if m.source != "random":
                    assert m.id in r.stdout
    assert "not cached" in r.stdout


def test_fetch_without_network_fails_with_a_sentence_per_model(tmp_path):
    r = demohub("fetch", "llm_chat", "--model", "HuggingFaceTB/SmolLM2-360M-Instruct", tmp_path=tmp_path,
                env={"HF_HUB_OFFLINE": "0", "HF_HUB_ETAG_TIMEOUT": "2", "HF_HUB_DOWNLOAD_TIMEOUT": "2"})
    assert r.returncode == 1
    assert "SmolLM2-360M-Instruct" in r.stderr and "Traceback" not in r.stderr


def test_unknown_demo_and_unknown_command():
    r = demohub("fetch", "nope")
    assert r.returncode == 2 and "unknown demo 'nope'" in r.stderr
    assert demohub("frobnicate").returncode == 2
