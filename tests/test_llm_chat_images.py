"""Pictures in the chat tab (issue #32) through gradio_client: a message with a picture is answered by the random
SmolVLM of the vision demo (the chat's models read text only), the next turn about it reuses its features, Stop
ends the answer; too many pictures, a file that is not a picture, a picture over the byte or pixel cap, and a hub
without the vision demo each get one sentence. The browser side is tests/test_browser_chat_images.py."""

from __future__ import annotations

import numpy as np
import pytest

from tests import WAIT_S
from tests.test_contract import is_sentence

SYSTEM = "You are a helpful assistant."  # the tab's default system prompt


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """The chat and the vision demo on their tiny random models, pictures capped at 0.1 MB each."""
    from dataclasses import replace

    from gradio_client import Client

    from hub.app import create_app, launch
    from hub.settings import Settings
    from tests.conftest import free_port

    tmp = tmp_path_factory.mktemp("chat-images")
    s = Settings.load({"DEMOHUB_VISION_MAX_IMAGE_MB": "0.1"}, cache_dir=str(tmp / "cache"), offline=True,
                      device="cpu", port=free_port())
    blocks = create_app(replace(s, models={"llm_chat": "tiny-random", "vision": "tiny-random"}),
                        ("llm_chat", "vision"))
    launch(blocks, s, prevent_thread_lock=True, quiet=True)
    client = Client(f"http://127.0.0.1:{s.port}/", verbose=False)
    client.blocks, client.tmp = blocks, tmp
    yield client
    blocks.close()


def picture(folder, name="photo.png", seed=0, size=(96, 72), mode="RGB") -> str:
    from PIL import Image

    path = folder / name
    if mode == "RGB":
        Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    else:
        Image.new(mode, size).save(path)
    return str(path)


def with_files(text, *paths):
    from gradio_client import handle_file

    return {"text": text, "files": [handle_file(p) for p in paths]}


def vision_engine(client):
    from tests.browser import engine

    return engine(client.blocks, "vision")


def test_a_picture_in_the_chat_is_answered_by_the_vision_model_and_the_next_turn_reuses_it(hub):
    """Truth: the vision engine's own answer to the same conversation (system prompt, question, picture)."""
    from types import SimpleNamespace

    from demos.vision import engine as V
    from demos.vision.types import Sampling, VisionChatRequest
    from gradio_client import Client
    from hub.work import Job

    path = picture(hub.tmp, seed=1)
    answer, details = hub.predict(with_files("What is in the picture?", path), temperature=0, max_new_tokens=5,
                                  api_name="/chat")
    eng = vision_engine(hub)
    msgs = ({"role": "system", "text": SYSTEM, "images": ()},
            {"role": "user", "text": "What is in the picture?", "images": (0,)})
    lease = SimpleNamespace(engine=eng, weights=SimpleNamespace(record=lambda: {"model": "tiny-random"}),
                            record=lambda **kw: kw)
    direct = list(V.chat(lease, VisionChatRequest(msgs, (path,), Sampling(5, 0.0, 0.9), "truth"), Job()))[-1]
    assert answer.split("\n\n<sub>")[0] == direct.text and details["prompt_tokens"] == direct.prompt_tokens
    assert "reads text only, so tiny random SmolVLM (tests), this hub's vision model, answered" in answer
    assert "5 tokens" in answer and "🖼 tiny random SmolVLM (tests)" in answer and details["images_cached"] == 0

    follow, details = hub.predict("And the colours?", temperature=0, max_new_tokens=3, api_name="/chat")
    assert "🖼" in follow and "picture features reused" in follow and details["images_cached"] == 1
    assert details["prompt_tokens"] > direct.prompt_tokens + 5, "the earlier turn and its picture are in the prompt"

    other = Client(hub.src, verbose=False)  # another visitor, text only: the chat model answers as before
    text, details = other.predict("Hello", temperature=0, max_new_tokens=3, api_name="/chat")
    assert "🖼" not in text and "tokens/s" in text and "images_cached" not in details


