"""A random Qwen3-VL at the real architecture (transformers' own Qwen3VLConfig / Qwen3VLForConditionalGeneration /
Qwen3VLProcessor, toy sizes, no remote code) answers a question about a picture through the vision engine, as the
random SmolVLM does in tests/test_vision.py. Truth: transformers' generate() fed the processor's own output for
the same conversation, and the image-token count the processor's grid implies."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import pytest

from demos.vision import engine as V
from demos.vision.types import DescribeRequest, Sampling, VisionChatRequest


@pytest.fixture(scope="module")
def eng():
    from demos.vision import DEMO
    from hub.options import defaults
    from hub.spec import ModelChoice
    from hub.weights import Weights

    choice = ModelChoice("tiny-random-qwen3-vl", "random", label="tiny random Qwen3-VL (tests)",
                         approx_bytes=1_000_000, options={"config": "tiny-qwen3-vl"})
    return V.load(Weights("vision", choice, "random", None, None), "cpu", "float32", options=defaults(DEMO))


def photo(tmp_path, seed=0, size=(160, 120)) -> str:
    from PIL import Image

    path = tmp_path / f"photo{seed}.png"
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return str(path)


def run(engine, req):
    from hub.work import Job

    lease = SimpleNamespace(engine=engine, weights=SimpleNamespace(record=lambda: {"model": "tiny-random-qwen3-vl"}),
                            record=lambda **params: params)
    fn = V.describe if isinstance(req, DescribeRequest) else V.chat
    return list(fn(lease, req, Job()))


def test_the_random_build_has_qwen3_vls_module_types(eng):
    from transformers import Qwen3VLForConditionalGeneration
    from transformers.models.qwen3_vl import modeling_qwen3_vl as M

    model = eng.model
    assert type(model) is Qwen3VLForConditionalGeneration and eng.kind == "qwen3_vl"
    visual = model.model.visual
    assert all(type(b) is M.Qwen3VLVisionBlock for b in visual.blocks) and len(visual.blocks) == 2
    assert len(visual.deepstack_merger_list) == 2 and type(visual.merger) is M.Qwen3VLVisionPatchMerger
    assert all(type(layer) is M.Qwen3VLTextDecoderLayer for layer in model.model.language_model.layers)
    rope = model.config.text_config.rope_parameters
    assert rope["mrope_section"] == [4, 2, 2] and rope["mrope_interleaved"]
    assert sum(rope["mrope_section"]) * 2 == model.config.text_config.head_dim


def test_a_question_about_a_picture_gets_the_librarys_own_answer(eng, tmp_path):
    import torch

    path = photo(tmp_path, 3, (200, 90))
    done = run(eng, DescribeRequest((path,), "ask", "What is here?", Sampling(max_new_tokens=6), session="q"))[-1]
    assert (done.completion_tokens, done.finish_reason) == (6, "length") and done.first_token_s > 0

    proc = eng.processor
    (pic, _), = V.open_images((path,), eng.options)
    text = proc.apply_chat_template([{"role": "user", "content": [{"type": "image"},
                                                                 {"type": "text", "text": "What is here?"}]}],
                                    add_generation_prompt=True)
    inputs = proc(text=[text], images=[pic], return_tensors="pt")
    grid = inputs["image_grid_thw"][0]
    image_tokens = int((inputs["input_ids"] == eng.model.config.image_token_id).sum())
    assert image_tokens == int(grid.prod()) // 4 > 0, "one token per 2x2 block of 16-px patches"
    with torch.inference_mode():
        out = eng.model.generate(**inputs, generation_config=V._generation_config(eng, Sampling(6), 6),
                                 logits_processor=V._extras(eng, {}, threading.Event(), threading.Event())
                                 .get("logits_processor"))
    expected = proc.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert done.text == expected and done.prompt_tokens == inputs["input_ids"].shape[1]


def test_a_conversation_with_two_pictures_counts_both(eng, tmp_path):
    a, b = photo(tmp_path, 1), photo(tmp_path, 2, (64, 160))
    one = run(eng, VisionChatRequest(({"role": "user", "text": "And this?", "images": (0,)},), (a,),
                                     Sampling(max_new_tokens=2)))[-1]
    two = run(eng, VisionChatRequest(({"role": "user", "text": "Compare them.", "images": (0,)},
                                      {"role": "assistant", "text": "A picture.", "images": ()},
                                      {"role": "user", "text": "And this?", "images": (1,)}), (a, b),
                                     Sampling(max_new_tokens=2)))[-1]
    assert two.completion_tokens == 2 and two.prompt_tokens > one.prompt_tokens + 5
