"""Stable Diffusion's CPU fast paths: bf16 close to fp32 on the same seed, the tiny decoder as a choice (its default,
its record, its missing weights, its fetch), and which dtype a CPU gets for which model."""

from __future__ import annotations

import numpy as np
import pytest

from demos.stable_diffusion import decoder as dec
from demos.stable_diffusion import engine as sd
from demos.stable_diffusion.spec import SPEC, TINY_DECODER
from hub.device import choose
from hub.errors import UserError
from hub.weights import Weights


def _weights(tmp_path, model_id="tiny-random", source="random"):
    return Weights("stable_diffusion", SPEC.choice(model_id), source, None, tmp_path)


def psnr(a, b) -> float:
    """PSNR in dB of two 8-bit images (inf when equal)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


@pytest.fixture(scope="module")
def fp32_and_bf16(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return (sd.load(Weights("stable_diffusion", SPEC.choice("tiny-random"), "random", None, cache), "cpu", "float32"),
            sd.load(Weights("stable_diffusion", SPEC.choice("tiny-random"), "random", None, cache), "cpu", "bfloat16"))


@pytest.mark.parametrize("decoder", ["full", "tiny"])
def test_bf16_draws_the_fp32_image_of_the_same_seed(fp32_and_bf16, decoder):
    """The same random model and seed in fp32 and bf16 (the CPU fast path): the images agree (PSNR >= 30 dB; bf16
    keeps 8 bits of mantissa, the images are 8-bit)."""
    fp32, bf16 = fp32_and_bf16
    kw = dict(seed=3, steps=4, width=128, height=128, decoder=decoder)
    a, b = sd.generate(fp32, "a red cube", **kw), sd.generate(bf16, "a red cube", **kw)
    assert a.params["decoder"] == b.params["decoder"] == decoder
    assert np.asarray(a.images[0]).std() > 1  # a picture, not a flat field
    assert psnr(a.images[0], b.images[0]) >= 30, psnr(a.images[0], b.images[0])


def test_the_tiny_decoder_is_the_default_on_a_cpu_and_the_record_says_which_ran(fp32_and_bf16):
    fp32, _ = fp32_and_bf16
    assert fp32.tiny is not None and type(fp32.tiny).__name__ == "AutoencoderTiny"  # random under random weights
    auto = sd.generate(fp32, "x", seed=1, steps=1, width=64, height=64)
    full = sd.generate(fp32, "x", seed=1, steps=1, width=64, height=64, decoder="full")
    assert auto.params["decoder"] == "tiny" and full.params["decoder"] == "full"
    assert auto.images[0].size == full.images[0].size == (64, 64)
    assert np.asarray(auto.images[0]).tolist() != np.asarray(full.images[0]).tolist()  # two decoders, two images
    assert dec.default_for("cpu") == "tiny" and dec.default_for("cuda") == "full"


def test_a_bad_decoder_name_is_refused_in_one_sentence(fp32_and_bf16):
    with pytest.raises(UserError, match=r"^Decoder must be full or tiny \(auto: tiny on this machine\), not 'vae'"):
        sd.generate(fp32_and_bf16[0], "x", seed=1, steps=1, width=64, height=64, decoder="vae")
    assert dec.check_decoder("tiny (fast)", fp32_and_bf16[0], []) == "tiny"  # the tab's label works too


def test_without_its_weights_the_tiny_decoder_falls_back_to_the_full_one_and_says_how_to_get_it(tmp_path):
    from hub.settings import Settings

    offline = Settings.load({}, cache_dir=str(tmp_path), offline=True)
    weights = Weights("stable_diffusion", SPEC.choice("stabilityai/sd-turbo"), "hf", tmp_path, tmp_path)
    tiny, why = dec.load_tiny(weights, "cpu", None, offline)  # nothing cached, offline: no download attempted
    assert tiny is None and "demohub fetch stable_diffusion" in why and str(tmp_path) not in why
    engine = sd.load(_weights(tmp_path), "cpu", "float32")
    engine.tiny, engine.tiny_missing = None, why
    notes: list[str] = []
    assert dec.check_decoder("tiny", engine, notes) == "full" and notes == [why]  # said once, nothing refused
    assert dec.check_decoder(None, engine, notes := []) == "full" and notes == []  # auto: no note, nothing asked


def test_the_tiny_decoder_is_pinned_and_fetched_with_the_models(monkeypatch, tmp_path, capsys):
    import hub.weights
    from hub import cli
    from hub.settings import Settings

    assert len(TINY_DECODER.revision) == 40 and len(TINY_DECODER.sha256) == 64 and TINY_DECODER.license == "MIT"
    assert TINY_DECODER not in SPEC.models  # never offered as a model to pick
    fetched = []

    def fake_resolve(spec, choice, settings):
        fetched.append(choice.id)
        return Weights(spec.name, choice, choice.source, tmp_path, tmp_path)

    monkeypatch.setattr(hub.weights, "resolve", fake_resolve)
    assert cli._fetch(Settings.load({}, cache_dir=str(tmp_path)), "stable_diffusion", "stabilityai/sd-turbo") == 0
    assert fetched == ["stabilityai/sd-turbo", "madebyollin/taesd"]  # not SD 1.5's LCM-LoRA: another base
    fetched.clear()
    sd15 = "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert cli._fetch(Settings.load({}, cache_dir=str(tmp_path)), "stable_diffusion", sd15) == 0
    # and SD 1.5's ControlNets and the depth preprocessor's model (controlnet.py), which sd-turbo does not get
    assert fetched == [sd15, "madebyollin/taesd", "latent-consistency/lcm-lora-sdv1-5",
                       "lllyasviel/control_v11p_sd15_canny", "lllyasviel/control_v11f1p_sd15_depth",
                       "lllyasviel/control_v11p_sd15_openpose", "lllyasviel/control_v11f1e_sd15_tile",
                       "depth-anything/Depth-Anything-V2-Small-hf"]


def test_a_cpu_with_native_bf16_runs_the_listed_sd_models_in_bf16():
    for m in SPEC.models:
        if m.source != "random":
            p = choose("cpu", cpu_bf16=True, cpu_prefers=m.cpu_dtype)
            assert p.dtype == "bfloat16", m.id
            assert choose("cpu", cpu_bf16=False, cpu_prefers=m.cpu_dtype).dtype == "float32"
