"""LoRAs on Stable Diffusion (issue #29): files written here for the tiny random UNet and text encoder, in kohya/A1111
and diffusers (peft) key formats, with their low-rank tensors known, so the fused weights can be checked against
weight x scale x up @ down computed here, and against the exact originals once the set changes. Then what a person
relies on: a LoRA changes the picture, `<lora:name:w>` in the prompt is the same as picking it, the fused set is
reused, a LoRA for another base model / an unknown name / a bad weight / a file that is no LoRA get one sentence,
the PNG names each LoRA with A1111's hash, and the API (gradio_client, /v1/images) does the same."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from demos.stable_diffusion import DEMO, lora
from demos.stable_diffusion import engine as sd
from hub.errors import UserError
from hub.options import DemoOptions, defaults
from hub.weights import Weights
from tests import WAIT_S

RANK = 4
ATTN2 = "down_blocks.1.attentions.0.transformer_blocks.0.attn2"  # the tiny UNet's cross-attention (32 -> 16)
TE_Q = "text_model.encoder.layers.0.self_attn.q_proj"  # the tiny text encoder (32 -> 32)


def _low_rank(seed: int, out_f: int, in_f: int):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(RANK, in_f, generator=g) * 0.5, torch.randn(out_f, RANK, generator=g) * 0.5  # down (A), up (B)


def kohya_file(path: Path, seed: int, alpha: float = 2.0, width: int = 32, text_encoder: bool = True,
               metadata: dict | None = None) -> dict:
    """A kohya/A1111 LoRA (lora_unet_* / lora_te_*, lora_down/lora_up/alpha); returns its tensors by layer."""
    down, up = _low_rank(seed, 16, width)
    tensors, parts = {}, {("unet", ATTN2 + ".to_k"): (down, up)}
    if text_encoder:  # q and out projections (diffusers tells the old format apart by the out projection's keys)
        parts[("text_encoder", TE_Q)] = _low_rank(seed + 1, 32, width)
        parts[("text_encoder", TE_Q.replace("q_proj", "out_proj"))] = _low_rank(seed + 2, 32, 32)
    for (part, name), (d, u) in parts.items():
        key = ("lora_unet_" if part == "unet" else "lora_te_") + name.replace(".", "_")
        tensors.update({f"{key}.lora_down.weight": d, f"{key}.lora_up.weight": u, f"{key}.alpha": torch.tensor(alpha)})
    save_file(tensors, str(path), metadata=metadata)
    return {k: (d, u, alpha / RANK) for k, (d, u) in parts.items()}


def diffusers_file(path: Path, seed: int) -> dict:
    """A diffusers/peft LoRA (unet.<module>.lora_A/lora_B; no alpha: scale 1)."""
    down, up = _low_rank(seed, 16, 32)
    save_file({f"unet.{ATTN2}.to_v.lora_A.weight": down, f"unet.{ATTN2}.to_v.lora_B.weight": up}, str(path))
    return {("unet", ATTN2 + ".to_v"): (down, up, 1.0)}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("loras")
    (root / "sub").mkdir()  # subfolders are read too, as A1111 reads models/Lora
    files = {
        "kohya": kohya_file(root / "kohya.safetensors", 1, metadata={
            "ss_tag_frequency": json.dumps({"10_ds": {"red cube": 9, "shiny": 4, "studio": 1}})}),
        "other": kohya_file(root / "sub" / "other.safetensors", 5, text_encoder=False,
                            metadata={"modelspec.trigger_phrase": "blue sphere, glossy"}),
        "peft": diffusers_file(root / "peft.safetensors", 3),
    }
    kohya_file(root / "xl.safetensors", 7, width=2048, text_encoder=False)  # an SDXL-wide cross-attention
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(2, 2)}, str(root / "notlora.safetensors"))
    (root / "broken.safetensors").write_bytes(b"\xff" * 64)
    return root, files


@pytest.fixture(scope="module")
def engine(folder, tmp_path_factory):
    from hub.settings import Settings

    weights = Weights("stable_diffusion", sd.SPEC.choice("tiny-random"), "random", None, tmp_path_factory.mktemp("c"))
    opts = DemoOptions({**defaults(DEMO).as_dict(), "lora_dir": str(folder[0])})
    return sd.load(weights, "cpu", "float32", options=opts, settings=Settings.load({}))


def _weight(engine, part: str, name: str) -> torch.Tensor:
    return getattr(engine.pipe, part).get_submodule(name).weight.detach().clone()


def _all(engine) -> dict:
    return {(p, k): v.detach().clone() for p in ("unet", "text_encoder")
            for k, v in getattr(engine.pipe, p).state_dict().items()}


def _pixels(result) -> np.ndarray:
    return np.asarray(result.images[0], dtype=np.int16)


def test_fused_weights_change_by_weight_scale_up_down_and_come_back_exactly(engine, folder):
    """kohya (alpha/rank) and diffusers (scale 1) formats, UNet and text encoder, two LoRAs at once: each layer
    changes by the sum of weight x scale x up @ down, nothing else changes, and a request without LoRAs gets the
    original weights back bit for bit."""
    files = folder[1]
    before = _all(engine)
    sd.generate(engine, "a cube", steps=1, seed=1, loras="kohya:0.8, peft:-1.5")
    after = _all(engine)
    expected = {}
    for name, w in (("kohya", 0.8), ("peft", -1.5)):
        for (part, layer), (down, up, scale) in files[name].items():
            key = (part, layer.removeprefix("text_model.") + ".weight")  # transformers 5: no text_model level
            expected[key] = expected.get(key, 0) + w * scale * up @ down
    for key, value in before.items():
        delta = after[key] - value
        if key in expected:
            assert torch.allclose(delta, expected[key], atol=1e-5), key
        else:
            assert torch.equal(after[key], value), f"{key} changed but no LoRA touches it"
    assert len(expected) == 4 and not any("lora" in k for _, k in after)  # fused: no adapter layers left
    sd.generate(engine, "a cube", steps=1, seed=1)
    assert all(torch.equal(v, before[k]) for k, v in _all(engine).items())


def test_a_lora_changes_the_picture_and_the_prompt_tag_is_the_same_as_picking_it(engine):
    plain = _pixels(sd.generate(engine, "a cube", steps=2, seed=3, guidance=1.0))
    picked = sd.generate(engine, "a cube", steps=2, seed=3, guidance=1.0, loras="kohya:1.5")
    tagged = sd.generate(engine, "a cube <lora:kohya:1.5>", steps=2, seed=3, guidance=1.0)
    assert np.abs(_pixels(picked) - plain).max() > 0
    assert np.array_equal(_pixels(picked), _pixels(tagged))  # the tag left the encoder's text, the LoRA applied
    assert tagged.params["prompt"] == "a cube <lora:kohya:1.5>"  # the record keeps the raw prompt
    zero = sd.generate(engine, "a cube <lora:kohya:0>", steps=2, seed=3, guidance=1.0)  # weight 0: no LoRA at all
    assert np.array_equal(_pixels(zero), plain) and "loras" not in zero.params


def test_the_same_set_is_reused_and_a_new_set_refuses(engine, monkeypatch):
    loads = []
    real = engine.pipe.load_lora_weights
    monkeypatch.setattr(engine.pipe, "load_lora_weights", lambda *a, **kw: (loads.append(kw), real(*a, **kw))[1])
    sd.generate(engine, "x", steps=1, seed=1, loras="other:0.5")
    sd.generate(engine, "x <lora:other:0.5>", steps=1, seed=2)
    assert len(loads) == 1 and engine.loras.fused[0][:2] == ("other", 0.5)
    sd.generate(engine, "x", steps=1, seed=1, loras="other:0.7")  # another weight: fused again
    assert len(loads) == 2


@pytest.mark.parametrize("loras, said", [
    ("xl:1", "LoRA 'xl' was made for SDXL and the loaded model tiny-random is"),
    ("nosuch:1", "There is no LoRA named 'nosuch' on this hub; use one of: broken, kohya, notlora, other, peft"),
    ("../kohya:1", "There is no LoRA named '../kohya'"),  # names only from the listing, never a path
    ("kohya:lots", "The weight of LoRA 'kohya' must be a number, not 'lots'; use a number from -4 to 4"),
    ("kohya:9", "The weight of LoRA 'kohya' is 9"),
    ("notlora:1", "'notlora' is not a LoRA (its file has no lora_down / lora_A weights)"),
    ("broken:1", "broken.safetensors is not a safetensors file"),
    (",".join(f"n{i}" for i in range(9)), "9 LoRAs were asked for; use at most 8 at once"),
])
def test_bad_loras_get_one_sentence_before_any_work(engine, loras, said):
    with pytest.raises(UserError) as e:
        sd.generate(engine, "x", steps=1, seed=1, loras=loras)
    assert str(e.value).startswith(said) and "Error" not in str(e.value)
    assert str(e.value).count(". ") <= 1


def test_png_and_record_name_each_lora_with_a1111s_hash(engine, folder, tmp_path):
    from PIL import Image

    from demos.stable_diffusion import formats

    data = (folder[0] / "kohya.safetensors").read_bytes()
    n = int.from_bytes(data[:8], "little")
    addnet = hashlib.sha256(data[8 + n:]).hexdigest()[:12]  # kohya's addnet hash: the file after its header
    r = sd.generate(engine, "a cube <lora:peft:0.5>", steps=1, seed=4, loras="kohya:0.8")
    assert {x["name"]: (x["weight"], x["hash"]) for x in r.params["loras"]}["kohya"] == (0.8, addnet)
    (path,) = r.save(tmp_path)
    text = Image.open(path).text["parameters"]
    peft_hash = r.params["loras"][1]["hash"]
    assert f'Lora hashes: "kohya: {addnet}, peft: {peft_hash}"' in text
    # picked in the tab: written as a tag too, so AUTOMATIC1111 applies it; the prompt's own tag is not repeated
    assert text.startswith("a cube <lora:peft:0.5> <lora:kohya:0.8>\n")
    back = formats.read_parameters(path)
    assert back["loras"] == r.params["loras"] and back["prompt"] == "a cube <lora:peft:0.5>"


def test_listing_names_trigger_words_and_base(folder):
    rows = {r["id"]: r for r in lora.listing(folder[0], None)}
    assert set(rows) == {"kohya", "other", "peft", "xl", "notlora"}  # broken: not offered
    assert rows["kohya"]["trigger_words"] == ["red cube", "shiny", "studio"]
    assert rows["other"]["trigger_words"] == ["blue sphere", "glossy"]
    assert rows["xl"]["base"] == "SDXL" and rows["kohya"]["base"] == "32-wide" and rows["other"]["source"] == "folder"


def test_a_pinned_hub_lora_is_listed_once_fetched(folder, tmp_path, monkeypatch):
    from demos.stable_diffusion import spec

    pin = spec.ModelChoice("someone/lora", "hf", revision="a" * 40, files=("w.safetensors",),
                           options={"name": "pinned-one", "file": "w.safetensors"})
    monkeypatch.setattr(spec, "LORA_PINS", (pin,))
    assert "pinned-one" not in lora.available(folder[0], tmp_path)  # not fetched: not listed
    snap = tmp_path / "hf" / "models--someone--lora" / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    kohya_file(snap / "w.safetensors", 9)
    found = lora.available(folder[0], tmp_path)
    assert found["pinned-one"].source == "pinned" and "kohya" in found


def test_tags_are_split_linearly_and_the_text_parsed():
    from tests.test_redos import finishes

    assert lora.split_tags("a <lora:x:0.5> cat <lora:y>") == ("a  cat ", [("x", "0.5"), ("y", "1")])
    assert lora.split_tags("a <lora:never closed") == ("a <lora:never closed", [])
    assert lora.parse_text(" a:0.8, b ,<lora:c:2>") == [("a", "0.8"), ("b", "1"), ("c", "2")]
    for text in ("<lora:" * 20_000, "<lora:a>" * 12_000, "<" * 100_000 + "lora:"):
        finishes(lora.split_tags, text)
    assert isinstance(finishes(lora.parse_text, "a:1," * 30_000), UserError)


def test_the_api_takes_loras_and_lists_them(serve, folder):
    import requests
    from gradio_client import Client

    client: Client = serve(("stable_diffusion",), {"stable_diffusion": "tiny-random"},
                           env={"DEMOHUB_STABLE_DIFFUSION_LORA_DIR": str(folder[0])})
    common = dict(model="tiny-random", seed=5, steps=1, guidance_scale=1.0, scheduler="Euler", width=64, height=64,
                  num_images=1, decoder="tiny")
    *_, record = client.predict(prompt="a cube", loras="kohya:0.8", **common, api_name="/generate_image")
    assert [x["name"] for x in record["loras"]] == ["kohya"]
    with pytest.raises(Exception, match="There is no LoRA named 'nope'"):
        client.predict(prompt="a cube", loras="nope", **common, api_name="/generate_image")
    url = client.src.rstrip("/")
    listed = requests.get(f"{url}/v1/images/loras", timeout=WAIT_S).json()
    assert listed["object"] == "list" and "kohya" in [r["id"] for r in listed["data"]]
    body = {"prompt": "a cube", "size": "64x64", "steps": 1, "seed": 5, "response_format": "b64_json",
            "loras": [{"name": "kohya", "weight": 0.8}]}
    r = requests.post(f"{url}/v1/images/generations", json=body, timeout=WAIT_S)
    assert r.status_code == 200 and r.json()["demohub"]["loras"][0]["hash"] == record["loras"][0]["hash"]
    bad = requests.post(f"{url}/v1/images/generations", json={**body, "loras": [{"name": "kohya", "weight": "x"}]},
                        timeout=WAIT_S)
    assert bad.status_code == 400 and "The weight of LoRA 'kohya' must be a number" in bad.json()["error"]["message"]
    xl = requests.post(f"{url}/v1/images/generations", json={**body, "loras": "xl:1"}, timeout=WAIT_S)
    assert xl.status_code == 400 and "was made for SDXL" in xl.json()["error"]["message"]


def test_restore_survives_a_failed_load(engine, monkeypatch):
    sd.generate(engine, "x", steps=1, seed=1)  # no LoRA: the original weights
    before = _all(engine)
    sd.generate(engine, "x", steps=1, seed=1, loras="kohya:1")

    def broken(*a, **kw):
        raise RuntimeError("size mismatch for lora_A")

    monkeypatch.setattr(engine.pipe, "load_lora_weights", broken)
    with pytest.raises(UserError, match="could not be applied to tiny-random"):
        sd.generate(engine, "x", steps=1, seed=1, loras="peft:1")
    assert engine.loras.fused == () and all(torch.equal(v, before[k]) for k, v in _all(engine).items())
    from peft.tuners.tuners_utils import BaseTunerLayer

    assert not any(isinstance(m, BaseTunerLayer) for m in engine.pipe.unet.modules())  # no adapter left behind
