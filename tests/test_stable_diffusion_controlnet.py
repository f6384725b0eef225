"""ControlNet on Stable Diffusion (issue #29), on the tiny random model: the preprocessors' maps against pictures
drawn here (where the edges and lines must be), the ControlNet's effect (none at strength 0, bit for bit), the step
window and strength diffusers receives per step (read from the ControlNet's own calls), several at once, img2img and
inpaint, a folder ControlNet loaded from disk and one for another base refused, each bad unit one sentence before any
work, the record, and the API (gradio_client's parameters and Preview map, /v1/images' `controlnet` extension)."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from demos.stable_diffusion import DEMO, control_maps, controlnet
from demos.stable_diffusion import engine as sd
from demos.stable_diffusion.types import ControlUnit
from hub.errors import UserError
from hub.options import DemoOptions, defaults
from hub.weights import Weights
from tests import WAIT_S

KW = dict(seed=3, steps=4, guidance=7.5, scheduler="Euler", decoder="tiny")


def square(size=(64, 64), box=(16, 16, 47, 47), width=2) -> Image.Image:
    """A black square outline on white."""
    im = Image.new("RGB", size, "white")
    ImageDraw.Draw(im).rectangle(box, outline="black", width=width)
    return im


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """An operator's ControlNet folder: one made for this UNet (saved from diffusers' from_unet), one config that
    says SD 2.x (1024-wide cross-attention)."""
    from diffusers import ControlNetModel

    root = tmp_path_factory.mktemp("controlnets")
    return root, ControlNetModel


@pytest.fixture(scope="module")
def engine(folder, tmp_path_factory):
    from hub.settings import Settings

    weights = Weights("stable_diffusion", sd.SPEC.choice("tiny-random"), "random", None, tmp_path_factory.mktemp("c"))
    opts = DemoOptions({**defaults(DEMO).as_dict(), "controlnet_dir": str(folder[0])})
    e = sd.load(weights, "cpu", "float32", options=opts, settings=Settings.load({}))
    root, cls = folder
    cls.from_unet(e.pipe.unet).save_pretrained(root / "control_v11p_sd15_lineart")
    (root / "sd21_canny").mkdir()
    (root / "sd21_canny" / "config.json").write_text(json.dumps({"_class_name": "ControlNetModel",
                                                                  "cross_attention_dim": 1024}))
    return e


def _pixels(result) -> np.ndarray:
    return np.asarray(result.images[0], dtype=np.int16)


# ---- the maps -----------------------------------------------------------------------------------------------------


def test_canny_lineart_and_scribble_maps_lie_on_the_drawn_lines():
    """A square outline drawn here: each map is white along it (within 2 px) and black away from it."""
    im = square()
    near = np.zeros((64, 64), bool)
    near[14:50, 14:50] = True
    near[20:44, 20:44] = False  # a band of 2 px around the 2-px outline at 16..47
    for pre in ("canny", "lineart", "scribble"):
        m = np.asarray(control_maps.make({"image": im, "preprocessor": pre, "low": 100, "high": 200}, 64, 64))
        assert m.shape == (64, 64, 3) and (m[..., 0] == m[..., 1]).all(), pre  # grey, in RGB
        lit = m[..., 0] > 64
        assert not lit[~near].any(), pre
        # each side of the square is traced along its whole length
        assert lit[18:46, 14:20].any(axis=1).all() and lit[18:46, 44:50].any(axis=1).all(), pre
        assert lit[14:20, 18:46].any(axis=0).all() and lit[44:50, 18:46].any(axis=0).all(), pre


def test_the_picture_is_cropped_and_resized_to_cover_the_size():
    """sd-webui-controlnet's Crop and Resize: a 200x100 picture, red left quarter, blue right quarter, green middle:
    fitted to 64x64, the sides are cut and the middle fills it."""
    im = Image.new("RGB", (200, 100), "green")
    ImageDraw.Draw(im).rectangle((0, 0, 49, 99), fill="red")
    ImageDraw.Draw(im).rectangle((150, 0, 199, 99), fill="blue")
    out = np.asarray(control_maps.make({"image": im, "preprocessor": "none"}, 64, 64))
    assert out.shape == (64, 64, 3)
    assert (out[:, 2:-2, 1] > 100).all() and (out[:, 2:-2, 0] < 50).all()  # only the green middle is left


def test_the_depth_map_spans_black_to_white_at_the_size():
    depth = control_maps.random_depth()
    m = control_maps.make({"image": square((90, 70)), "preprocessor": "depth"}, 64, 48, depth)
    arr = np.asarray(m)
    assert m.size == (64, 48) and arr.min() == 0 and arr.max() == 255


# ---- the engine ---------------------------------------------------------------------------------------------------


def test_a_controlnet_steers_the_picture_and_strength_zero_changes_nothing(engine):
    plain = sd.generate(engine, "a cube", **KW)
    steered = sd.generate(engine, "a cube", controlnet=[ControlUnit("canny", square())], **KW)
    off = sd.generate(engine, "a cube", controlnet=[ControlUnit("canny", square(), strength=0)], **KW)
    assert np.abs(_pixels(plain) - _pixels(steered)).max() > 0
    assert np.array_equal(_pixels(plain), _pixels(off))
    assert steered.params["controlnet"] == [{"name": "canny", "preprocessor": "canny", "strength": 1.0, "start": 0.0,
                                            "end": 1.0, "low": 100, "high": 200}]


def _scales(engine, names, monkeypatch) -> dict:
    """The conditioning scale each named ControlNet gets at each of its calls (one call per step)."""
    from demos.stable_diffusion import control_run

    seen: dict = {n: [] for n in names}
    for n in names:
        model = control_run.net(engine, n)
        original = model.forward

        def spy(*a, _n=n, _f=original, **k):
            seen[_n].append(round(float(k["conditioning_scale"]), 3))
            return _f(*a, **k)
        monkeypatch.setattr(model, "forward", spy)
    return seen


def test_the_step_window_and_strength_reach_each_step(engine, monkeypatch):
    """4 steps, start 0.25, end 0.75 (diffusers' rule: step i acts when i/4 >= start and (i+1)/4 <= end): steps 2
    and 3 at the strength, 1 and 4 at 0. Two ControlNets at once each get their own window."""
    seen = _scales(engine, ("canny", "tile"), monkeypatch)
    units = [ControlUnit("canny", square(), strength=0.6, start=0.25, end=0.75),
             ControlUnit("tile", square(), strength=1.5, start=0.0, end=0.5)]
    r = sd.generate(engine, "a cube", controlnet=units, **KW)
    assert seen == {"canny": [0.0, 0.6, 0.6, 0.0], "tile": [1.5, 1.5, 0.0, 0.0]}
    assert [u["name"] for u in r.params["controlnet"]] == ["canny", "tile"]


def test_with_the_hires_fix_the_controlnet_steers_both_passes_at_their_sizes(engine, monkeypatch):
    """sd-webui-controlnet's way: the units act in the first pass (map at 64 px) and the hires pass (map at 128 px),
    each step of both at the unit's strength."""
    from demos.stable_diffusion import control_maps as maps_module
    from demos.stable_diffusion.types import Hires

    sizes = []
    made = maps_module.make
    monkeypatch.setattr(maps_module, "make", lambda u, w, h, d=None: sizes.append((w, h)) or made(u, w, h, d))
    seen = _scales(engine, ("canny",), monkeypatch)
    r = sd.generate(engine, "a cube", controlnet=[ControlUnit("canny", square(), strength=0.5)],
                    hires=Hires(2.0, "Latent", 0.5, 2), **KW)
    assert r.images[0].size == (128, 128) and sizes == [(64, 64), (128, 128)]
    assert seen["canny"] == [0.5] * 6  # 4 first-pass steps, 2 hires steps
    assert r.params["controlnet"][0]["strength"] == 0.5 and r.params["hires"]["width"] == 128


def test_img2img_and_inpaint_take_controlnets_and_inpaint_keeps_the_rest(engine):
    init = Image.new("RGB", (64, 64), (200, 40, 40))
    r = sd.img2img(engine, init, "a cube", strength=0.6, controlnet=[ControlUnit("canny", square())], **KW)
    assert r.images[0].size == (64, 64) and r.params["controlnet"][0]["name"] == "canny"
    mask = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(mask).rectangle((24, 24, 39, 39), fill=255)
    r = sd.inpaint(engine, init, mask, "a cube", controlnet=[ControlUnit("tile", init, preprocessor="lineart")],
                   **KW)
    far = np.asarray(r.images[0])[:8, :8]
    assert (np.abs(far.astype(int) - [200, 40, 40]) <= 2).all()


def test_a_folder_controlnet_is_listed_loaded_and_one_for_another_base_refused(engine, folder):
    rows = {r["id"]: r for r in controlnet.listing(folder[0], None)}
    assert rows["control_v11p_sd15_lineart"]["preprocessor"] == "lineart"
    assert rows["sd21_canny"]["base"] == "SD 2.x"
    # on random weights the random ones are offered; a folder one is used by a hub on real weights
    engine.source = "hf"
    try:
        r = sd.generate(engine, "a cube", controlnet=[ControlUnit("control_v11p_sd15_lineart", square())], **KW)
        assert r.params["controlnet"][0]["preprocessor"] == "lineart"
        with pytest.raises(UserError, match=r"^The ControlNet sd21_canny is made for SD 2.x, and tiny-random is "):
            sd.generate(engine, "a cube", controlnet=[ControlUnit("sd21_canny", square())], **KW)
    finally:
        engine.source = "random"


@pytest.mark.parametrize("units, said", [
    ([ControlUnit("nope", square())], "This hub has no ControlNet named 'nope'; it has: canny, depth, openpose, tile."),
    ([ControlUnit("", square())], "Pick which ControlNet the ControlNet is"),
    ([ControlUnit("canny", None)], "Give the ControlNet a picture to read"),
    ([ControlUnit("canny", b"not a picture")], "The ControlNet's control image"),
    ([ControlUnit("canny", square(), start=0.6, end=0.4)], "The ControlNet would act on no step"),
    ([ControlUnit("canny", square(), strength=2.5)], "The ControlNet's strength is 2.5, which is out of range"),
    ([ControlUnit("canny", square(), low=220, high=30)], "The ControlNet's low canny threshold (220) is above"),
    ([ControlUnit("canny", square(), preprocessor="hed")], "The ControlNet's preprocessor 'hed' is not one of"),
    ([ControlUnit("canny", square())] * 4, "At most 3 ControlNets at once; this request has 4."),
    ([ControlUnit("canny", square()), ControlUnit("tile", square(), end=2)], "ControlNet 2's end is 2"),
])
def test_each_bad_unit_gets_one_sentence_before_any_work(engine, units, said, monkeypatch):
    from demos.stable_diffusion import control_run

    monkeypatch.setattr(control_run, "pipeline", lambda *a, **k: pytest.fail("work started"))
    with pytest.raises(UserError) as e:
        sd.generate(engine, "a cube", controlnet=units, **KW)
    assert str(e.value).startswith(said) and "Error" not in str(e.value)


def test_the_record_keeps_the_units_but_not_the_pictures(engine, tmp_path):
    from demos.stable_diffusion import formats

    r = sd.generate(engine, "a cube", controlnet=[ControlUnit("tile", square(), preprocessor="scribble")], **KW)
    (path,) = r.save(tmp_path)
    back = formats.read_parameters(path)
    assert back["controlnet"] == [{"name": "tile", "preprocessor": "scribble", "strength": 1.0, "start": 0.0,
                                   "end": 1.0}]


def test_a1111_controlnet_infotext_is_written_and_read():
    """The units as sd-webui-controlnet writes them into a PNG's parameters, and read back from its own line."""
    from demos.stable_diffusion import formats

    units = [{"name": "canny", "preprocessor": "canny", "strength": 0.8, "start": 0.0, "end": 1.0, "low": 100,
              "high": 200}, {"name": "tile", "preprocessor": "tile", "strength": 1.0, "start": 0.2, "end": 0.5}]
    text = formats.parameters_text({"prompt": "a cube", "steps": 4, "seed": 3, "width": 64, "height": 64,
                                    "controlnet": units})
    assert 'ControlNet 0: "Module: canny, Model: canny, Weight: 0.8, Guidance Start: 0, Guidance End: 1, ' \
           'Threshold A: 100, Threshold B: 200"' in text
    assert formats.parse_a1111(text)["controlnet"] == units
    a1111 = ('a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 512x512, ControlNet 0: "Module: '
             'canny, Model: control_v11p_sd15_canny [d14c016b], Weight: 1.0, Resize Mode: Crop and Resize, Low Vram: '
             'False, Processor Res: 512, Threshold A: 100.0, Threshold B: 200.0, Guidance Start: 0.0, Guidance End: '
             '1.0, Pixel Perfect: False, Control Mode: Balanced"')
    assert formats.parse_a1111(a1111)["controlnet"] == [{
        "preprocessor": "canny", "name": "control_v11p_sd15_canny [d14c016b]", "strength": 1.0, "low": 100,
        "high": 200, "start": 0.0, "end": 1.0}]


# ---- the API ------------------------------------------------------------------------------------------------------


def _data_url(im: Image.Image) -> str:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_the_api_takes_controlnets_previews_maps_and_refuses_bad_units(serve, tmp_path):
    import requests
    from gradio_client import handle_file

    client = serve(("stable_diffusion",), {"stable_diffusion": "tiny-random"})
    picture = tmp_path / "square.png"
    square().save(picture)
    common = dict(model="tiny-random", seed=5, steps=2, guidance_scale=1.0, scheduler="Euler", width=64, height=64,
                  num_images=1, decoder="tiny")
    *_, record = client.predict(prompt="a cube", controlnet_model="canny", controlnet_image=handle_file(picture),
                                controlnet_strength=0.7, controlnet2_model="tile",
                                controlnet2_image=handle_file(picture), controlnet2_end=0.5, **common,
                                api_name="/generate_image")
    assert [(u["name"], u["strength"], u["end"]) for u in record["controlnet"]] == [("canny", 0.7, 1.0),
                                                                                    ("tile", 1.0, 0.5)]
    # the model manager counts the ControlNets the engine keeps (read again after the request)
    manager = client.blocks.hub_manager
    lease_engine = next(e.engine for e in manager._entries.values() if e.demo == "stable_diffusion")
    nets = sum(p.numel() * p.element_size() for m in lease_engine.nets.values() for p in m.parameters())
    row = next(r for r in manager.status() if r["demo"] == "stable_diffusion")
    weights = sum(p.numel() * p.element_size() for m in lease_engine.pipe.components.values()
                  if isinstance(m, torch.nn.Module) for p in m.parameters())
    assert nets > 0 and row["bytes"] >= weights + nets
    path, said = client.predict(model="tiny-random", image=handle_file(picture), preprocessor="canny", width=64,
                                height=64, api_name="/control_map")
    expected = control_maps.make({"image": square(), "preprocessor": "canny", "low": 100, "high": 200}, 64, 64)
    assert np.array_equal(np.asarray(Image.open(path).convert("RGB")), np.asarray(expected))
    assert said == "The canny map at 64x64."
    with pytest.raises(Exception, match="ControlNet unit 1 has a picture but no ControlNet model"):
        client.predict(prompt="a cube", controlnet_image=handle_file(picture), **common, api_name="/generate_image")
    url = client.src.rstrip("/")
    listed = requests.get(f"{url}/v1/images/controlnets", timeout=WAIT_S).json()
    assert {r["id"] for r in listed["data"]} == {"canny", "depth", "openpose", "tile"}
    body = {"prompt": "a cube", "size": "64x64", "steps": 2, "seed": 5, "response_format": "b64_json",
            "controlnet": [{"model": "canny", "image": _data_url(square()), "strength": 0.7}]}
    r = requests.post(f"{url}/v1/images/generations", json=body, timeout=WAIT_S)
    assert r.status_code == 200 and r.json()["demohub"]["controlnet"][0]["strength"] == 0.7
    for unit, said in (({"model": "canny", "image": _data_url(square()), "weight": 1}, "has 'weight', which"),
                       ({"model": "canny", "image": "https://example.com/a.png"}, "must be sent inline"),
                       ({"model": "canny", "image": "data:image/png;base64,@@"}, "is not valid base64")):
        bad = requests.post(f"{url}/v1/images/generations", json={**body, "controlnet": [unit]}, timeout=WAIT_S)
        assert bad.status_code == 400 and said in bad.json()["error"]["message"]


def test_at_most_two_controlnets_stay_loaded_and_their_bytes_are_counted(engine):
    from demos.stable_diffusion import control_run

    def held():
        return sum(p.numel() * p.element_size() for m in engine.nets.values() for p in m.parameters())

    for name in ("canny", "tile", "openpose"):
        control_run.net(engine, name)
    assert list(engine.nets) == ["tile", "openpose"]  # the least recently used went
    depth = sum(p.numel() * p.element_size() for p in engine.depth.model.parameters()) if engine.depth else 0
    assert engine.extra_bytes == held() + depth


def test_random_controlnets_are_at_the_unets_architecture(engine):
    """The tests' ControlNet is diffusers' own, copied from the UNet (the real recipe), its outputs not zero."""
    from demos.stable_diffusion import control_run

    model = control_run.net(engine, "depth")
    assert model.config.cross_attention_dim == engine.pipe.unet.config.cross_attention_dim
    assert model.config.block_out_channels == engine.pipe.unet.config.block_out_channels
    assert float(torch.stack([p.abs().sum() for p in model.controlnet_mid_block.parameters()]).sum()) > 0
