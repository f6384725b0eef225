"""Property-based tests (hypothesis) for the stable_diffusion validators: a value that keeps its invariant, or a UserError sentence."""

from __future__ import annotations

from types import SimpleNamespace as NS
from unittest import mock

import numpy as np
from hypothesis import assume, example, given, strategies as st
from tests.properties import (
    DEEP_JSON,
    FAST,
    HUGE_INT,
    QUICK,
    anything,
    as_float,
    one_bad,
    outcome,
    overflows,
    unicode_text,
)


from demos.stable_diffusion import engine as sd, formats  # noqa: E402
from demos.stable_diffusion.pipelines import clip_tokenizer  # noqa: E402


# ---- stable_diffusion --------------------------------------------------------------------------------------------

SD_DEFAULTS = {"size": 512, "steps": 4, "guidance": 7.5, "scheduler": "Euler a"}


def sd_engine(inpainting: bool = False):
    return NS(is_inpainting_model=inpainting, defaults=dict(SD_DEFAULTS), pipe=NS(tokenizer=clip_tokenizer()),
              img2img_pipe=None, inpaint_pipe=None, model_id="tiny-random", revision=None, device="cpu",
              tiny=object(), tiny_missing="", schedulers=sd.SCHEDULERS[:5], multiple=8, prompt_limit=75, int8=None)


def sd_captured(fn, *args, **kw):
    """Run a public SD entry point with the diffusion step replaced by 'return the validated parameters'."""
    with mock.patch.object(sd, "_run", lambda engine, pipe, p, extra, notes, *a: (p, extra, notes)):
        return outcome(fn, *args, **kw)


def check_sd_common(p: dict) -> None:
    assert isinstance(p["steps"], int) and 1 <= p["steps"]
    assert isinstance(p["guidance"], float) and 0 <= p["guidance"] <= sd.MAX_GUIDANCE
    assert p["scheduler"] in sd.SCHEDULERS
    assert isinstance(p["num_images"], int) and 1 <= p["num_images"] <= sd.MAX_IMAGES
    assert isinstance(p["seed"], int) and 0 <= p["seed"] <= sd.MAX_SEED
    assert p["width"] % 8 == 0 and sd.MIN_SIDE <= p["width"] <= sd.MAX_SIDE
    assert p["height"] % 8 == 0 and sd.MIN_SIDE <= p["height"] <= sd.MAX_SIDE


sd_param = st.one_of(st.none(), anything)
sd_side = st.one_of(st.none(), st.integers(-100, 5000), st.floats(-1e4, 1e4), st.sampled_from(["512", "100.5"]))
sd_valid = {"seed": st.one_of(st.none(), st.integers(-1, sd.MAX_SEED), st.just("")),
            "steps": st.one_of(st.none(), st.integers(1, sd.MAX_STEPS), st.just(20.0)),
            "guidance": st.one_of(st.none(), st.floats(0, sd.MAX_GUIDANCE)), "width": sd_side, "height": sd_side,
            "scheduler": st.one_of(st.none(), st.sampled_from(sd.SCHEDULERS)), "num_images": st.integers(1, 4)}


@FAST
@given(prompt=st.one_of(unicode_text, st.text(max_size=400), st.none()), negative=st.one_of(unicode_text, st.none()),
       kw=one_bad(sd_valid, st.one_of(anything, st.text(max_size=8))))
def test_sd_generate_validates_every_setting(prompt, negative, kw):
    seed, steps, guidance, width, height, scheduler, num_images = (kw[k] for k in (
        "seed", "steps", "guidance", "width", "height", "scheduler", "num_images"))
    assume(not any(map(overflows, (seed, steps, guidance, width, height, num_images))))
    ok, r = sd_captured(sd.generate, sd_engine(), prompt, negative, seed=seed, steps=steps, guidance=guidance,
                        width=width, height=height, scheduler=scheduler, num_images=num_images)
    if ok:
        p, extra, notes = r
        check_sd_common(p)
        assert p["steps"] <= sd.MAX_STEPS and (extra["width"], extra["height"]) == (p["width"], p["height"])
        for given_side, side in ((width, p["width"]), (height, p["height"])):
            if given_side is None or (isinstance(given_side, str) and not given_side.strip()):
                continue  # None and a blank box mean the model's default size
            assert as_float(given_side) is not None, "a size that is not a number must be refused"
            assert sd.MIN_SIDE <= as_float(given_side) <= sd.MAX_SIDE, "an out-of-range size must be refused"
            assert as_float(given_side) == side, "a size is used as given or refused, never rounded"


