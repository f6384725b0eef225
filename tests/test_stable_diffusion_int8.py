"""Stable Diffusion's int8 UNet on a CPU (DEMOHUB_STABLE_DIFFUSION_INT8=1, int8.py): the image of the same seed as
torch fp32, the calls it cannot serve on torch, the record saying which ran, made once per checkpoint, and a hub
without OpenVINO/NNCF or with a UNet they cannot take still drawing on torch."""

from __future__ import annotations

import logging

import numpy as np
import pytest

pytest.importorskip("openvino")
pytest.importorskip("nncf")

from demos.stable_diffusion import DEMO  # noqa: E402
from demos.stable_diffusion import engine as sd  # noqa: E402
from demos.stable_diffusion import int8  # noqa: E402
from demos.stable_diffusion.spec import SPEC  # noqa: E402
from hub.options import DemoOptions  # noqa: E402
from hub.weights import Weights  # noqa: E402
from tests.test_stable_diffusion_fast import psnr  # noqa: E402
from tests.test_stable_diffusion_lora import kohya_file  # noqa: E402

ON = DemoOptions({**{o.key: o.default for o in DEMO.options}, "int8": True})


def _weights(cache):
    return Weights("stable_diffusion", SPEC.choice("tiny-random"), "random", None, cache)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("int8-cache")


@pytest.fixture(scope="module")
def engines(cache, tmp_path_factory):
    """The same seeded random model with a LoRA folder: torch fp32, and with the int8 UNet (made here, once)."""
    loras = tmp_path_factory.mktemp("loras")
    kohya_file(loras / "style.safetensors", 1)
    opts = {**{o.key: o.default for o in DEMO.options}, "lora_dir": str(loras)}
    return (sd.load(_weights(cache), "cpu", "float32", options=DemoOptions(opts)),
            sd.load(_weights(cache), "cpu", "float32", options=DemoOptions({**opts, "int8": True})))


class _Lease:
    def __init__(self, engine):
        self.engine = engine

    def record(self, **fields):
        return fields


@pytest.mark.parametrize("size", [(128, 128), (64, 128)])
def test_the_int8_unet_draws_the_fp32_image_of_the_same_seed(engines, size):
    """int8 weights and activations against torch fp32, same seed and full decoder: PSNR >= 28 dB (bf16 is held
    to 30), and the record says the int8 UNet ran, not torch."""
    fp32, quantized = engines
    kw = dict(seed=3, steps=4, width=size[0], height=size[1], decoder="full")
    a, b = sd.generate(fp32, "a red cube", **kw), sd.generate(quantized, "a red cube", **kw)
    assert np.asarray(a.images[0]).std() > 1 and a.images[0].size == b.images[0].size == size
    assert sd.record(_Lease(quantized), b, False)["unet"] == "openvino int8"
    assert sd.record(_Lease(fp32), a, False)["unet"] == "torch"
    assert quantized.weights_format.startswith("float32, UNet int8 (OpenVINO 20") and fp32.weights_format == ""
    unet_bytes = sum(p.numel() for p in quantized.pipe.unet.parameters())  # int8: about a byte per parameter
    assert 0.9 * unet_bytes < quantized.extra_bytes < 2 * unet_bytes  # the int8 copy counts in the manager's budget
    assert 28 <= psnr(a.images[0], b.images[0]) < float("inf")  # close, and not torch's own image


