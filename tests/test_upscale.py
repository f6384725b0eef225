"""The Upscale tab (demos/upscale): spandrel's RRDBNet built tiny with random weights, saved and loaded back through
spandrel's own detection (as the Real-ESRGAN files are); a tiled run equals one untiled call within a level of 255;
the scale (passes of an x2 model, Lanczos to a scale the model does not make), the size cap and transparency; a
sentence for every bad value before any work; a Tile item per tile, and a stop between tiles; `fetch` refusing a
file whose SHA-256 is not the pinned one (`demohub fetch upscale` exits 1); the tab through gradio_client."""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from demos.upscale import engine as up
from demos.upscale import tiles
from demos.upscale.spec import SPEC
from demos.upscale.types import Tile, UpscaleRequest, UpscaleResult
from hub.errors import CorruptWeights, UserError
from hub.weights import Weights
from hub.work import Job, dispatch, roundtrip


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("upscale-cache")


def _engine(cache, model="tiny-random", **kw):
    return up.load(Weights("upscale", SPEC.choice(model), "random", None, cache), "cpu", "float32", **kw)


@pytest.fixture(scope="module")
def x4(cache):
    return _engine(cache)


@pytest.fixture(scope="module")
def x2(cache):
    return _engine(cache, "tiny-random-x2")


def picture(w: int, h: int, seed: int = 0) -> Image.Image:
    """Smooth colour ramps plus noise: something with both flat parts and detail."""
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h)], axis=-1)
    noise = np.random.default_rng(seed).normal(0, 25, (h, w, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


def drain(steps):
    """Run a generator with a return value to its end: (items, value)."""
    items = []
    while True:
        try:
            items.append(next(steps))
        except StopIteration as end:
            return items, end.value


def px(im) -> np.ndarray:
    return np.asarray(im, dtype=np.int16)


# ---- loading ------------------------------------------------------------------------------------------------------


def test_the_random_model_is_a_file_that_spandrel_detects_as_esrgan(x4, x2, cache):
    from spandrel import ModelLoader

    x4_file, x2_file = (up._random_file(Weights("upscale", SPEC.choice(m), "random", None, cache))
                        for m in ("tiny-random", "tiny-random-x2"))
    assert x4_file.parent == cache / "derived" / "upscale" and x4_file.suffix == ".safetensors" != x2_file.name
    for engine, file, scale in ((x4, x4_file, 4), (x2, x2_file, 2)):
        direct = ModelLoader().load_from_file(file)  # spandrel's own loader reads the same file the same way
        assert direct.architecture.id == engine.desc.architecture.id == "ESRGAN"
        assert direct.scale == engine.scale == scale and engine.dtype == "float32"
        assert "1nb" in engine.architecture and "8nf" in engine.architecture
    assert "unshuffle" in x2.architecture and x2.align == 4  # Real-ESRGAN x2plus's layout: tiles on its 4 px grid
    assert "unshuffle" not in x4.architecture and x4.align == 1


def test_a_pth_file_loads_weights_only_and_a_pickled_object_is_refused(cache, tmp_path, x4):
    from safetensors.torch import load_file

    file = up._random_file(Weights("upscale", SPEC.choice("tiny-random"), "random", None, cache))  # x4's, cached
    pth = tmp_path / "local_x4.pth"
    torch.save({"params_ema": load_file(str(file))}, pth)  # Real-ESRGAN's own layout of a .pth
    choice = replace(SPEC.choice("RealESRGAN_x4plus"), id=str(pth), source="path", sha256=None)
    local = up.load(Weights("upscale", choice, "path", pth, cache), "cpu", "float32")
    im = picture(40, 30)
    assert np.array_equal(px(up.upscale_image(local, im, (160, 120))), px(up.upscale_image(x4, im, (160, 120))))
    evil = tmp_path / "evil.pth"
    torch.save({"params_ema": {"x": SimpleNamespace(a=1)}}, evil)
    with pytest.raises(CorruptWeights, match="Python objects besides tensors"):
        up._state_dict(evil)


def test_dtype_float32_on_a_cpu_the_hubs_half_dtype_on_a_gpu_where_spandrel_allows_it():
    half = SimpleNamespace(supports_half=True, supports_bfloat16=True)
    neither = SimpleNamespace(supports_half=False, supports_bfloat16=False)
    assert up._run_dtype(half, "cpu", "bfloat16") == "float32"
    assert up._run_dtype(half, "cuda", "float16") == "float16" and up._run_dtype(half, "cuda", "bfloat16") == "bfloat16"
    assert up._run_dtype(neither, "cuda", "float16") == "float32"


# ---- tiles --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("length, tile, overlap, align", [(256, 128, 16, 1), (1000, 256, 16, 1), (301, 64, 16, 4),
                                                           (64, 64, 16, 1), (65, 64, 16, 4), (4096, 512, 16, 1)])
