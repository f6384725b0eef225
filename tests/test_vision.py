"""The vision demo: a random SmolVLM (Idefics3ForConditionalGeneration, the class SmolVLM-256M-Instruct's config
names) answers through its work methods and through the tab's API; cached image features give the answer the
library's own pixel path gives; Stop ends an answer at the next token; bad input gets one sentence."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import pytest

from demos.vision import engine as V
from demos.vision.types import DescribeRequest, Delta, Done, Sampling, VisionChatRequest
from hub.errors import UserError
from tests import WAIT_S
from tests.test_contract import is_sentence


@pytest.fixture(scope="module")
def eng():
    from demos.vision import DEMO, SPEC
    from hub.options import defaults
    from hub.weights import Weights

    w = Weights("vision", SPEC.choice("tiny-random"), "random", None, None)
    return V.load(w, "cpu", "float32", options=defaults(DEMO))


def lease(engine):
    return SimpleNamespace(engine=engine, weights=SimpleNamespace(record=lambda: {"model": "tiny-random"}),
                           record=lambda **params: {"model": "tiny-random", **params})


def photo(tmp_path, name="photo.png", seed=0, size=(160, 120)) -> str:
    from PIL import Image

    rng = np.random.default_rng(seed)
    path = tmp_path / name
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return str(path)


def run(engine, req, job=None):
    from hub.work import Job

    fn = V.describe if isinstance(req, DescribeRequest) else V.chat
    return list(fn(lease(engine), req, job or Job()))


def test_requests_and_items_survive_a_process_boundary(tmp_path):
    from hub.work import roundtrip

    for obj in (DescribeRequest((photo(tmp_path), b"\x89PNG"), "ask", "what?", Sampling(9, 0.5, 0.8, 3), "s"),
                VisionChatRequest(({"role": "user", "text": "hi", "images": (0,)},), (b"x",), Sampling(), "s"),
                Delta("a"), Done("a", "m", 3, 1, "stop", 0.1, 1, {"model": "m"})):
        assert roundtrip(obj) == obj


def test_describe_streams_deltas_then_the_answer_and_reuses_the_image_features(eng, tmp_path):
    req = DescribeRequest((photo(tmp_path),), "caption", "", Sampling(max_new_tokens=6), session="conv-1")
    items = run(eng, req)
    deltas, done = items[:-1], items[-1]
    assert deltas and all(isinstance(d, Delta) for d in deltas) and isinstance(done, Done)
    assert "".join(d.text for d in deltas) == done.text and done.text
    assert (done.completion_tokens, done.finish_reason, done.images_cached) == (6, "length", 0)
    # 160x120 -> 128x96 at the tiny processor's 128 px: 2x2 crops of 64 px + the global view, 4 tokens each
    assert done.prompt_tokens > 5 * 4 and done.first_token_s > 0 and done.record["max_new_tokens"] == 6
    again = run(eng, req)[-1]  # the same picture in the same conversation: no vision encoder this time
    assert again.images_cached == 1 and again.text == done.text
    other = run(eng, DescribeRequest(req.images, "caption", "", req.sampling, session="conv-2"))[-1]
    assert other.images_cached == 0, "another conversation never sees this one's cache"
    assert len(eng.features) == 2 and eng.extra_bytes == eng.features.nbytes > 0


def test_cached_features_give_the_answer_of_the_librarys_own_pixel_path(eng, tmp_path):
    """Independent truth: transformers' generate() fed pixel_values (it runs the vision encoder itself) and the
    processor's own prompt expansion."""
    import torch

    path = photo(tmp_path, seed=4, size=(200, 90))
    req = DescribeRequest((path,), "ask", "What is here?", Sampling(max_new_tokens=8), session="truth")
    run(eng, req)
    done = run(eng, req)[-1]
    assert done.images_cached == 1
    proc = eng.processor
    (pic, _), = V.open_images((path,), eng.options)
    text = proc.apply_chat_template([{"role": "user", "content": [{"type": "image"},
                                                                 {"type": "text", "text": "What is here?"}]}],
                                    add_generation_prompt=True)
    inputs = proc(text=[text], images=[[pic]], return_tensors="pt")
    with torch.inference_mode():
        out = eng.model.generate(**inputs, generation_config=V._generation_config(eng, Sampling(8), 8),
                                 logits_processor=V._extras(eng, {}, threading.Event(), threading.Event())
                                 .get("logits_processor"))
    expected = proc.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert done.text == expected and done.prompt_tokens == inputs["input_ids"].shape[1]


def test_a_stopped_job_ends_the_answer_at_the_next_token(eng, tmp_path):
    from hub.work import Job

    job = Job()
    items = V.describe(lease(eng), DescribeRequest((photo(tmp_path),), sampling=Sampling(max_new_tokens=500)), job)
    first = next(items)
    assert isinstance(first, Delta)
    job.stop.set()
    rest = list(items)
    assert not any(isinstance(i, Done) for i in rest) and len(rest) <= 2
    assert eng.lock.acquire(timeout=WAIT_S), "generation ended and let go of the model"
    eng.lock.release()