def test_calls_the_int8_unet_cannot_serve_run_on_torch(engines):
    """A side that is not a multiple of the UNet's upsampling (the traced graph's assumption), or a fused LoRA (the
    IR holds the checkpoint's own weights): torch's UNet draws, exactly the fp32 image, and the record says so."""
    fp32, quantized = engines
    factor = 8 * 2 ** quantized.pipe.unet.num_upsamplers
    odd = dict(seed=2, steps=2, width=factor * 4 + 8, height=64, decoder="full")
    assert (odd["width"] // 8) % (factor // 8)  # a latent side the int8 graph was not traced for
    a, b = sd.generate(fp32, "a cube", **odd), sd.generate(quantized, "a cube", **odd)
    assert np.array_equal(np.asarray(a.images[0]), np.asarray(b.images[0]))
    assert sd.record(_Lease(quantized), b, False)["unet"] == "torch"
    kw = dict(seed=2, steps=2, width=128, height=128, decoder="full", loras="style:1.5")
    c, d = sd.generate(fp32, "a cube", **kw), sd.generate(quantized, "a cube", **kw)
    assert quantized.loras.fused and np.array_equal(np.asarray(c.images[0]), np.asarray(d.images[0]))
    assert sd.record(_Lease(quantized), d, False)["unet"] == "torch"
    after = sd.generate(quantized, "a cube", **{**kw, "loras": ""})  # the LoRA taken out: the int8 UNet again
    assert not quantized.loras.fused and sd.record(_Lease(quantized), after, False)["unet"] == "openvino int8"


def test_the_int8_unet_is_made_once_per_checkpoint_and_read_from_the_cache(engines, cache, monkeypatch):
    _, first = engines

    def made_again(*args, **kwargs):
        raise AssertionError("made a second time: the cached int8 UNet was not used")

    monkeypatch.setattr(int8, "make", made_again)
    again = sd.load(_weights(cache), "cpu", "float32", options=ON)
    assert again.int8 is not None
    kw = dict(seed=4, steps=2, width=128, height=128, decoder="full")
    a, b = sd.generate(first, "a cube", **kw), sd.generate(again, "a cube", **kw)
    assert np.array_equal(np.asarray(a.images[0]), np.asarray(b.images[0]))  # the same saved int8 model
    assert [p.name for p in (cache / "native" / "stable_diffusion" / "openvino-int8").iterdir()] == [
        int8.checkpoint_key(_weights(cache))]


@pytest.mark.parametrize("failure", ["not installed", "cannot convert"])
def test_without_openvino_or_with_a_unet_it_cannot_take_sd_draws_on_torch(tmp_path, monkeypatch, caplog, failure):
    if failure == "not installed":
        monkeypatch.setattr(int8, "available", lambda: False)
    else:
        def broken(*args, **kwargs):
            raise RuntimeError("unsupported operation")
        monkeypatch.setattr(int8, "make", broken)
    with caplog.at_level(logging.WARNING, logger="demohub"):
        engine = sd.load(_weights(tmp_path), "cpu", "float32", options=ON)
    assert engine.int8 is None
    res = sd.generate(engine, "a cube", seed=1, steps=1, width=64, height=64)
    assert res.images and sd.record(_Lease(engine), res, False)["unet"] == "torch"
    said = caplog.text
    assert ("pip install 'demohub[openvino]'" in said) if failure == "not installed" else (
        "the UNet runs on torch" in said and "unsupported operation" in said)


def test_a_checkpoint_with_other_unet_files_gets_its_own_int8_unet(tmp_path):
    """The cache key of a downloaded or local checkpoint is its UNet files (names, sizes, times): changed weights
    are quantized again, unchanged ones reuse theirs; a single-file checkpoint is keyed by its file."""
    import os

    from hub.spec import ModelChoice

    folder = tmp_path / "model"
    (folder / "unet").mkdir(parents=True)
    weights_file = folder / "unet" / "diffusion_pytorch_model.safetensors"
    weights_file.write_bytes(b"a" * 64)
    (folder / "unet" / "config.json").write_text("{}")
    local = Weights("stable_diffusion", ModelChoice(str(folder), "path"), "path", folder, tmp_path)
    first = int8.checkpoint_key(local)
    assert int8.checkpoint_key(local) == first
    weights_file.write_bytes(b"b" * 65)  # fine-tuned in place
    assert int8.checkpoint_key(local) != first
    single = tmp_path / "model.safetensors"
    single.write_bytes(b"c" * 64)
    one = Weights("stable_diffusion", ModelChoice(str(single), "path"), "path", single, tmp_path)
    key = int8.checkpoint_key(one)
    os.utime(single, ns=(1, 1))
    assert int8.checkpoint_key(one) != key and key not in (first, int8.checkpoint_key(local))