def test_tiles_cover_the_side_overlap_their_neighbours_and_sit_on_the_models_grid(length, tile, overlap, align):
    parts = tiles.spans(length, tile, overlap, align)
    assert parts[0][0] == 0 and parts[-1][1] == length
    for (a0, a1), (b0, b1) in zip(parts, parts[1:]):
        assert a1 - b0 >= overlap - align and b0 > a0  # neighbours share at least about `overlap` pixels
    assert all(s % align == 0 for s, _ in parts)
    assert max(e - s for s, e in parts) <= tile + 2 * align
    assert len({e - s for s, e in parts[:-1]}) <= 1  # one size (the last may be a little larger)
    assert tiles.spans(256, 128, 16) == [(0, 96), (80, 176), (160, 256)]  # 3 even tiles, not 2 of 128 and a sliver


@pytest.mark.parametrize("model", ["x4", "x2"])
def test_a_tiled_run_equals_one_untiled_call_within_a_level(request, model):
    engine = request.getfixturevalue(model)
    im = picture(150, 130, seed=3)
    whole = engine.desc(torch.from_numpy(np.asarray(im, dtype=np.float32) / 255).permute(2, 0, 1)[None])
    ref = (whole[0].permute(1, 2, 0).numpy() * 255).round().astype(np.int16)
    p = up.plan(engine, im.size, engine.scale, 64)
    assert p.tiles == 9
    items, out = drain(up.run(engine, im, p))
    assert [t.done for t in items] == list(range(1, 10)) and {t.total for t in items} == {9}
    diff = np.abs(px(out) - ref)
    assert diff.max() <= 1, f"the seams show: {diff.max()} levels apart"
    assert ref.std() > 5  # the random model's output has structure for the tiles to get wrong


# ---- scale, size, alpha -------------------------------------------------------------------------------------------


def test_scale_passes_and_lanczos_to_a_scale_the_model_does_not_make(x4, x2):
    im = picture(48, 40)
    p3 = up.plan(x4, im.size, 3, 256)
    assert (p3.size, p3.passes) == ((144, 120), 1)
    _, out3 = drain(up.run(x4, im, p3))
    _, full = drain(up.run(x4, im, up.plan(x4, im.size, 4, 256)))
    assert out3.size == (144, 120) and np.array_equal(px(out3), px(full.resize((144, 120), Image.Resampling.LANCZOS)))
    p4 = up.plan(x2, im.size, 4, 64)  # the x2 model twice, as AUTOMATIC1111 runs it
    assert p4.passes == 2 and p4.tiles == tiles.count(48, 40, 64, 16, 4) + tiles.count(96, 80, 64, 16, 4) == 5
    items, out4 = drain(up.run(x2, im, p4))
    assert out4.size == (192, 160) and [t.done for t in items] == [1, 2, 3, 4, 5]
    p1 = up.plan(x4, im.size, 1, 256)  # scale 1: one pass of the model, then back to the size (a cleaned picture)
    assert (p1.size, p1.passes) == ((48, 40), 1)
    assert up.plan(x4, (37, 23), 1.5).size == (56, 34)  # rounded to whole pixels


def _lease(engine):
    return SimpleNamespace(engine=engine, record=lambda **kw: {"model": engine.model_id, **kw})


def _work(engine, request, job=None):
    return list(dispatch(up.WORK.get("upscale"), _lease(engine), roundtrip(request), job or Job()))


def test_transparency_is_kept_and_resized_beside_the_colour(x4, tmp_path):
    rgba = np.zeros((40, 60, 4), dtype=np.uint8)
    rgba[..., :3] = np.asarray(picture(60, 40))
    rgba[..., 3] = 255
    rgba[10:30, 20:40, 3] = 0  # a transparent hole
    src = tmp_path / "hole.png"
    Image.fromarray(rgba, "RGBA").save(src)
    *tiles_, res = _work(x4, UpscaleRequest(str(src), 2, 64))
    assert isinstance(res, UpscaleResult) and (res.width, res.height) == (120, 80)
    out = Image.open(res.path)
    assert out.format == "PNG" and out.mode == "RGBA" and out.size == (120, 80)
    alpha = np.asarray(out.getchannel("A"))
    assert alpha[30:50, 50:70].max() == 0 and alpha[:10].min() == 255
    assert res.record["alpha"] is True and res.record["scale"] == 2
    *_, plain = _work(x4, UpscaleRequest(picture(60, 40), 2, 64))
    assert Image.open(plain.path).mode == "RGB"


