"""CLIP's OpenAI-compatible `POST /v1/embeddings`, through the official `openai` SDK against a live loopback hub with
the tiny random open_clip model: equal inputs, unit norms, batch order, base64, image data URLs, limits, errors, auth.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("open_clip")
openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")

from tests import WAIT_S  # noqa: E402
from tests.conftest import free_port  # noqa: E402

MAX_INPUTS, MAX_IMAGES = 8, 2  # the operator's caps on the module's hub (DEMOHUB_CLIP_ZERO_SHOT_MAX_*)
WIDTH = 32  # the tiny model's embedding width (engine.TINY_CONFIG)


def start_hub(cache, env=None, **settings):
    """A loopback hub serving CLIP's tiny model, as conftest's `serve` (whose gradio_client cannot log in when the hub
    has users); `.src` is its base URL. Close it with `.close()`."""
    from hub.app import create_app, launch
    from hub.settings import Settings

    s = Settings.load(env or {}, cache_dir=str(cache), offline=True, device="cpu", port=free_port())
    s = replace(s, models={"clip_zero_shot": "tiny-random"}, **settings)
    blocks = create_app(s, ("clip_zero_shot",))
    launch(blocks, s, prevent_thread_lock=True, quiet=True)
    blocks.src = f"http://127.0.0.1:{s.port}/"
    return blocks


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """One hub for the module (the many error cases share it), with small operator caps."""
    env = {"DEMOHUB_CLIP_ZERO_SHOT_MAX_INPUTS": str(MAX_INPUTS), "DEMOHUB_CLIP_ZERO_SHOT_MAX_IMAGES": str(MAX_IMAGES)}
    blocks = start_hub(tmp_path_factory.mktemp("cache"), env)
    yield blocks
    blocks.close()


@pytest.fixture(scope="module")
def sdk(hub):
    return openai.OpenAI(base_url=hub.src + "v1", api_key="x", max_retries=0)


def post(hub, body, **kw):
    return httpx.post(hub.src + "v1/embeddings", json=body, timeout=WAIT_S, **kw)


def vectors(resp) -> np.ndarray:
    return np.array([d.embedding for d in resp.data], dtype=np.float32)


def data_url(image: Image.Image, fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    image.save(buf, fmt)
    return f"data:image/{fmt.lower()};base64,{base64.b64encode(buf.getvalue()).decode()}"


def photo(seed: int = 0, size=(48, 40)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def tokens(text: str) -> int:
    import open_clip

    return len(open_clip.get_tokenizer("ViT-B-32").encode(text)) + 2


# ---- what it answers --------------------------------------------------------------------------------------------


def test_equal_inputs_equal_unit_norm_vectors_in_the_input_order(sdk):
    texts = ["a cat", "a red bicycle", "a cat", "  a   cat ", "a dog on a sofa"]
    resp = sdk.embeddings.create(model="tiny-random", input=texts, encoding_format="float")
    assert resp.object == "list" and resp.model == "tiny-random"
    assert [d.index for d in resp.data] == list(range(5)) and {d.object for d in resp.data} == {"embedding"}
    v = vectors(resp)
    assert v.shape == (5, WIDTH)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-6)
    assert (v[0] == v[2]).all() and (v[0] == v[3]).all()  # equal texts (whitespace is CLIP's to ignore) are equal
    assert not np.allclose(v[0], v[1])
    for i in (1, 4, 0):  # one at a time: the same vectors, so a batch keeps its order
        alone = sdk.embeddings.create(model="tiny-random", input=texts[i], encoding_format="float")
        np.testing.assert_allclose(vectors(alone)[0], v[i], atol=1e-6)
        assert alone.usage.prompt_tokens == tokens(texts[i])
    assert resp.usage.prompt_tokens == resp.usage.total_tokens == sum(tokens(t) for t in texts)
    assert resp.demohub["truncated"] == [] and resp.demohub["images"] == []
    assert any("random weights" in n for n in resp.demohub["notes"])


def test_base64_is_little_endian_float32_of_the_same_numbers(hub, sdk):
    texts = ["a cat", "a photo of a dog"]
    floats = vectors(sdk.embeddings.create(model="tiny-random", input=texts, encoding_format="float"))
    decoded = vectors(sdk.embeddings.create(model="tiny-random", input=texts))  # the SDK asks base64 and decodes it
    assert (decoded == floats).all()
    r = post(hub, {"model": "tiny-random", "input": texts, "encoding_format": "base64"})
    assert r.status_code == 200, r.text
    raw = [np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in r.json()["data"]]
    assert (np.stack(raw) == floats).all()


def test_openai_and_default_model_names_mean_the_hubs_default(sdk):
    want = vectors(sdk.embeddings.create(model="tiny-random", input="a cat", encoding_format="float"))
    for name in ("", "default", "text-embedding-ada-002", "text-embedding-3-small"):
        resp = sdk.embeddings.create(model=name, input="a cat", encoding_format="float")
        assert resp.model == "tiny-random" and (vectors(resp) == want).all(), name
    assert len(sdk.embeddings.create(model="tiny-random", input="a cat", dimensions=WIDTH).data[0].embedding) == WIDTH


def test_an_image_data_url_is_embedded_as_an_image_in_the_same_space(hub, sdk):
    from demos.clip_zero_shot.engine import load_image

    png, jpeg = data_url(photo(1)), data_url(photo(2), "JPEG")
    resp = sdk.embeddings.create(model="tiny-random", input=["a cat", png, jpeg, "data: is text here"],
                                 encoding_format="float")
    v = vectors(resp)
    assert v.shape == (4, WIDTH) and resp.demohub["images"] == [1, 2]
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-6)
    assert not np.allclose(v[1], v[0]) and not np.allclose(v[1], v[2])
    assert resp.usage.prompt_tokens == tokens("a cat") + tokens("data: is text here")  # images count no tokens
    again = vectors(sdk.embeddings.create(model="tiny-random", input=png, encoding_format="float"))
    np.testing.assert_allclose(again[0], v[1], atol=1e-6)
    with hub.hub_manager.use("clip_zero_shot", "tiny-random") as lease:  # the engine's own image encoder
        direct = lease.engine.encode_images([load_image(photo(1))]).cpu().numpy()[0]
    np.testing.assert_allclose(v[1], direct / np.linalg.norm(direct), atol=1e-5)


def test_a_text_longer_than_the_context_is_cut_with_a_note_or_refused(hub, sdk):
    long = " ".join(["word"] * 200)
    resp = sdk.embeddings.create(model="tiny-random", input=["short", long], encoding_format="float")
    assert resp.demohub["truncated"] == [1] and "77-token" in resp.demohub["notes"][-1]
    assert resp.usage.prompt_tokens == tokens("short") + 77
    cut = vectors(sdk.embeddings.create(model="tiny-random", input=" ".join(["word"] * 75), encoding_format="float"))
    np.testing.assert_allclose(vectors(resp)[1], cut[0], atol=1e-6)  # only the first 75 words (+ start, end) read
    r = post(hub, {"model": "tiny-random", "input": ["short", long], "truncate": False})
    assert r.status_code == 400 and "input[1] is 202 tokens long" in r.json()["error"]["message"], r.text


# ---- what it refuses --------------------------------------------------------------------------------------------

def png_header_only(w: int, h: int) -> str:
    """A PNG data URL that claims w x h pixels but holds none: the hub's decoder refuses it from the header."""
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = b"IDAT" + zlib.compress(b"\x00" * 16)
    png = (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))
           + struct.pack(">I", len(idat) - 4) + idat + struct.pack(">I", zlib.crc32(idat)))
    return "data:image/png;base64," + base64.b64encode(png).decode()