def test_stop_ends_a_picture_answer_and_lets_go_of_the_vision_model(hub):
    from tests.browser import in_use, slowed, wait_until

    eng = vision_engine(hub)
    with slowed(eng.model, 0.05):  # 1024 tokens would take a minute: Stop must end it long before
        job = hub.submit(with_files("Tell me everything.", picture(hub.tmp, seed=2)), temperature=0,
                         max_new_tokens=4096, api_name="/chat")
        assert wait_until(lambda: any("Loading" not in o[0] for o in job.outputs()), 120), "the answer streams"
        job.cancel()
        assert wait_until(job.done, 60)
        assert wait_until(lambda: in_use(hub.blocks, "vision") == 0, 30), "the lease is given back"
        assert eng.lock.acquire(timeout=WAIT_S), "generation ended at the next token"
        eng.lock.release()


@pytest.mark.parametrize("files, words", [
    (lambda f: [picture(f, f"p{i}.png", seed=i) for i in range(5)], "at most 4 images in one request; this one has 5"),
    (lambda f: [_text_file(f)], "notes.png is not an image"),
    (lambda f: [picture(f, "large.png", size=(300, 300))], "large.png is larger than 0.1 MB"),
    (lambda f: [picture(f, "huge.png", size=(8000, 8000), mode="1")], "8000x8000 (64 megapixels)"),
])
def test_bad_pictures_get_one_sentence(hub, files, words):
    with pytest.raises(Exception) as e:
        hub.predict(with_files("What is this?", *files(hub.tmp)), max_new_tokens=3, api_name="/chat")
    assert words in str(e.value) and is_sentence(str(e.value)), str(e.value)


def _text_file(folder) -> str:
    path = folder / "notes.png"
    path.write_text("a shopping list, not a picture")
    return str(path)


def test_a_hub_without_the_vision_demo_says_so_in_one_sentence(serve, tmp_path):
    client = serve(("llm_chat",), models={"llm_chat": "tiny-random"})
    with pytest.raises(Exception) as e:
        client.predict(with_files("What is this?", picture(tmp_path)), max_new_tokens=3, api_name="/chat")
    assert "does not run a vision model" in str(e.value) and is_sentence(str(e.value))
    assert "tokens/s" in client.predict("Hello", max_new_tokens=3, api_name="/chat")[0], "text still works"


def test_the_conversation_becomes_the_vision_request_without_footers_or_reasoning():
    """Gradio's forms of a conversation (normalized parts, a file dict, a collapsible thought), and the newest
    pictures kept when there are more than the vision demo takes."""
    from demos.llm_chat.ui_images import DESCRIBE, has_images, vision_messages

    history = [
        {"role": "user", "content": [{"type": "file", "file": {"path": "/up/a.png"}},
                                     {"type": "text", "text": "What is it?"}]},
        {"role": "assistant", "content": "💭", "metadata": {"title": "💭 Thinking"}},
        {"role": "assistant", "content": [{"type": "text", "text": "A cat.\n\n<sub>⏱ 5 tokens · 9.0 tokens/s</sub>"}]},
        {"role": "user", "content": {"path": "/up/b.png"}},
        {"role": "user", "content": "And this one?"},
        {"role": "assistant", "content": "<think>hmm</think>A dog."},
    ]
    assert has_images(history) and not has_images(history[2:3])
    msgs, images, cut = vision_messages("Be brief.", history, "", ["/up/c.png"], most=4)
    assert images == ("/up/a.png", "/up/b.png", "/up/c.png") and cut == 0
    assert [(m["role"], m["text"], m["images"]) for m in msgs] == [
        ("system", "Be brief.", ()), ("user", "What is it?", (0,)), ("assistant", "A cat.", ()),
        ("user", "And this one?", (1,)), ("assistant", "A dog.", ()), ("user", DESCRIBE, (2,))]
    msgs, images, cut = vision_messages("", history, "Compare.", ["/up/c.png"], most=2)
    assert images == ("/up/b.png", "/up/c.png") and cut == 1
    assert [m["images"] for m in msgs] == [(), (), (0,), (), (1,)], "the oldest picture is left out, its text kept"


def test_the_chat_api_still_takes_a_plain_string_and_names_its_message_required(hub):
    from gradio_client import Client

    info = hub.view_api(return_format="dict", print_info=False)["named_endpoints"]["/chat"]["parameters"][0]
    assert info["parameter_name"] == "message" and not info["parameter_has_default"]
    text, details = Client(hub.src, verbose=False).predict("Just text", max_new_tokens=2, api_name="/chat")
    assert "2 tokens" in text and "🖼" not in text and details["new_tokens"] == 2
