"""The Stable Diffusion demo's OpenAI-compatible image routes, through the official `openai` SDK against a live
loopback hub with tiny random weights: generations (b64_json and url), edits (image + mask, image with
transparency), n, the 4xx sentences, the upload cap, hub login, and a client that goes away."""

from __future__ import annotations

import base64
import io
import re
import threading
import time

import httpx
import numpy as np
import pytest
from PIL import Image

from demos.stable_diffusion import formats
from tests import WAIT_S

KEY = "sk-1"
QUICK = {"steps": 2, "guidance_scale": 7.5}  # extensions, through the SDK's extra_body


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """One hub for the module: tiny random SD, an API key and a hub user, a 1 MB upload cap."""
    from dataclasses import replace

    from gradio_client import Client

    from hub.app import create_app, launch
    from hub.settings import Settings
    from tests.conftest import free_port

    s = Settings.load({}, cache_dir=str(tmp_path_factory.mktemp("cache")), offline=True, device="cpu",
                      port=free_port())
    s = replace(s, models={"stable_diffusion": "tiny-random"}, api_keys=(KEY,), auth=(("u", "p"),),
                max_upload_mb=1)
    blocks = create_app(s, ("stable_diffusion",))
    launch(blocks, s, prevent_thread_lock=True, quiet=True)
    client = Client(f"http://127.0.0.1:{s.port}/", verbose=False, auth=("u", "p"))
    client.blocks = blocks
    yield client
    blocks.close()


def sdk(hub, key: str = KEY):
    import openai

    return openai.OpenAI(base_url=hub.src + "v1", api_key=key, max_retries=0, timeout=WAIT_S)


def png(b64: str) -> Image.Image:
    im = Image.open(io.BytesIO(base64.b64decode(b64)))
    im.load()
    return im


def upload(im: Image.Image, name: str = "photo.png") -> tuple[str, bytes, str]:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return name, buf.getvalue(), "image/png"


def photo(w: int = 64, h: int = 64) -> Image.Image:
    return Image.fromarray(np.random.default_rng(5).integers(0, 255, (h, w, 3), dtype=np.uint8))