BAD = [
    ({"input": ""}, "'input' is an empty string"),
    ({"input": "   "}, "'input' is blank"),
    ({"input": []}, "empty list"),
    ({"input": ["a cat", ""]}, "input[1] is an empty string"),
    ({"input": ["a cat", 3]}, "input[1] is not a string"),
    ({"input": [1, 2, 3]}, "token ids"),
    ({"input": [[1, 2], [3]]}, "token ids"),
    ({"input": None}, "must be a string or a list of strings"),
    ({"input": {"text": "a cat"}}, "must be a string or a list of strings"),
    ({}, "'input' is required"),
    ({"input": ["x"] * (MAX_INPUTS + 1)}, f"9 inputs is more than one request may hold ({MAX_INPUTS})"),
    ({"input": [data_url(photo(i)) for i in range(MAX_IMAGES + 1)]}, "3 images is more than"),
    ({"input": "a cat", "encoding_format": "binary"}, "encoding_format"),
    ({"input": "a cat", "dimensions": 0}, "'dimensions'"),
    ({"input": "a cat", "dimensions": 16}, "have 32 dimensions"),
    ({"input": "a cat", "model": 7}, "'model'"),
    ({"input": "data:image/gif;base64,R0lGODlhAQABAAAAACw="}, "PNG, JPEG or WebP"),
    ({"input": "data:image/png,rawbytes"}, "without ';base64'"),
    ({"input": "data:image/png;base64,@@notbase64@@"}, "not valid base64"),
    ({"input": "data:image/png;base64,"}, "with no data"),
    ({"input": "data:image/png;base64," + base64.b64encode(b"no picture").decode()}, "input[0] (an image data URL) is "
                                                                                      "not an image"),
    ({"input": ["a cat", png_header_only(8000, 7000)]}, "input[1] (an image data URL) is 8000x7000 (56 megapixels)"),
    ({"input": png_header_only(64, 64)}, "input[0] (an image data URL) is damaged"),
]


@pytest.mark.parametrize("body,words", BAD, ids=[w[:30] for _, w in BAD])
def test_bad_requests_are_400_sentences(hub, body, words):
    r = post(hub, {"model": "tiny-random", **body})
    err = r.json()["error"]
    assert r.status_code == 400 and words in err["message"], r.text
    assert err["type"] == "invalid_request_error" and "Error" not in err["message"]


