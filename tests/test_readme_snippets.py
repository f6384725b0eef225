"""The README's "Use it from code" snippet runs as written against a hub (model ids swapped for tiny ones)."""

import re
import wave
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
MODEL_IDS = ["stabilityai/sd-turbo", "stable-diffusion-v1-5/stable-diffusion-v1-5", "Systran/faster-whisper-base", "yolo11n", "laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
             "vit_b", "facebook/sam2.1-hiera-tiny", "HuggingFaceTB/SmolLM2-360M-Instruct"]


def snippet() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Use it from code", 1)[1]
    return re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)


def test_readme_calls_every_api_name_the_registry_declares():
    from hub.registry import load_demos

    code = snippet()
    for h in load_demos():
        for api in h.spec.api_names:
            assert f'api_name="/{api}"' in code, f"README misses /{api}"


def test_readme_snippet_runs_against_the_hub(tiny_hub, tmp_path, monkeypatch):
    code = snippet()
    for model in MODEL_IDS:
        assert f'"{model}"' in code
        code = code.replace(f'"{model}"', '"tiny-random"')
    code = code.replace('"http://127.0.0.1:7860/"', repr(tiny_hub.src)).replace("hub.view_api()", "")
    code = code.replace("512, 512", "64, 64")  # tiny model: small images keep the test fast
    rng = np.random.default_rng(0)
    for name in ("photo.png", "street.jpg", "cat.jpg", "a.jpg", "b.jpg", "dog.jpg"):
        Image.fromarray(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)).save(tmp_path / name)
    mask = Image.new("L", (640, 480), 0)
    mask.paste(255, (30, 30, 60, 60))
    mask.save(tmp_path / "mask.png")
    with wave.open(str(tmp_path / "talk.mp3"), "wb") as w:  # a WAV under another name: decoders sniff content
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes((np.sin(np.arange(32000) / 10) * 8000).astype(np.int16).tobytes())
    import av

    with av.open(str(tmp_path / "clip.mp4"), "w") as out:
        s = out.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = 96, 64, "yuv420p"
        for _ in range(5):
            for p in s.encode(av.VideoFrame.from_ndarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8), format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - the README's own example
    assert scope["record"]["model"] == "tiny-random"
    assert Path(scope["mask_png"]).exists() and scope["seed"] == 42 and isinstance(scope["text"], str)


def test_readme_curl_for_the_openai_endpoint_works(tiny_hub):
    import json
    import subprocess

    section = (ROOT / "README.md").read_text().split("OpenAI-compatible endpoint on the same server", 1)[1]
    cmd = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    cmd = cmd.replace("http://127.0.0.1:7860/", tiny_hub.src).replace("HuggingFaceTB/SmolLM2-360M-Instruct", "tiny-random")
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=300, check=True).stdout
    reply = json.loads(out)
    assert reply["object"] == "chat.completion" and reply["choices"][0]["message"]["content"]