def openai_mask(w: int = 64, h: int = 64) -> Image.Image:
    """OpenAI's convention: opaque = keep, transparent = repaint (here the right half)."""
    m = Image.new("RGBA", (w, h), (0, 0, 0, 255))
    m.paste((0, 0, 0, 0), (w // 2, 0, w, h))
    return m


# ---- generations --------------------------------------------------------------------------------------------------


def test_generation_b64_is_the_tabs_png_with_parameters(hub, tmp_path):
    from gradio_client import handle_file

    r = sdk(hub).images.generate(prompt="a red cube", model="dall-e-3", size="72x64", response_format="b64_json",
                                 extra_body={"seed": 7, "negative_prompt": "blurry", **QUICK})
    assert len(r.data) == 1 and r.data[0].url is None and r.data[0].revised_prompt is None
    im = png(r.data[0].b64_json)
    assert im.format == "PNG" and im.size == (72, 64)
    assert "Seed: 7" in im.text["parameters"] and "Negative prompt: blurry" in im.text["parameters"]
    record = r.model_extra["demohub"]
    assert record["seeds"] == [7] and record["model"] == "tiny-random" and record["mode"] == "txt2img"
    assert (record["steps"], record["width"], record["height"]) == (2, 72, 64) and record["device"] == "cpu"
    assert abs(r.created - time.time()) < 300
    # the tab's own reader, in Python and through the tab's /read_parameters
    params = formats.read_parameters(base64.b64decode(r.data[0].b64_json))
    assert (params["prompt"], params["seed"], params["steps"]) == ("a red cube", 7, 2)
    path = tmp_path / "made.png"
    path.write_bytes(base64.b64decode(r.data[0].b64_json))
    filled = hub.predict(handle_file(str(path)), api_name="/read_parameters")
    assert filled[0] == "a red cube" and filled[2] == 7 and filled[-1]["width"] == 72


def test_generation_urls_n2_served_by_the_hub_with_its_login(hub):
    r = sdk(hub).images.generate(prompt="a castle", n=2, response_format="url", extra_body={"seed": 3, **QUICK})
    assert [d.b64_json for d in r.data] == [None, None] and r.model_extra["demohub"]["seeds"] == [3, 4]
    urls = [d.url for d in r.data]
    assert len(set(urls)) == 2  # no server path in the answer: the hub's address and a random token
    assert all(re.fullmatch(re.escape(hub.src) + r"v1/files/stable_diffusion/[\w-]{32}\.png", u) for u in urls), urls
    for url, seed in zip(urls, (3, 4)):
        got = httpx.get(url, headers={"Authorization": f"Bearer {KEY}"}, timeout=WAIT_S)
        assert got.status_code == 200 and got.headers["content-type"] == "image/png"
        im = Image.open(io.BytesIO(got.content))
        assert im.size == (64, 64) and f"Seed: {seed}" in im.text["parameters"]  # the model's own size (64)
    assert httpx.get(urls[0], timeout=WAIT_S).status_code == 401
    assert httpx.get(urls[0], auth=("u", "p"), timeout=WAIT_S).status_code == 200
    gone = httpx.get(hub.src + "v1/files/stable_diffusion/nosuchtoken.png", headers={"Authorization": f"Bearer {KEY}"},
                     timeout=WAIT_S)
    assert gone.status_code == 404 and "kept for an hour" in gone.json()["error"]["message"]
    # The default response_format is OpenAI's: url.
    r = sdk(hub).images.generate(prompt="a castle", extra_body={"seed": 3, **QUICK})
    assert r.data[0].url and r.data[0].b64_json is None


# ---- edits --------------------------------------------------------------------------------------------------------


def test_edit_with_image_and_mask_repaints_the_transparent_part(hub):
    src = photo()
    r = sdk(hub).images.edit(image=upload(src), mask=upload(openai_mask(), "mask.png"), prompt="a door", n=2,
                             size="64x64", response_format="b64_json", extra_body={"seed": 11, **QUICK})
    assert len(r.data) == 2 and r.model_extra["demohub"]["mode"] == "inpaint"
    assert r.model_extra["demohub"]["seeds"] == [11, 12]
    ref = np.asarray(src, dtype=np.int16)
    for d in r.data:
        im = png(d.b64_json)
        assert im.size == (64, 64) and "Mode: inpaint" in im.text["parameters"]
        out = np.asarray(im.convert("RGB"), dtype=np.int16)
        assert np.array_equal(out[:, :16], ref[:, :16])  # far from the mask: kept exactly
        assert np.abs(out[:, 48:] - ref[:, 48:]).mean() > 5  # the transparent half: repainted


def test_edit_without_mask_uses_the_images_transparency_and_fits_the_size(hub):
    src = photo(100, 60).convert("RGBA")
    src.putalpha(Image.new("L", (100, 60), 255))
    src.paste((0, 0, 0, 0), (70, 20, 100, 60))
    r = sdk(hub).images.edit(image=upload(src), prompt="a window", size="128x128", response_format="url",
                             extra_body={"seed": 1, **QUICK})
    got = httpx.get(r.data[0].url, headers={"Authorization": f"Bearer {KEY}"}, timeout=WAIT_S)
    assert Image.open(io.BytesIO(got.content)).size == (128, 80)  # fitted into 128x128, shape kept


# ---- errors -------------------------------------------------------------------------------------------------------


def _fails(fn, status: int, words: str, **kw):
    import openai

    with pytest.raises(openai.APIStatusError) as info:
        fn(**kw)
    err = info.value
    assert err.status_code == status, err.response.text
    body = err.response.json()["error"]
    assert words in body["message"], body
    for leak in ("Traceback", "Error:", "/tmp/", "/work/"):
        assert leak not in body["message"]
    return body


def test_generation_errors_are_openai_shaped_sentences(hub):
    gen = sdk(hub).images.generate
    _fails(gen, 400, "prompt is empty", prompt="  ")
    body = _fails(gen, 400, "multiple of 8 from 64 to 1024", prompt="x", size="100x100")
    assert body["type"] == "invalid_request_error" and body["param"] == "size"
    _fails(gen, 400, "multiple of 8 from 64 to 1024", prompt="x", size="1792x1024")
    _fails(gen, 400, "multiple of 8", prompt="x", size="big")
    _fails(gen, 400, "from 1 to 4", prompt="x", n=5)
    _fails(gen, 400, "from 1 to 4", prompt="x", n=0)
    _fails(gen, 400, "url, b64_json", prompt="x", response_format="png")
    _fails(gen, 400, "'steps' is 0", prompt="x", extra_body={"steps": 0})
    _fails(gen, 400, "'guidance_scale' is 99", prompt="x", extra_body={"guidance_scale": 99})
    _fails(gen, 400, "'seed' is -2", prompt="x", extra_body={"seed": -2})
    _fails(gen, 400, "PNG images only", prompt="x", output_format="jpeg")
    r = httpx.post(hub.src + "v1/images/generations", json={"n": 1}, headers={"Authorization": f"Bearer {KEY}"},
                   timeout=WAIT_S)
    assert r.status_code == 400 and r.json()["error"]["message"] == "'prompt' is required."
    body = _fails(gen, 404, "no-such-model", prompt="x", model="no-such-model")
    assert body["code"] == "model_not_found" and body["param"] == "model"
    r = httpx.post(hub.src + "v1/images/generations", content=b"{nope", timeout=WAIT_S,
                   headers={"Authorization": f"Bearer {KEY}", "content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]


def test_edit_errors_are_openai_shaped_sentences(hub):
    edit = sdk(hub).images.edit
    good = dict(image=upload(photo()), mask=upload(openai_mask(), "mask.png"), prompt="x")
    _fails(edit, 400, "prompt is empty", **{**good, "prompt": ""})
    _fails(edit, 400, "from 1 to 4", **good, n=9)
    _fails(edit, 400, "multiple of 8", **good, size="65x64")
    assert _fails(edit, 404, "no-such-model", **good, model="no-such-model")["code"] == "model_not_found"
    broken = ("photo.png", upload(photo())[1][:60], "image/png")
    _fails(edit, 400, "The image is damaged", **{**good, "image": broken})
    _fails(edit, 400, "not an image", **{**good, "image": ("photo.png", b"hello", "image/png")})
    _fails(edit, 400, "empty (0 bytes)", **{**good, "image": ("photo.png", b"", "image/png")})
    _fails(edit, 400, "The mask has no transparency", **{**good, "mask": upload(Image.new("L", (64, 64), 255))})
    _fails(edit, 400, "The mask is 32x32 but the image is 64x64", **{**good, "mask": upload(openai_mask(32, 32))})
    opaque = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
    _fails(edit, 400, "no transparent pixels", **{**good, "mask": upload(opaque)})
    _fails(edit, 400, "has no transparency, and no mask was sent", image=upload(photo()), prompt="x")
    big = ("photo.png", b"\x89PNG" + bytes(2**20 + 10), "image/png")  # over the hub's 1 MB cap
    _fails(edit, 413, "larger than 1 MB", **{**good, "image": big})
    r = httpx.post(hub.src + "v1/images/edits", json={"prompt": "x"}, timeout=WAIT_S,
                   headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 400 and "multipart/form-data" in r.json()["error"]["message"]
    r = httpx.post(hub.src + "v1/images/edits", data={"prompt": "x"}, files={"mask": upload(openai_mask())},
                   headers={"Authorization": f"Bearer {KEY}"}, timeout=WAIT_S)
    assert r.status_code == 400 and "'image' is required" in r.json()["error"]["message"]
    # the server keeps serving
    r = sdk(hub).images.edit(**good, response_format="b64_json", extra_body={"seed": 2, **QUICK})
    assert png(r.data[0].b64_json).size == (64, 64)


def test_an_edits_body_over_the_cap_is_refused_before_it_is_read(hub):
    """Issue #33: the cap is on the whole request (image and mask, at most the upload cap each), from its declared
    length before reading, and while it streams in when it declares none."""
    import socket

    import httpx

    host = hub.src.split("//", 1)[1].rstrip("/")
    with socket.create_connection((host.split(":")[0], int(host.split(":")[1])), timeout=WAIT_S) as sock:
        sock.sendall(f"POST /v1/images/edits HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {KEY}\r\n"
                     "Content-Type: multipart/form-data; boundary=b\r\n"
                     f"Content-Length: {2**30}\r\nConnection: close\r\n\r\n".encode() + b"--b\r\n")
        answer = sock.makefile("rb").read().decode()  # the hub answers without waiting for the 1 GiB
    assert answer.startswith("HTTP/1.1 413") and "at most 1 MiB each" in answer, answer[:300]

    def chunks():  # no Content-Length: 8 MiB of image, refused once past two files at the cap
        yield b'--b\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\n\r\n'
        for _ in range(128):
            yield b"\0" * 65536
        yield b'\r\n--b\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nx\r\n--b--\r\n'
    r = httpx.post(hub.src + "v1/images/edits", content=chunks(), timeout=WAIT_S,
                   headers={"content-type": "multipart/form-data; boundary=b", "Authorization": f"Bearer {KEY}"})
    assert r.status_code == 413 and "over" in r.json()["error"]["message"] and "at most 1 MiB each" in r.text
    assert r.json()["error"]["param"] == "image"


# ---- login and a client that goes away ----------------------------------------------------------------------------


def test_routes_need_hub_login(hub):
    import openai

    for bad in ("wrong", "u:wrong"):
        with pytest.raises(openai.AuthenticationError) as info:
            sdk(hub, bad).images.generate(prompt="x")
        assert info.value.status_code == 401 and "Log in" in info.value.response.json()["error"]["message"]
    with pytest.raises(openai.AuthenticationError):
        sdk(hub, "wrong").images.edit(image=upload(photo()), prompt="x")
    r = sdk(hub, "u:p").images.generate(prompt="x", response_format="b64_json", extra_body={"seed": 1, "steps": 1})
    assert png(r.data[0].b64_json).size == (64, 64)


def test_a_client_that_goes_away_stops_the_loop_and_releases_the_model(hub):
    manager = hub.blocks.hub_manager
    with manager.use("stable_diffusion", "tiny-random") as lease:
        unet = lease.engine.pipe.unet
    calls = []
    real_forward = unet.forward

    def slow_forward(*a, **kw):
        calls.append(time.monotonic())
        time.sleep(0.1)
        return real_forward(*a, **kw)

    unet.forward = slow_forward
    try:
        # the client sends its request over a socket and hangs up once the denoising loop runs (a condition, not
        # a clock: a busy machine may take long to start it)
        import json
        import socket
        from urllib.parse import urlsplit

        where = urlsplit(hub.src)
        body = json.dumps({"prompt": "slow", "steps": 150, "seed": 1}).encode()
        sock = socket.create_connection((where.hostname, where.port), timeout=WAIT_S)
        sock.sendall(f"POST /v1/images/generations HTTP/1.1\r\nHost: {where.netloc}\r\nAuthorization: Bearer {KEY}"
                     f"\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        deadline = time.monotonic() + WAIT_S
        while len(calls) < 3:
            assert time.monotonic() < deadline, "generation did not start"
            time.sleep(0.05)
        sock.close()
        deadline = time.monotonic() + WAIT_S
        while manager.status()[0]["in_use"]:
            assert time.monotonic() < deadline, "the lease was not released after the client went away"
            time.sleep(0.05)
        n = len(calls)  # the lease is held until the loop returns: no step runs after this
        assert n < 150, f"the denoising loop ran to its end ({n} steps) although the client had gone"
    finally:
        del unet.forward
    assert threading.active_count() < 200


def test_public_hub_refuses_an_unlisted_model_with_a_404(settings):
    """On a hub others can reach, only the listed models (and the operator's choice) may be asked for."""
    from dataclasses import replace

    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from demos.stable_diffusion import DEMO, SPEC
    from demos.stable_diffusion.engine import WORK, load
    from demos.stable_diffusion.openai import routes
    from hub.context import DemoContext
    from hub.models import ModelManager
    from hub.options import defaults

    s = replace(settings, host="0.0.0.0", models={"stable_diffusion": "tiny-random"})
    app = FastAPI()
    ctx = DemoContext(ModelManager(s, {"stable_diffusion": (SPEC, load, WORK)}), s, SPEC, defaults(DEMO))
    app.include_router(routes(ctx))
    client = TestClient(app)
    r = client.post("/v1/images/generations", json={"prompt": "x", "model": "someone/else"})
    assert r.status_code == 404 and "is not one of this hub's" in r.json()["error"]["message"], r.text
    assert r.json()["error"]["code"] == "model_not_found"
    r = client.post("/v1/images/generations", json={"prompt": "x", "model": "dall-e-2", "steps": 1})
    assert r.status_code == 200, r.text
    url = r.json()["data"][0]["url"]
    assert url.startswith("http://testserver/v1/files/stable_diffusion/")
    got = client.get(url.removeprefix("http://testserver"))
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"


def test_the_decoder_is_chosen_by_the_caller_and_a_bad_one_gets_a_sentence(hub):
    import openai

    client = sdk(hub)
    auto = client.images.generate(prompt="a cube", size="64x64", extra_body={"seed": 5, **QUICK})
    full = client.images.generate(prompt="a cube", size="64x64", extra_body={"seed": 5, "decoder": "full", **QUICK})
    assert auto.model_extra["demohub"]["decoder"] == "tiny"  # the CPU default
    assert full.model_extra["demohub"]["decoder"] == "full"
    with pytest.raises(openai.BadRequestError) as e:
        client.images.generate(prompt="a cube", size="64x64", extra_body={"decoder": "vae", **QUICK})
    assert "'decoder' 'vae' is not one of the choices; use one of: full, tiny." in str(e.value)
