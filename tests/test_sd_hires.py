"""Stable Diffusion's hires fix (demos/stable_diffusion/hires.py) on the tiny random SD engine: the picture comes out
scale x size through each upscaler (Latent, Latent (nearest-exact), Lanczos, an Upscale-tab model), the steps of
both passes are counted in one progress, denoise 0 keeps the enlarged picture, a stop in either pass (or between an
upscaler's tiles) cancels, every bad value gets one sentence before any work, and the record and the PNG's
parameters (A1111's "Hires upscale: 2, Hires steps: 4, Hires upscaler: Latent, Denoising strength: 0.5") round-trip
through formats.read_parameters, including a PNG written by AUTOMATIC1111."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from demos.stable_diffusion import engine as sd
from demos.stable_diffusion import hires
from demos.stable_diffusion.formats import parse_a1111, read_parameters
from demos.stable_diffusion.types import GenerateRequest, Hires, Result, Settings, Step
from hub.errors import UserError
from hub.weights import Weights
from hub.work import Job, dispatch, roundtrip

T2I = dict(seed=1, steps=3, width=64, height=64)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from hub.settings import Settings as HubSettings

    weights = Weights("stable_diffusion", sd.SPEC.choice("tiny-random"), "random", None,
                      tmp_path_factory.mktemp("sd-hires"))
    return sd.load(weights, "cpu", "float32", settings=HubSettings.load({}))


def px(im) -> np.ndarray:
    return np.asarray(im, dtype=np.int16)


def generate(engine, hires_fix, **kw):
    steps = []
    res = sd.generate(engine, "a lighthouse", hires=hires_fix, on_step=lambda i, n: steps.append((i, n)),
                      **{**T2I, **kw})
    return res, steps


@pytest.mark.parametrize("upscaler, canonical", [("latent", "Latent"), ("Latent (nearest-exact)", None),
                                                 ("LANCZOS", "Lanczos"), ("tiny-random", None)])
def test_each_upscaler_makes_scale_times_the_size_and_counts_both_passes(engine, upscaler, canonical):
    res, steps = generate(engine, Hires(2, upscaler, 0.5, 4), num_images=2)
    assert [im.size for im in res.images] == [(128, 128)] * 2 and res.seeds == [1, 2]
    assert steps == [(i, 7) for i in range(1, 8)]  # 3 first-pass steps, then 4 hires steps, counted as one run
    assert res.params["hires"] == {"scale": 2.0, "upscaler": canonical or upscaler, "denoise": 0.5, "steps": 4,
                                   "width": 128, "height": 128}
    assert (res.params["width"], res.params["height"]) == (64, 64)  # the size field is the first pass's, as A1111's
    assert not res.images[0].getbbox() is None


def test_hires_steps_default_to_the_first_pass_and_run_whatever_the_denoise(engine):
    _, steps = generate(engine, Hires(1.5, "latent", 0.3, None))
    assert steps[-1] == (6, 6)  # 3 + 3: "Hires steps" unset (or 0) = as many as the first pass
    _, steps = generate(engine, Hires(1.5, "latent", 0.3, 5))
    assert steps[-1] == (8, 8)  # 5 hires steps run at denoise 0.3 (a schedule of 17, its last 0.3), as A1111 does
    assert [hires.schedule(n, d) for n, d in ((10, 0.5), (10, 0.3), (7, 0.7), (1, 1.0))] == [20, 34, 10, 1]
    assert sd.plan_txt2img(engine, "x", **T2I, hires=Hires(2, "latent", 0.5, 0)).params["hires"]["steps"] == 3


def test_denoise_zero_keeps_the_enlarged_picture(engine):
    plain = sd.generate(engine, "a lighthouse", **T2I).images[0]
    res, steps = generate(engine, Hires(2, "lanczos", 0.0, 10))
    assert steps[-1] == (3, 3)  # no second pass
    want = px(plain.resize((128, 128), Image.Resampling.LANCZOS))
    assert np.abs(px(res.images[0]) - want).max() <= 1
    latent, _ = generate(engine, Hires(1.5, "latent", 0.0))
    assert latent.images[0].size == (96, 96)


def test_the_same_request_gives_the_same_picture_and_another_denoise_another(engine):
    a, _ = generate(engine, Hires(2, "latent", 0.6, 3))
    b, _ = generate(engine, Hires(2, "latent", 0.6, 3))
    c, _ = generate(engine, Hires(2, "latent", 0.9, 3))
    assert np.array_equal(px(a.images[0]), px(b.images[0])) and not np.array_equal(px(a.images[0]), px(c.images[0]))


def test_a_stop_in_either_pass_or_between_tiles_cancels(engine, monkeypatch):
    for at in (2, 5):  # a step of the first pass, one of the second
        seen = []
        res = sd.generate(engine, "x", **T2I, hires=Hires(2, "latent", 0.5, 4), on_step=lambda i, n: seen.append(i),
                          should_stop=lambda: len(seen) >= at)
        assert res.cancelled and not res.images and max(seen) == at
    from demos.upscale import engine as up

    real, tiles = up._forward, []
    monkeypatch.setattr(up, "_forward", lambda e, t: tiles.append(1) or real(e, t))
    res = sd.generate(engine, "x", seed=1, steps=1, width=512, height=384,
                      hires=Hires(2, "tiny-random", 0.5, 2), should_stop=lambda: len(tiles) >= 2)
    assert res.cancelled and len(tiles) == 2  # the model upscaler stopped between its tiles (6 at 256 px a tile)


def test_the_upscaler_model_is_loaded_once_and_kept_on_the_engine(engine):
    generate(engine, Hires(2, "tiny-random", 0.5, 1))
    held, extra = engine.hires_upscaler, engine.extra_bytes
    generate(engine, Hires(2, "tiny-random", 0.5, 1))
    assert engine.hires_upscaler is held and engine.extra_bytes == extra > 0
    generate(engine, Hires(2, "tiny-random-x2", 0.5, 1))
    assert engine.hires_upscaler is not held and engine.hires_upscaler.scale == 2 and held.desc is None  # closed


# ---- checks before any work ---------------------------------------------------------------------------------------


def is_sentence(message: str) -> bool:
    return (len(re.findall(r"[A-Za-z']+", message)) >= 6 and not re.search(r"\b\w+(Error|Exception)\b", message)
            and message.rstrip().endswith("."))


@pytest.mark.parametrize("value, size, match", [
    (Hires(scale=5), 64, "Hires scale is 5, which is out of range; use a number from 1 to 4"),
    (Hires(scale=0.5), 64, "Hires scale is 0.5, which is out of range"),
    (Hires(scale=2.5), 512, "Hires scale 2.5 would make 1280x1280 pixels from 512x512; this tab makes at most 1024 px "
                            "per side: use a hires scale of at most 2, or a smaller width and height"),
    (Hires(scale=2, upscaler="bicubic"), 64, "Hires upscaler 'bicubic' is not one of the choices; use one of: "
                                             "Latent, Latent \\(nearest-exact\\), Lanczos, RealESRGAN_x4plus, "
                                             "RealESRGAN_x2plus"),
    (Hires(denoise=1.5), 64, "Hires denoise is 1.5, which is out of range; use a number from 0 to 1"),
    (Hires(steps=151), 64, "Hires steps is 151, which is out of range; use a whole number from 1 to 150"),
    (Hires(steps=2.5), 64, "Hires steps must be a whole number"),
    (Hires(denoise=0.01, steps=20), 64, "With a hires denoise of 0.01, at most 10 hires steps fit"),
    (Hires(denoise=5e-324), 64, "With a hires denoise of 4.94066e-324, at most 0 hires steps fit"),
    ({"scale": 2, "sharpness": 3}, 64, "The hires fix must be given as its settings"),
])
def test_bad_hires_values_get_one_sentence_before_any_step(engine, value, size, match):
    steps = []
    with pytest.raises(UserError, match=match) as e:
        sd.generate(engine, "x", seed=1, steps=2, width=size, height=size, hires=value,
                    on_step=lambda i, n: steps.append(i))
    assert is_sentence(str(e.value)) and not steps


def test_hires_is_for_text_to_image_on_stable_diffusion_with_its_upscaler_on_this_machine(engine, tmp_path):
    with pytest.raises(UserError, match="for text to image only"):
        sd.plan_img2img(engine, Image.new("RGB", (64, 64)), "x", **T2I, hires=Hires())
    with pytest.raises(UserError, match="for text to image only"):
        sd.plan_inpaint(engine, Image.new("RGB", (64, 64)), Image.new("L", (64, 64), 255), "x", **T2I, hires=Hires())
    zimage = SimpleNamespace(family="zimage", model_id="Tongyi-MAI/Z-Image-Turbo")
    with pytest.raises(UserError, match="Z-Image-Turbo makes its large pictures in one pass"):
        hires.check_hires(Hires(), zimage, {"mode": "txt2img"})
    real = SimpleNamespace(family="sd", model_id="m", source="hf", multiple=8, scheduler_config={},
                           loras=SimpleNamespace(cache_dir=tmp_path))
    params = {"mode": "txt2img", "width": 512, "height": 512, "steps": 20}
    with pytest.raises(UserError, match="demohub fetch upscale --model RealESRGAN_x4plus"):
        hires.check_hires(Hires(2, "R-ESRGAN 4x+"), real, params)  # A1111's name for it; not on this machine
    with pytest.raises(UserError, match="not one of the choices"):  # the test upscalers only for test models
        hires.check_hires(Hires(2, "tiny-random"), real, params)
    assert hires.check_hires(Hires(1.3, "Lanczos"), real, params)["width"] == 664  # floored to a multiple of 8


def test_the_work_method_streams_steps_of_both_passes_then_the_result_with_its_record(engine):
    lease = SimpleNamespace(engine=engine, record=lambda **kw: kw)
    req = GenerateRequest("a lighthouse", settings=Settings(**{**T2I, "hires": Hires(2, "latent", 0.5, 2)}))
    items = list(dispatch(sd.WORK.get("txt2img"), lease, roundtrip(req), Job()))
    assert items[0] == Step(0, None) and [(s.step, s.total) for s in items[1:-1]] == [(i, 5) for i in range(1, 6)]
    res = items[-1]
    assert isinstance(res, Result) and res.images[0].size == (128, 128) and res.record["hires"]["steps"] == 2


# ---- the record and the PNG ---------------------------------------------------------------------------------------


def test_the_png_carries_the_hires_fix_in_a1111s_words_and_reads_back(engine, tmp_path):
    res, _ = generate(engine, Hires(2, "Latent (nearest-exact)", 0.45, 2))
    (path,) = res.save(tmp_path)
    text = Image.open(path).text["parameters"]
    assert ("Denoising strength: 0.45, Hires upscale: 2, Hires steps: 2, Hires upscaler: Latent (nearest-exact)"
            in text)
    assert read_parameters(path)["hires"] == res.params["hires"]  # the exact JSON chunk
    from_text = parse_a1111(text)  # what a tool that reads only A1111's text gets
    assert from_text["hires"] == {"scale": 2.0, "upscaler": "Latent (nearest-exact)", "denoise": 0.45, "steps": 2}
    assert "strength" not in from_text
    again, _ = generate(engine, read_parameters(path)["hires"])  # the read values make the same picture
    assert np.array_equal(px(again.images[0]), px(res.images[0]))


def test_an_automatic1111_hires_png_reads_back_as_a_hires_fix(engine):
    text = ("a castle\nNegative prompt: blurry\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, "
            "Seed: 5, Size: 512x512, Model: v1-5, Denoising strength: 0.7, Hires upscale: 1.5, "
            "Hires upscaler: R-ESRGAN 4x+, Version: v1.10.1")
    p = parse_a1111(text)
    assert p["hires"] == {"scale": 1.5, "upscaler": "R-ESRGAN 4x+", "denoise": 0.7, "steps": None}
    assert p["scheduler"] == "DPM++ 2M Karras" and "strength" not in p
    checked = hires.check_hires(p["hires"], engine, {"mode": "txt2img", "width": 512, "height": 512, "steps": 20})
    assert checked["upscaler"] == "RealESRGAN_x4plus" and checked["steps"] == 20 and checked["width"] == 768


def test_the_accordions_values_become_the_request(engine):
    from demos.stable_diffusion.ui_hires import to_hires

    assert to_hires(False, "Latent", 2, 0.5, 10) is None
    assert to_hires(True, "Lanczos", 1.5, 0.3, 0) == Hires(1.5, "Lanczos", 0.3, None)
    assert to_hires(True, None, 2, 0.5, 12) == Hires(2, "Latent", 0.5, 12)
    labels = [label for label, _ in hires.upscalers()]
    assert labels[:3] == ["Latent", "Latent (nearest-exact)", "Lanczos"] and "Real-ESRGAN x4plus (photos)" in labels
    assert "tiny-random" not in [v for _, v in hires.upscalers()]


def test_the_api_makes_a_hires_picture_and_read_parameters_turns_the_accordion_on_again(serve):
    """gradio_client: /generate_image with the hires parameters makes a picture twice the size; its PNG dropped on
    *Read parameters* fills the accordion (on, upscaler, scale, denoise, steps) before the record; a PNG without a
    hires fix turns it off."""
    from gradio_client import handle_file

    client = serve(("stable_diffusion",), {"stable_diffusion": "tiny-random"})
    common = dict(model="tiny-random", prompt="a cube", seed=3, steps=2, width=64, height=64, decoder="tiny")
    gallery, *_ = client.predict(**common, hires=True, hires_upscaler="Lanczos", hires_scale=2, hires_denoise=0.4,
                                 hires_steps=2, api_name="/generate_image")
    assert Image.open(gallery[0]["image"]).size == (128, 128)
    filled = client.predict(handle_file(gallery[0]["image"]), api_name="/read_parameters")
    assert tuple(filled[10:15]) == (True, "Lanczos", 2.0, 0.4, 2) and filled[-1]["hires"]["width"] == 128
    plain, *_ = client.predict(**common, api_name="/generate_image")
    assert client.predict(handle_file(plain[0]["image"]), api_name="/read_parameters")[10] is False
