"""Pictures in /v1/chat/completions through the official `openai` SDK: a random SmolVLM answers image_url parts
(streamed and not); a bad image, too many images, an http(s) URL, a local path and a text-only chat model each get
one sentence (the URL's says how the operator allows downloads: tests/test_vision_fetch.py); text-only requests
still reach the chat model; the image is never written to disk."""

from __future__ import annotations

import base64
import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from tests.test_contract import is_sentence


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    from dataclasses import replace

    from openai import OpenAI

    from hub.app import create_app, launch
    from hub.settings import Settings
    from tests.conftest import free_port

    tmp = tmp_path_factory.mktemp("vision-openai")
    s = Settings.load({}, cache_dir=str(tmp / "cache"), offline=True, device="cpu", port=free_port())
    s = replace(s, models={"llm_chat": "tiny-random", "vision": "tiny-random"})
    blocks = create_app(s, ("llm_chat", "vision"))
    launch(blocks, s, prevent_thread_lock=True, quiet=True)
    yield OpenAI(base_url=f"http://127.0.0.1:{s.port}/v1", api_key="unused", max_retries=0), tmp
    blocks.close()


def png(seed=0, size=(150, 110)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(
        buf, "PNG")
    return buf.getvalue()


def ask(*urls, text="What is in the picture?"):
    parts = [{"type": "image_url", "image_url": {"url": u}} for u in urls]
    return [{"role": "user", "content": [{"type": "text", "text": text}, *parts]}]


def data_url(data: bytes, kind="png") -> str:
    return f"data:image/{kind};base64," + base64.b64encode(data).decode()


def test_the_openai_sdk_gets_an_answer_about_a_picture_streamed_and_not(hub):
    client, _ = hub
    msgs = ask(data_url(png()))
    whole = client.chat.completions.create(model="default", messages=msgs, max_tokens=6, seed=1)
    assert whole.choices[0].message.content and whole.choices[0].finish_reason == "length"
    assert whole.usage.completion_tokens == 6 and whole.usage.prompt_tokens > 20  # image tokens counted
    assert whole.model == "tiny-random"
    chunks = list(client.chat.completions.create(model="tiny-random", messages=msgs, max_tokens=6, seed=1,
                                                 stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content, "greedy: the stream and the whole answer agree"
    assert chunks[-1].usage.completion_tokens == 6
    # the next turn of the same conversation reuses the picture's features
    follow = msgs + [{"role": "assistant", "content": text}, {"role": "user", "content": "And the colours?"}]
    again = client.chat.completions.create(model="default", messages=follow, max_tokens=3)
    assert again.choices[0].message.content and again.model_extra["demohub"]["images_cached"] == 1


def test_text_only_requests_still_reach_the_chat_model(hub):
    client, _ = hub
    out = client.chat.completions.create(model="tiny-random", messages=[{"role": "user", "content": "hi"}],
                                         max_tokens=3)
    assert out.choices[0].message.content and "demohub" in out.model_extra
    assert "images_cached" not in out.model_extra["demohub"], "the chat demo answered, not the vision one"


@pytest.mark.parametrize("messages, model, words", [
    (ask(data_url(b"GIF89a but not really")), "default", "not an image"),
    (ask(*[data_url(png(i)) for i in range(5)]), "default", "at most 4 images"),
    (ask("https://example.com/cat.png"), "default", "can allow it with DEMOHUB_VISION_FETCH_URLS=1"),
    (ask("file:///etc/passwd"), "default", "never read"),
    (ask("/etc/passwd"), "default", "never read"),
    (ask("data:image/png;base64,%%%"), "default", "not valid base64"),
    (ask(data_url(png())), "HuggingFaceTB/SmolLM2-360M-Instruct", "SmolVLM-256M-Instruct"),
])
def test_bad_image_requests_get_one_sentence(hub, messages, model, words):
    import openai

    client, _ = hub
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=model, messages=messages, max_tokens=3)
    message = e.value.body["message"]
    assert words in message and is_sentence(message), message


def test_an_unknown_model_with_a_picture_is_a_404_listing_the_vision_models(hub):
    import openai

    client, _ = hub
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="attacker/any-repo", messages=ask(data_url(png())), max_tokens=3)
    assert "Describe image" in e.value.body["message"]


def test_the_image_is_never_written_to_disk(hub):
    """A data URL's bytes stay in memory: no file anywhere under the temp folder, the hub's cache or the working
    directory holds them afterwards."""
    client, tmp = hub
    data = png(seed=99, size=(170, 130))
    marker = data[len(data) // 2: len(data) // 2 + 64]  # compressed pixel data: unique to this picture
    start = time.time() - 1
    client.chat.completions.create(model="default", messages=ask(data_url(data)), max_tokens=2)
    roots = {Path(tempfile.gettempdir()), Path(tmp), Path.cwd(), Path(os.environ.get("GRADIO_TEMP_DIR", tmp))}
    written = [f for root in roots for f in _new_files(root, start) if marker in f.read_bytes()]
    assert not written, written


def _new_files(root: Path, since: float):
    for dirpath, _, names in os.walk(root):
        if "/.git" in dirpath or "/.venv" in dirpath or "/node_modules" in dirpath:
            continue
        for n in names:
            f = Path(dirpath) / n
            try:
                st = f.stat()
            except OSError:
                continue
            if st.st_mtime >= since and st.st_size < 50 * 2**20 and f.is_file() and os.access(f, os.R_OK):
                yield f