def test_an_sd_pngs_parameters_survive_the_upscale(x4, tmp_path):
    from demos.stable_diffusion.formats import WritePNG, read_parameters

    src = WritePNG(tmp_path, "sd").write(picture(64, 64), {"prompt": "a red fox", "seed": 7, "steps": 3,
                                                           "width": 64, "height": 64})
    *_, res = _work(x4, UpscaleRequest(str(src), 4, 256))
    assert read_parameters(res.path)["prompt"] == "a red fox"
    assert Image.open(res.path).text["postprocessing"] == "Postprocess upscale by: 4, Postprocess upscaler: tiny-random"


# ---- checks before any work ---------------------------------------------------------------------------------------


def is_sentence(message: str) -> bool:
    return (len(re.findall(r"[A-Za-z']+", message)) >= 6 and not re.search(r"\b\w+(Error|Exception)\b", message)
            and message.rstrip().endswith("."))


@pytest.mark.parametrize("kw, match", [
    ({"scale": 9}, "Scale is 9, which is out of range; use a number from 1 to 4"),
    ({"scale": 0.5}, "Scale is 0.5, which is out of range"),
    ({"scale": "big"}, "Scale must be a number"),
    ({"scale": float("nan")}, "Scale must be a real number"),
    ({"tile": 10}, "Tile size is 10, which is out of range; use a whole number from 64 to 1024"),
    ({"tile": 100.5}, "Tile size must be a whole number"),
])
def test_bad_values_get_one_sentence_before_any_tile(x4, monkeypatch, kw, match):
    calls = []
    monkeypatch.setattr(up, "_forward", lambda engine, t: calls.append(1))
    with pytest.raises(UserError, match=match) as e:
        _work(x4, UpscaleRequest(picture(64, 48), **kw))
    assert is_sentence(str(e.value)) and not calls