def test_a_reader_that_goes_away_without_stop_ends_generation_at_once(eng, tmp_path, monkeypatch):
    """A client that closes the stream (a dropped connection) sends no Stop: generation must still end at the next
    token, not run on to max_new_tokens with the model held (bench/MUTATION.md: `halt.set()` removed survived)."""
    from hub.work import Job

    req = DescribeRequest((photo(tmp_path),), sampling=Sampling(max_new_tokens=200, seed=1))
    done = run(eng, req)[-1]
    assert done.completion_tokens == 200 and done.finish_reason == "length"  # left alone, it runs to its limit
    calls, forward = [], eng.model.forward

    def counted(*args, **kwargs):
        calls.append(1)
        return forward(*args, **kwargs)

    monkeypatch.setattr(eng.model, "forward", counted)
    items = V.describe(lease(eng), req, Job())
    assert isinstance(next(items), Delta)
    items.close()  # returns once generation has ended: the model is free
    assert 0 < len(calls) < 200, f"generation went on to {len(calls)} of 200 tokens after the reader left"
    assert eng.lock.acquire(timeout=0)
    eng.lock.release()


def test_a_conversation_with_two_pictures_answers_and_refuses_a_bad_index(eng, tmp_path):
    a, b = photo(tmp_path, "a.png", 1), photo(tmp_path, "b.png", 2, (90, 200))
    msgs = ({"role": "user", "text": "Compare them.", "images": (0, 1)},)
    done = run(eng, VisionChatRequest(msgs, (a, open(b, "rb").read()), Sampling(max_new_tokens=4)))[-1]
    assert done.completion_tokens == 4 and done.text
    with pytest.raises(UserError, match="names an image"):
        run(eng, VisionChatRequest(({"role": "user", "text": "x", "images": (2,)},), (a,)))


@pytest.mark.parametrize("req, words", [
    (lambda p, t: DescribeRequest(()), "Upload an image"),
    (lambda p, t: DescribeRequest((p,) * 5), "at most 4 images"),
    (lambda p, t: DescribeRequest((p,), "ask", "   "), "Type a question"),
    (lambda p, t: DescribeRequest((p,), "poem"), "Mode must be one of"),
    (lambda p, t: DescribeRequest((t,)), "not an image"),
    (lambda p, t: DescribeRequest((b"\x89PNG\r\n\x1a\n" + b"\0" * 40,)), "image"),
])
def test_bad_input_gets_one_sentence(eng, tmp_path, req, words):
    text_file = tmp_path / "notes.png"
    text_file.write_text("this is not a picture")
    with pytest.raises(UserError) as e:
        run(eng, req(photo(tmp_path), str(text_file)))
    assert words in str(e.value) and is_sentence(str(e.value)) and str(e.value).count(". ") <= 1


def test_sampling_settings_are_checked():
    assert V.check_sampling(10, 0.3, 0.5, 7) == Sampling(10, 0.3, 0.5, 7)
    for kw in ({"max_new_tokens": 0}, {"temperature": 3}, {"top_p": 0}, {"max_new_tokens": 2000}):
        with pytest.raises(UserError):
            V.check_sampling(**kw)


def test_the_tab_api_answers_through_gradio_client_and_says_bad_input_in_a_sentence(serve, tmp_path):
    from gradio_client import handle_file

    client = serve(("vision",), models={"vision": "tiny-random"})
    path = photo(tmp_path)
    answer, status, record = client.predict(handle_file(path), "caption", "", "tiny-random", 5,
                                            api_name="/describe_image")
    assert answer and "5 tokens" in status and "random weights" in status
    assert record["model"] == "tiny-random" and record["max_new_tokens"] == 5
    answer2, status2, _ = client.predict(handle_file(path), "caption", "", "tiny-random", 5,
                                         api_name="/describe_image")
    assert answer2 == answer and "reused" in status2, "the page's session keeps the picture's features"
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    for args, words in (((handle_file(str(bad)), "caption", "", "tiny-random", 5), "bad.jpg"),
                        ((handle_file(path), "ask", "", "tiny-random", 5), "Type a question"),
                        ((None, "caption", "", "tiny-random", 5), "Upload an image")):
        with pytest.raises(Exception) as e:
            client.predict(*args, api_name="/describe_image")
        assert words in str(e.value) and is_sentence(str(e.value))


def test_on_a_cpu_smolvlm_sees_a_picture_as_one_crop_unless_the_operator_asks_for_detail():
    """512 px on a CPU: one 512-px crop (64 image tokens for SmolVLM) instead of 17; the GPU keeps 2048."""
    from transformers import Idefics3ImageProcessor

    from demos.vision.engine import _cpu_detail

    def processor():
        class P:
            image_processor = Idefics3ImageProcessor(size={"longest_edge": 2048}, max_image_size={"longest_edge": 512})
        return P()

    for device, edge, want in (("cpu", 512, 512), ("cuda", 512, 2048), ("cpu", 0, 2048), ("cpu", 100, 512),
                               ("cpu", 4096, 2048)):
        p = processor()
        _cpu_detail(p, device, edge)
        assert p.image_processor.size["longest_edge"] == want, (device, edge)
    p = processor()
    _cpu_detail(p, "cpu", 512)
    from PIL import Image

    out = p.image_processor([[Image.new("RGB", (512, 512))]], return_tensors="pt", return_row_col_info=True)
    assert out["pixel_values"].shape[1] == 1 and out["rows"] == [[0]] and out["cols"] == [[0]]
