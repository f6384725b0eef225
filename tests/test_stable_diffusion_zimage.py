"""Z-Image-Turbo in the Stable Diffusion tab, with its architecture-true tiny random build (Qwen3 text encoder with a
chat template, the S3-DiT transformer, the 16-channel VAE with shift and scale; zimage.py): the engine's three modes
with the model's own defaults, steps and Cancel, the refusals, the offload plan, and the tab's API and /v1/images
through a live loopback hub. No download."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from demos.stable_diffusion import engine as sd, zimage
from demos.stable_diffusion.spec import SPEC, family, model_defaults
from hub.errors import UserError
from hub.weights import Weights
from tests import WAIT_S

MODEL = "tiny-random-zimage"


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from hub.settings import Settings

    weights = Weights("stable_diffusion", SPEC.choice(MODEL), "random", None, tmp_path_factory.mktemp("zi"))
    return sd.load(weights, "cpu", "float32", settings=Settings.load({}))


def px(im) -> np.ndarray:
    return np.asarray(im, dtype=np.int16)


def test_the_real_model_is_pinned_licensed_sized_and_defaults_to_8_steps_without_guidance():
    c = SPEC.choice("Tongyi-MAI/Z-Image-Turbo")
    assert c.source == "hf" and len(c.revision) == 40 and int(c.revision, 16) >= 0
    assert c.license == "Apache-2.0" and c.approx_bytes > 16e9 and c.size_dtype == "bfloat16"
    assert "GPU" in c.label and family(c.id) == "zimage" and c.dtype == "bfloat16"
    d = model_defaults(c.id)
    assert (d["steps"], d["guidance"], d["scheduler"], d["size"]) == (8, 0.0, "FlowMatch Euler", 1024)
    assert SPEC.default_model["cpu"] == "stabilityai/sd-turbo"  # on a CPU it is just slow: SD-Turbo stays


def test_generates_with_the_models_defaults_and_reports_every_step(engine):
    assert engine.family == "zimage" and engine.multiple == 16 and not engine.has_safety_checker
    steps = []
    r = sd.generate(engine, "a red cube", seed=3, on_step=lambda i, n: steps.append((i, n)))
    assert [im.size for im in r.images] == [(64, 64)] and r.seeds == [3]
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]
    p = r.params
    assert (p["steps"], p["guidance"], p["scheduler"], p["model"], p["mode"]) == (4, 0.0, "FlowMatch Euler", MODEL,
                                                                                   "txt2img")
    assert p["decoder"] == "full" and r.notes == []  # auto: the VAE (TAESD decodes SD latents only)
    assert px(r.images[0]).std() > 0  # not a blank image


def test_same_seed_same_pixels_other_seed_and_guidance_differ(engine):
    a = sd.generate(engine, "a red cube", seed=11, steps=2, width=96, height=64)
    b = sd.generate(engine, "a red cube", seed=11, steps=2, width=96, height=64)
    c = sd.generate(engine, "a red cube", seed=12, steps=2, width=96, height=64)
    g = sd.generate(engine, "a red cube", "blue", seed=11, steps=2, width=96, height=64, guidance=3.0)
    assert a.images[0].size == (96, 64)
    assert np.array_equal(px(a.images[0]), px(b.images[0]))
    assert not np.array_equal(px(a.images[0]), px(c.images[0]))
    assert not np.array_equal(px(a.images[0]), px(g.images[0]))  # guidance > 0 runs the negative prompt too


def test_cancel_stops_after_the_current_step(engine):
    seen = []
    r = sd.generate(engine, "a red cube", seed=1, steps=6, on_step=lambda i, n: seen.append(i),
                    should_stop=lambda: len(seen) >= 2)
    assert r.cancelled and r.images == [] and seen == [1, 2]


def test_tiny_decoder_asked_for_runs_full_with_a_note(engine):
    r = sd.generate(engine, "a red cube", seed=1, steps=1, decoder="tiny")
    assert r.params["decoder"] == "full" and r.notes == [zimage.NO_TINY]


@pytest.mark.parametrize("kw, sentence", [
    ({"steps": 0}, "steps"), ({"steps": 151}, "steps"), ({"guidance": 31}, "guidance scale"),
    ({"guidance": -1}, "guidance scale"), ({"steps": 2.5}, "steps"),
])
def test_out_of_range_steps_and_guidance_are_refused_with_a_sentence(engine, kw, sentence):
    with pytest.raises(UserError) as e:
        sd.generate(engine, "a red cube", **kw)
    text = str(e.value)
    assert sentence in text.lower() and text.endswith(".") and "Error" not in text


def test_sides_must_be_multiples_of_16_and_sd_schedulers_are_refused(engine):
    with pytest.raises(UserError, match=r"^Width is 72, which is not a multiple of 16; use 64 or 80 \(a multiple of "
                                        r"16 from 64 to 1024\)\.$"):
        sd.generate(engine, "a red cube", width=72)
    with pytest.raises(UserError, match="tiny-random-zimage runs only the FlowMatch Euler scheduler, not Euler a"):
        sd.generate(engine, "a red cube", scheduler="Euler a")


def test_sd_models_keep_their_five_schedulers_and_refuse_the_flow_matching_one(tmp_path):
    sd_engine = sd.load(Weights("stable_diffusion", SPEC.choice("tiny-random"), "random", None, tmp_path), "cpu",
                        "float32")
    assert sd_engine.family == "sd" and sd_engine.schedulers == sd.SCHEDULERS[:5] and sd_engine.multiple == 8
    with pytest.raises(UserError, match=r"^tiny-random runs only the Euler a, Euler, DPM\+\+ 2M, DPM\+\+ 2M Karras "
                                        "or DDIM schedulers, not FlowMatch Euler; pick one of them"):
        sd.generate(sd_engine, "x", scheduler="FlowMatch Euler")


def test_a_prompt_past_the_text_encoders_512_tokens_gets_a_note(engine):
    assert 400 < engine.prompt_limit < zimage.MAX_SEQUENCE_LENGTH  # 512 less the chat template's tokens
    fits = " ".join(["fox"] * (engine.prompt_limit - 1))  # " fox" is one token, the first "fox" two
    assert len(engine.pipe.tokenizer(fits, add_special_tokens=False).input_ids) == engine.prompt_limit
    assert not sd.generate(engine, fits, seed=1, steps=1).notes
    r = sd.generate(engine, fits + " LASTWORD", seed=1, steps=1)
    assert [n for n in r.notes if "the text encoder reads only" in n and "\u201cLASTWORD\u201d" in n], r.notes


def test_img2img_and_inpaint_run_and_inpaint_keeps_the_unmasked_pixels(engine):
    base = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    r = sd.img2img(engine, base, "a red cube", strength=0.5, seed=2, steps=4)
    assert r.images[0].size == (64, 64) and r.params["mode"] == "img2img"
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 64))
    r = sd.inpaint(engine, base, mask, "a red cube", seed=2, steps=2)
    out = px(r.images[0])
    assert np.array_equal(out[:, 48:], px(base)[:, 48:])  # far from the mask: unchanged
    assert not np.array_equal(out[:, :16], px(base)[:, :16])  # inside: repainted


def test_offload_plan_puts_what_fits_on_the_gpu():
    # Z-Image-Turbo's weights in bf16, counted from its architecture: transformer, Qwen3-4B, VAE
    sizes = [12_309_817_472, 8_044_936_192, 167_639_366]
    gb = 10**9
    assert sd.offload_plan(sizes, room=80 * gb) == "none"  # an H100: all of it
    assert sd.offload_plan(sizes, room=int(15.5 * gb)) == "model"  # a 16 GB GPU: one component at a time
    assert sd.offload_plan(sizes, room=8 * gb) == "sequential"  # an 8 GB GPU: layer by layer
    assert sd.offload_plan(sizes, room=80 * gb, setting="model") == "model"  # the operator's choice wins
    assert sd.offload_plan([2 * gb, gb // 4, gb // 2], room=15 * gb) == "none"  # SD 1.5 fits a 16 GB GPU whole
    # the operator's setting, checked at start
    import demos.stable_diffusion as package
    from hub.errors import SettingsError
    from hub.options import parse

    assert parse(package.DEMO, {}).offload == "auto"
    assert parse(package.DEMO, {"DEMOHUB_STABLE_DIFFUSION_OFFLOAD": "sequential"}).offload == "sequential"
    with pytest.raises(SettingsError, match="DEMOHUB_STABLE_DIFFUSION_OFFLOAD"):
        parse(package.DEMO, {"DEMOHUB_STABLE_DIFFUSION_OFFLOAD": "cpu"})


def test_tab_api_and_v1_images_generate_and_edit_with_it(serve):
    """Through the tab's /generate_image (gradio_client), /v1/images/generations and /v1/images/edits."""
    import httpx

    # an SD model is the tab's default (the scheduler list starts with SD's); the hidden test model is allowed the
    # way an operator allows any model on a loopback hub
    client = serve(("stable_diffusion",), models={"stable_diffusion": "tiny-random"}, allow_any_model=True)
    # the values the tab's fields take when the model is picked (the page sends every field)
    d = model_defaults(MODEL)
    fields = (d["steps"], d["guidance"], d["scheduler"], d["size"], d["size"], 1, "full")
    gallery, seed, notes, record = client.predict(MODEL, "a red cube", "", 5, *fields, api_name="/generate_image")
    assert len(gallery) == 1 and seed == 5 and notes == "Done."
    assert record["model"] == MODEL and record["steps"] == 4 and record["scheduler"] == "FlowMatch Euler"
    assert record["guidance"] == 0.0 and (record["width"], record["height"]) == (64, 64)
    with pytest.raises(Exception, match="not a multiple of 16"):
        client.predict(MODEL, "a red cube", "", 5, *fields[:3], 72, *fields[4:], api_name="/generate_image")
    r = httpx.post(client.src + "v1/images/generations", timeout=WAIT_S,
                   json={"prompt": "a red cube", "model": MODEL, "seed": 9, "response_format": "b64_json"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["demohub"]["model"] == MODEL and body["demohub"]["seeds"] == [9] and body["demohub"]["steps"] == 4
    im = Image.open(io.BytesIO(base64.b64decode(body["data"][0]["b64_json"])))
    assert im.size == (64, 64) and "Seed: 9" in im.text["parameters"]
    r = httpx.post(client.src + "v1/images/generations", timeout=WAIT_S,
                   json={"prompt": "a red cube", "model": MODEL, "steps": 0})
    assert r.status_code == 400 and "steps" in r.json()["error"]["message"]
    # edits: the transparent right half of the picture is repainted by Z-Image's inpaint pipeline
    picture = Image.new("RGBA", (64, 64), (200, 30, 30, 255))
    picture.paste((0, 0, 0, 0), (32, 0, 64, 64))
    buf = io.BytesIO()
    picture.save(buf, format="PNG")
    r = httpx.post(client.src + "v1/images/edits", timeout=WAIT_S, files={"image": ("p.png", buf.getvalue(), "image/png")},
                   data={"prompt": "a blue sky", "model": MODEL, "steps": "2", "response_format": "b64_json"})
    assert r.status_code == 200, r.text
    assert r.json()["demohub"]["mode"] == "inpaint" and r.json()["demohub"]["model"] == MODEL
    edited = np.asarray(Image.open(io.BytesIO(base64.b64decode(r.json()["data"][0]["b64_json"]))).convert("RGB"))
    assert (edited[:, :16] == (200, 30, 30)).all()  # far from the transparent part: unchanged


def test_a_local_z_image_folder_loads_as_z_image_and_other_folders_are_refused(engine, tmp_path):
    """`DEMOHUB_STABLE_DIFFUSION_MODEL=/path/to/folder`: a saved Z-Image pipeline is told apart from SD by its
    model_index.json and loads without any download; the same seed gives the same picture as before saving."""
    from dataclasses import replace

    folder = tmp_path / "zimage-folder"
    engine.pipe.save_pretrained(folder)
    choice = replace(SPEC.choice("stabilityai/sd-turbo"), id=str(folder), source="path", options={})
    loaded = sd.load(Weights("stable_diffusion", choice, "path", str(folder), tmp_path), "cpu", "float32")
    assert loaded.family == "zimage" and loaded.multiple == 16 and loaded.defaults == zimage.DEFAULTS
    a = sd.generate(engine, "a red cube", seed=4, steps=2)
    b = sd.generate(loaded, "a red cube", seed=4, steps=2, width=64, height=64)
    assert np.array_equal(px(a.images[0]), px(b.images[0]))
    (tmp_path / "not-a-model").mkdir()
    with pytest.raises(UserError, match="not a Z-Image diffusers folder"):
        zimage.build_pipeline(Weights("stable_diffusion", replace(choice, options={"family": "zimage"}), "path",
                                      str(tmp_path / "not-a-model"), tmp_path), "cpu", None)


def test_picking_it_in_the_tab_sets_its_steps_guidance_scheduler_and_sides():
    from demos.stable_diffusion import ui

    steps, guidance, scheduler, width, height, decoder = ui._defaults_for("Tongyi-MAI/Z-Image-Turbo")
    assert (steps, guidance) == (8, 0.0) and decoder == "full", "Z-Image has no tiny decoder: the picker says full"
    assert scheduler["choices"] == ["FlowMatch Euler"] and scheduler["value"] == "FlowMatch Euler"
    assert width["value"] == height["value"] == 1024 and width["step"] == 16 and "multiple of 16" in width["info"]
    back = ui._defaults_for("stabilityai/sd-turbo")  # and back: SD's schedulers and steps of 8
    assert "FlowMatch Euler" not in back[2]["choices"] and back[2]["value"] == "Euler" and back[3]["step"] == 8
    assert back[5] != "full", "SD keeps the decoder the visitor picked"
