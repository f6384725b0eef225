"""CLIP on a CPU with native bf16: the listed models run bf16 there; bf16 embeddings of real photos and of labels
point where fp32's do (the architecture of the CPU default, ViT-B/32, random weights at full size)."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import pytest

import demos.clip_zero_shot as clip
from demos.clip_zero_shot import engine as E
from hub.device import choose
from hub.weights import Weights

ASSETS = Path(importlib.util.find_spec("ultralytics").origin).parent / "assets"  # bus.jpg, zidane.jpg


@pytest.fixture(scope="module")
def fp32_and_bf16(tmp_path_factory):
    choice = replace(clip.SPEC.default_for("cpu"), source="random")  # ViT-B/32 at its real size
    w = Weights("clip_zero_shot", choice, "random", None, tmp_path_factory.mktemp("cache"))
    fp32, bf16 = E.load(w, "cpu", "float32"), E.load(w, "cpu", "bfloat16")
    bf16.model.load_state_dict(fp32.model.state_dict())  # the same random weights (rounded to bf16)
    return fp32, bf16


def test_bf16_image_and_text_embeddings_match_fp32(fp32_and_bf16):
    import torch

    fp32, bf16 = fp32_and_bf16
    assert bf16.dtype == "bfloat16" and bf16.input_dtype == torch.bfloat16 and fp32.dtype == "float32"
    photos = [E.load_image(str(ASSETS / "bus.jpg")), E.load_image(str(ASSETS / "zidane.jpg"))]
    a, b = fp32.encode_images(photos), bf16.encode_images(photos)
    cos = torch.nn.functional.cosine_similarity(a, b, dim=-1)
    assert a.dtype == b.dtype == torch.float32 and bool((cos >= 0.99).all()), cos
    labels = ["a bus", "two men in suits", "a cat"]
    t32, t16 = fp32.encode_texts(labels), bf16.encode_texts(labels)
    assert bool((torch.nn.functional.cosine_similarity(t32, t16, dim=-1) >= 0.99).all())


def test_the_listed_clip_models_run_bf16_only_on_cpus_that_compute_it():
    for m in clip.SPEC.models:
        if m.source != "random":
            assert choose("cpu", cpu_bf16=True, cpu_prefers=m.cpu_dtype).dtype == "bfloat16", m.id
            assert choose("cpu", cpu_bf16=False, cpu_prefers=m.cpu_dtype).dtype == "float32"