@FAST
@given(size=st.tuples(st.integers(1, 40), st.integers(1, 40)),
       kw=one_bad({"strength": st.floats(0, 1), "steps": st.integers(1, sd.MAX_STEPS), "width": sd_side,
                   "height": sd_side}))
def test_sd_img2img_fits_size_and_strength(size, kw):
    from PIL import Image

    strength, steps, width, height = kw["strength"], kw["steps"], kw["width"], kw["height"]
    assume(not any(map(overflows, (strength, steps, width, height))))
    ok, r = sd_captured(sd.img2img, sd_engine(), Image.new("RGB", size, (9, 99, 199)), "a cat", strength=strength,
                        steps=steps, width=width, height=height)
    if ok:
        p, extra, _ = r
        check_sd_common(p)
        assert 0 < p["strength"] <= 1 and extra["image"].size == (p["width"], p["height"])
        assert int(p["steps"] * p["strength"]) >= 1, "at least one denoising step must run"


@FAST
@given(text=st.one_of(st.text(max_size=120), st.lists(st.sampled_from(
    ["Steps: ", "Seed: ", "CFG scale: ", "Size: ", "x", "nan", "1e999", "12", "-3", ", ", "\n", "Negative prompt: ",
     "Sampler: DPM++ 2M", "Schedule type: Karras", '"', "Denoising strength: ", "Mode: img2img", "٣", "\u2028"]),
    max_size=25).map("".join)), key=st.sampled_from(["parameters", "demohub"]))
def test_sd_read_parameters_returns_typed_fields(text, key):
    from PIL import Image

    im = Image.new("RGB", (8, 8))
    im.info[key] = text
    ok, params = outcome(formats.read_parameters, im)
    if ok:
        assert isinstance(params, dict)
        if key == "parameters":
            for name, typ in (("steps", int), ("seed", int), ("guidance", float), ("strength", float),
                              ("width", int), ("height", int), ("prompt", str), ("negative_prompt", str)):
                assert name not in params or isinstance(params[name], typ), (name, params)


@QUICK
@example(field="width", value=HUGE_INT)
@given(field=st.sampled_from(["seed", "steps", "guidance", "width", "height", "num_images"]),
       value=st.sampled_from([HUGE_INT, -HUGE_INT]))
def test_sd_generate_refuses_ints_beyond_float_range(field, value):
    sd_captured(sd.generate, sd_engine(), "a cat", **{field: value})


@QUICK
@example(strength=5e-324)
@given(strength=st.floats(min_value=5e-324, max_value=5e-309))
def test_sd_img2img_denormal_strength(strength):
    from PIL import Image

    sd_captured(sd.img2img, sd_engine(), Image.new("RGB", (8, 8)), "a cat", strength=strength)


@QUICK
@example(strength=1e-6)
@given(strength=st.floats(min_value=1e-300, max_value=1e-4))
def test_sd_img2img_tiny_strength(strength):
    from PIL import Image

    ok, r = sd_captured(sd.img2img, sd_engine(), Image.new("RGB", (8, 8)), "a cat", strength=strength)
    if ok:
        p = r[0]
        assert 1 <= int(p["steps"] * p["strength"]) and p["steps"] <= 1000, p["steps"]


@QUICK
@example(DEEP_JSON)
@given(st.integers(min_value=50_000, max_value=200_000).map(lambda n: "[" * n))
def test_sd_read_parameters_deeply_nested_json(text):
    from PIL import Image

    im = Image.new("RGB", (8, 8))
    im.info["demohub"] = text
    outcome(formats.read_parameters, im)


@QUICK
@given(mode=st.sampled_from(["1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I", "F", "CMYK"]),
       size=st.tuples(st.integers(1, 12), st.integers(1, 12)), seed=st.integers(0, 2**16))
def test_sd_mask_from_any_mode_is_binary_and_transparency_is_unpainted(mode, size, seed):
    from PIL import Image

    rng = np.random.default_rng(seed)
    rgba = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 4), dtype=np.uint8), "RGBA")
    im = rgba if mode == "RGBA" else rgba.convert("RGB").convert(mode)
    ok, m = outcome(sd.mask_from, im)
    assert ok and m.mode == "L" and m.size == size and set(np.unique(np.asarray(m))) <= {0, 255}
    if mode == "RGBA":
        alpha = np.asarray(rgba.getchannel("A"))
        assert not np.asarray(m)[alpha == 0].any(), "a transparent pixel counts as not painted"