def test_sdk_sees_openai_errors_and_the_hub_keeps_serving(hub, sdk):
    with pytest.raises(openai.NotFoundError) as e:
        sdk.embeddings.create(model="no-such-clip-model", input="a cat")
    assert e.value.code == "model_not_found" and e.value.param == "model"
    with pytest.raises(openai.BadRequestError, match="empty string"):
        sdk.embeddings.create(model="tiny-random", input="")
    r = httpx.post(hub.src + "v1/embeddings", content=b"{not json", timeout=WAIT_S,
                   headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    assert len(sdk.embeddings.create(model="tiny-random", input="still serving").data) == 1


def test_login_is_required_when_the_hub_has_users_or_api_keys(tmp_path):
    hub = start_hub(tmp_path / "cache", api_keys=("sk-1",), auth=(("u", "p"),))
    try:
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=hub.src + "v1", api_key="wrong", max_retries=0).embeddings.create(
                model="tiny-random", input="a cat")
        r = post(hub, {"input": "a cat"})
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
        for key in ("sk-1", "u:p"):  # an API key, or USER:PASSWORD of a hub user
            resp = openai.OpenAI(base_url=hub.src + "v1", api_key=key, max_retries=0).embeddings.create(
                model="tiny-random", input="a cat")
            assert len(resp.data[0].embedding) == WIDTH
    finally:
        hub.close()


def test_request_body_schema_documents_every_field():
    from demos.clip_zero_shot.openai import EmbeddingRequest

    props = EmbeddingRequest.model_json_schema()["properties"]
    assert set(props) == {"input", "model", "encoding_format", "dimensions", "truncate"}
    assert all(p.get("description") for p in props.values())
    assert json.dumps(props)  # plain JSON: usable as docs


# ---- big images (issue #33): sizes from headers first, then one at a time, downscaled while decoding -------------


def flat_png(w: int, h: int) -> bytes:
    """A one-colour w x h PNG: 49 megapixels compress to a few hundred KB."""
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (120, 90, 60)).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def test_every_image_size_is_read_from_its_header_before_any_image_is_decoded(hub, monkeypatch):
    from demos.clip_zero_shot import embeddings
    from demos.clip_zero_shot.types import ImageInput
    from hub.media import image as media_image

    decoded = []
    real = media_image.read_image
    monkeypatch.setattr(media_image, "read_image", lambda *a, **k: decoded.append(1) or real(*a, **k))
    ok = ImageInput(flat_png(64, 64), "input[0] (an image data URL)")
    huge = ImageInput(base64.b64decode(png_header_only(8000, 7000).split(",", 1)[1]), "input[1] (an image data URL)")
    with hub.hub_manager.use("clip_zero_shot", "tiny-random") as lease:
        with pytest.raises(embeddings.InputError, match=r"^input\[1\] \(an image data URL\) is 8000x7000"):
            embeddings.embed(lease.engine, [ok, huge])
    assert decoded == []  # the first image was not decoded for a request the second one refuses


def test_a_49_megapixel_image_is_decoded_small_and_one_at_a_time(hub, monkeypatch, tmp_path):
    from demos.clip_zero_shot import embeddings
    from demos.clip_zero_shot.types import ImageInput
    from tests.test_media_hostile import peak_mb

    big = flat_png(7000, 7000)
    with hub.hub_manager.use("clip_zero_shot", "tiny-random") as lease:
        engine = lease.engine
        seen = []
        real = engine.encode_images_cached
        monkeypatch.setattr(engine, "encode_images_cached", lambda pics, keys: seen.extend(pics) or real(pics, keys))
        out = embeddings.embed(engine, [ImageInput(big, "input[0]"), "a cat"])
    side = engine.model.visual.image_size
    side = min(side) if isinstance(side, (tuple, list)) else side
    assert out.vectors.shape[0] == 2 and max(seen[0].size) <= 4 * side  # decoded near the encoder's input size
    # four of them in a fresh process: one full-size picture at a time (147 MB), never four (588 MB)
    (tmp_path / "big.png").write_bytes(big)
    code = (f"from pathlib import Path\nfrom types import SimpleNamespace as N\nimport numpy as np\n"
            "from demos.clip_zero_shot.embeddings import embed\nfrom demos.clip_zero_shot.types import ImageInput\n"
            "class T:\n    def __init__(self, a): self.a = a\n    def cpu(self): return self\n"
            "    def numpy(self): return self.a\n"
            "class E:\n    context_length = 77\n    model = N(visual=N(image_size=224, output_dim=4))\n"
            "    def encode_images_cached(self, pics, keys): return T(np.ones((len(pics), 4), np.float32))\n"
            f"data = Path({str(tmp_path / 'big.png')!r}).read_bytes()\n"
            "embed(E(), [ImageInput(data, f'input[{i}]') for i in range(4)])")
    assert peak_mb(code) < 400