def test_the_size_cap_is_checked_from_the_header_and_names_the_largest_scale(x4, monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(up, "_forward", lambda engine, t: calls.append(1))
    big = tmp_path / "big.png"
    Image.new("RGB", (2000, 1500), "teal").save(big)  # a few kB: the cap must not need its pixels decoded
    with pytest.raises(UserError) as e:
        _work(x4, UpscaleRequest(str(big), 4))
    assert str(e.value) == ("Upscaling 2000x1500 by 4 would make 8000x6000 pixels; this hub makes at most 4096 px per "
                            "side: use a scale of at most 2.04.")
    assert not calls
    small_cap = up.load(Weights("upscale", SPEC.choice("tiny-random"), "random", None, tmp_path), "cpu", "float32",
                        options=SimpleNamespace(max_side=256))
    with pytest.raises(UserError, match="at most 256 px per side: use a picture at most 256 px"):
        up.plan(small_cap, (300, 200), 1)
    with pytest.raises(UserError, match="only 4x4 pixels; use one at least 8 pixels"):
        _work(x4, UpscaleRequest(Image.new("RGB", (4, 4)), 2))
    assert not calls


def test_a_picture_whose_model_output_would_pass_the_cap_is_reduced_first_with_a_note(x4):
    p = up.plan(x4, (2048, 1024), 2, 256)  # 4096 x 2048 is allowed; the x4 model's own 8192 px output is not
    assert p.size == (4096, 2048) and p.model_input == (1024, 512) and "reduced to 1024x512" in p.notes[0]


# ---- progress and stop --------------------------------------------------------------------------------------------


def test_a_tile_item_per_tile_then_the_result(x4):
    items = _work(x4, UpscaleRequest(picture(150, 130), 2, 64))
    assert items[0] == Tile(0, 9) and [i.done for i in items[1:-1]] == list(range(1, 10))
    assert isinstance(items[-1], UpscaleResult) and items[-1].record["tiles"] == 9


def test_a_stop_between_tiles_ends_the_work_without_a_result(x4, monkeypatch):
    job, seen, real = Job(), [], up._forward

    def counted(engine, t):
        seen.append(1)
        if len(seen) == 2:
            job.stop.set()  # a Cancel pressed while tile 2 runs
        return real(engine, t)
    monkeypatch.setattr(up, "_forward", counted)
    items = _work(x4, UpscaleRequest(picture(150, 130), 2, 64), job)
    assert [i.done for i in items] == [0, 1, 2] and len(seen) == 2  # tile 3 never ran, and no result came
    assert up.upscale_image(x4, picture(150, 130), (300, 260), 64, should_stop=lambda: len(seen) >= 3) is None


# ---- fetch: the pinned SHA-256 ------------------------------------------------------------------------------------


def _fake_download(payload: bytes):
    def download(repo, name, choice, folder):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(payload)
        return folder / name
    return download


def test_fetch_refuses_a_download_whose_sha256_is_not_the_pinned_one(tmp_path, monkeypatch):
    from hub.settings import Settings
    from hub.weights import resolve

    monkeypatch.setattr(up, "_download", _fake_download(b"not the real weights"))
    settings = Settings.load({}, cache_dir=str(tmp_path / "cache"), offline=False)
    w = resolve(SPEC, SPEC.choice("RealESRGAN_x2plus"), settings)
    with pytest.raises(CorruptWeights, match="does not match its pinned SHA-256"):
        up.fetch(w)
    assert not any(Path(w.path).iterdir()), "nothing of the wrong file is left in the cache"
    good = b"pretend weights"
    pinned = replace(SPEC.choice("RealESRGAN_x2plus"), sha256=hashlib.sha256(good).hexdigest())
    monkeypatch.setattr(up, "_download", _fake_download(good))
    got = up.fetch(replace(w, choice=pinned))
    assert got == Path(w.path) / "RealESRGAN_x2plus.pth" and got.read_bytes() == good
    with pytest.raises(CorruptWeights, match="SHA-256 does not match"):  # the hub checks the cached file, too
        resolve(SPEC, SPEC.choice("RealESRGAN_x2plus"), settings)


def test_demohub_fetch_upscale_fails_loudly_on_a_wrong_file(tmp_path, monkeypatch, capsys):
    from hub.cli import _fetch
    from hub.settings import Settings

    monkeypatch.setattr(up, "_download", _fake_download(b"a changed mirror"))
    settings = Settings.load({}, cache_dir=str(tmp_path / "cache"))
    assert _fetch(settings, "upscale", "RealESRGAN_x4plus") == 1
    err = capsys.readouterr().err
    assert "does not match its pinned SHA-256" in err and "Traceback" not in err


def test_offline_without_the_file_says_how_to_fetch_it(tmp_path):
    with pytest.raises(UserError, match=r"demohub fetch upscale --model RealESRGAN_x4plus"):
        up.weights_for("RealESRGAN_x4plus", tmp_path)


# ---- the tab through gradio_client --------------------------------------------------------------------------------


def test_the_tab_upscales_through_gradio_client_and_refuses_bad_values(serve, tmp_path):
    from gradio_client import handle_file

    client = serve(("upscale",), models={"upscale": "tiny-random"})
    src = tmp_path / "src.png"
    picture(100, 70).save(src)
    path, status, record = client.predict("tiny-random", handle_file(str(src)), 2, 64, api_name="/upscale")
    out = Image.open(path)
    assert out.format == "PNG" and out.size == (200, 140) and status == "Done: 200x140 px."
    assert record["tiles"] == 4 and record["model"] == "tiny-random" and record["device"] == "cpu"
    with pytest.raises(Exception, match="Scale is 9, which is out of range"):
        client.predict("tiny-random", handle_file(str(src)), 9, 64, api_name="/upscale")
    with pytest.raises(Exception, match="not one of this hub's Upscale models"):
        client.predict("attacker/any-repo", handle_file(str(src)), 2, 64, api_name="/upscale")


def test_sds_gallery_has_an_upscale_button_only_in_a_hub_with_the_upscale_tab(settings):
    import gradio as gr

    from demos.stable_diffusion.ui_links import _to_upscale
    from hub.app import create_app

    def button(blocks):
        found = [b for b in blocks.blocks.values() if isinstance(b, gr.Button) and b.value == "Upscale"
                 and b.parent is not None and b.elem_classes != ["hub-main"]]
        return found[0] if found else None

    both = create_app(replace(settings, models={"stable_diffusion": "tiny-random", "upscale": "tiny-random"}),
                      ("stable_diffusion", "upscale"))
    assert button(both).visible
    sd_alone = create_app(replace(settings, models={"stable_diffusion": "tiny-random"}), ("stable_diffusion",))
    assert not button(sd_alone).visible
    gallery = [("/tmp/a.png", None), ("/tmp/b.png", None)]
    assert _to_upscale(gallery, 1) == {"upscale.image": "/tmp/b.png"}
    assert _to_upscale(gallery, None) == {"upscale.image": "/tmp/a.png"}
    with pytest.raises(UserError, match="Generate an image first"):
        _to_upscale([], None)
