"""Every curl and SDK snippet of the README's "OpenAI-compatible API" section runs as written against a hub with
tiny random models (model ids swapped for the tiny ones, sample files generated)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def blocks() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## OpenAI-compatible API", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(bash|python)\n(.*?)```", section, flags=re.S)


def test_the_section_has_a_curl_and_an_sdk_snippet_for_every_route():
    code = "\n".join(c for _, c in blocks())
    for route in ("chat/completions", "models", "audio/transcriptions", "images/generations", "images/edits",
                  "embeddings", "metrics"):
        assert route in code or route.replace("/", ".") in code, f"README shows no call of /{route}"
    assert {"bash", "python"} <= {lang for lang, _ in blocks()}


def _swap_models(code: str) -> str:
    from hub.registry import load_demos

    ids = sorted({m.id for h in load_demos() for m in h.spec.models if m.source != "random"}, key=len, reverse=True)
    for model_id in ids:
        code = code.replace(f'"{model_id}"', '"tiny-random"').replace(f"model={model_id}", "model=tiny-random")
    return code


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from hub.samples import make_samples

    folder = tmp_path_factory.mktemp("readme-api")
    paths = make_samples(folder)
    Path(paths["audio"]).rename(folder / "speech.wav")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(folder / "photo.png")
    mask = np.zeros((64, 64, 4), dtype=np.uint8)
    mask[..., 3] = 255
    mask[16:48, 16:48, 3] = 0  # transparent = repaint, as OpenAI's edits define
    Image.fromarray(mask, "RGBA").save(folder / "mask.png")
    return folder


@pytest.mark.parametrize("index", range(len(blocks())))
def test_readme_api_snippet_runs(tiny_hub, files, index):
    lang, code = blocks()[index]
    code = _swap_models(code).replace("http://127.0.0.1:7860/", tiny_hub.src)
    cmd = ["bash", "-e", "-o", "pipefail", "-c", code] if lang == "bash" else [sys.executable, "-c", code]
    out = subprocess.run(cmd, cwd=files, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"{lang} snippet {index} failed:\n{code}\n--- stdout\n{out.stdout}\n--- stderr\n{out.stderr}"
