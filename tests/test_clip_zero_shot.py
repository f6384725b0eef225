"""CLIP zero-shot: scoring modes, the label cache, template ensembles, search ranking, bad inputs, weights.

Every test runs a tiny random open_clip model (2 layers, 32x32 images) built in-process: no downloads.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from hub.errors import UserError
from hub.weights import resolve

pytest.importorskip("open_clip")
from demos.clip_zero_shot import SPEC, engine as clip, fast  # noqa: E402


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from hub.settings import Settings

    s = Settings.load({}, cache_dir=str(tmp_path_factory.mktemp("cache")), offline=True, device="cpu")
    return clip.load(resolve(SPEC, SPEC.choice("tiny-random"), s), "cpu", "float32")


def photos(n=3, seed=0, size=(48, 40)):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)) for _ in range(n)]


# ---- scoring --------------------------------------------------------------------------------------------------


def test_single_label_scores_are_a_distribution_per_image(engine):
    res = clip.classify(engine, photos(3), "cat, dog, car, tree")
    assert res.scores.shape == (3, 4) and res.labels == ["cat", "dog", "car", "tree"]
    np.testing.assert_allclose(res.scores.sum(axis=1), 1.0, atol=1e-5)
    assert (res.scores > 0).all()
    top = res.top(0, k=2)
    assert list(top.values()) == sorted(res.scores[0], reverse=True)[:2]


def test_multi_label_score_of_a_label_does_not_depend_on_the_other_labels(engine):
    imgs = photos(2, seed=1)
    a = clip.classify(engine, imgs, "cat, dog", mode="multi")
    b = clip.classify(engine, imgs, "car, cat, a red bicycle, tree", mode="multi")
    np.testing.assert_allclose(a.scores[:, 0], b.scores[:, 1], atol=1e-6)
    single_a = clip.classify(engine, imgs, "cat, dog")
    single_b = clip.classify(engine, imgs, "car, cat, a red bicycle, tree")
    assert not np.allclose(single_a.scores[:, 0], single_b.scores[:, 1])  # softmax does depend on them
    assert ((b.scores > 0) & (b.scores < 1)).all()


def test_multi_label_threshold_decides_which_labels_are_present(engine):
    img = photos(1, seed=2)
    res = clip.classify(engine, img, "cat, dog, car", mode="multi", threshold=0.0)
    assert set(res.present(0)) == {"cat", "dog", "car"}
    res = clip.classify(engine, img, "cat, dog, car", mode="multi", threshold=1.0)
    assert res.present(0) == []
    mid = float(np.median(res.scores[0]))
    res = clip.classify(engine, img, "cat, dog, car", mode="multi", threshold=mid)
    assert res.present(0) == [lab for lab, s in res.top(0).items() if s >= mid]


def test_models_with_a_logit_bias_score_each_label_with_a_sigmoid(engine, monkeypatch):
    img = photos(1, seed=3)
    monkeypatch.setattr(engine, "logit_bias", -3.0)
    res = clip.classify(engine, img, "cat, dog", mode="multi")
    text = engine.label_embeddings(["cat", "dog"], (clip.DEFAULT_TEMPLATE,))
    cos = (engine.encode_images(img) @ text.T).numpy()
    np.testing.assert_allclose(res.scores, 1 / (1 + np.exp(-(engine.logit_scale * cos - 3.0))), atol=1e-5)


def test_half_precision_engine_matches_fp32(engine):
    """The GPU path's dtype plumbing (open_clip fp16 mixed precision), checked on the CPU with the tiny model."""
    import open_clip

    half, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None, precision="fp16",
                                                                **clip.TINY_CONFIG)
    half.load_state_dict(engine.model.state_dict())
    eng16 = clip.ClipEngine(half, preprocess, engine.tokenizer, "cpu", "float16", "tiny-fp16")
    assert str(eng16.input_dtype) == "torch.float16"
    img = photos(2, seed=13)
    np.testing.assert_allclose(clip.classify(eng16, img, "cat, dog, car").scores,
                               clip.classify(engine, img, "cat, dog, car").scores, atol=2e-2)


def test_gpu_preprocessing_gives_open_clips_own_pixels():
    """On CUDA, open_clip's own eval transform (Resize, CenterCrop, Normalize) runs on the uploaded uint8 tensor;
    run here on the CPU, it gives the PIL path's pixels: a real photo and noise, landscape and portrait, down- and
    upscaled."""
    import open_clip
    from torchvision import transforms as T

    from hub.assets import package_file

    preprocess = open_clip.image_transform(224, is_train=False)  # ViT-B-32's eval transform
    steps = fast.tensor_transforms(preprocess)
    assert steps is not None and "to_float" in steps
    bus = Image.open(package_file("ultralytics", "assets", "bus.jpg")).convert("RGB")
    for im, max_diff in [(bus, 0.1), (photos(1, 1, (640, 480))[0], 0.1), (photos(1, 2, (480, 640))[0], 0.1),
                         (photos(1, 3, (100, 50))[0], 0.5)]:
        want, got = preprocess(im), fast.apply_tensor_transforms(steps, im, "cpu")
        assert got.shape == want.shape == (3, 224, 224)
        diff = (got - want).abs()
        assert float(diff.mean()) < 0.005 and float(diff.max()) < max_diff, (im.size, diff.mean(), diff.max())
    # a transform with a step that only knows PIL images keeps the PIL path
    assert fast.tensor_transforms(T.Compose([T.Resize(8), T.Lambda(lambda im: im)])) is None


def test_engine_with_gpu_preprocessing_scores_like_the_pil_path(engine, monkeypatch):
    img = photos(3, seed=21)
    want = clip.classify(engine, img, "cat, dog, car").scores
    monkeypatch.setattr(engine, "tensor_transforms", fast.tensor_transforms(engine.preprocess))
    assert engine.tensor_transforms is not None
    np.testing.assert_allclose(clip.classify(engine, img, "cat, dog, car").scores, want, atol=1e-2)


# ---- caches ---------------------------------------------------------------------------------------------------


def test_same_labels_again_encode_only_the_image(engine):
    labels = "zebra, giraffe, okapi"
    clip.classify(engine, photos(1, seed=4), labels)
    calls, texts, images = engine.text_encoder_calls, engine.texts_encoded, engine.images_encoded
    clip.classify(engine, photos(2, seed=5), labels)
    assert engine.text_encoder_calls == calls and engine.texts_encoded == texts
    assert engine.images_encoded == images + 2
    clip.classify(engine, photos(1, seed=5), "zebra, giraffe, okapi, tapir")  # one new label: one new text
    assert engine.texts_encoded == texts + 1
    clip.classify(engine, photos(1, seed=5), labels, template="a drawing of a {}.")  # new template: all again
    assert engine.texts_encoded == texts + 1 + 3


def test_label_cache_is_bounded(engine, monkeypatch):
    monkeypatch.setattr(engine, "label_cache", clip._LRU(4))
    clip.classify(engine, photos(1), "a, b, c, d, e, f")
    assert len(engine.label_cache) == 4
    before = engine.texts_encoded
    clip.classify(engine, photos(1), "a, b")  # evicted first, so encoded again
    assert engine.texts_encoded == before + 2


def test_template_ensemble_changes_the_text_embedding(engine):
    one = clip.templates_for(clip.DEFAULT_TEMPLATE, "none")
    simple = clip.templates_for(clip.DEFAULT_TEMPLATE, "simple")
    openai = clip.templates_for(clip.DEFAULT_TEMPLATE, "openai")
    assert len(one) == 1 and len(simple) == 7 and len(openai) == 80
    assert all("{}" in t for t in simple + openai)
    before = engine.texts_encoded
    e1 = engine.label_embeddings(["lighthouse"], one)
    e7 = engine.label_embeddings(["lighthouse"], simple)
    assert engine.texts_encoded == before + 1 + 7
    assert float((e1 - e7).abs().max()) > 1e-4
    np.testing.assert_allclose(float(e7.norm()), 1.0, atol=1e-5)  # the averaged embedding is renormalised
    assert not np.allclose(clip.classify(engine, photos(1), "cat, dog").scores,
                           clip.classify(engine, photos(1), "cat, dog", ensemble="simple").scores)


# ---- search ---------------------------------------------------------------------------------------------------


def test_search_ranks_by_similarity_and_reuses_image_embeddings(engine):
    gallery = photos(5, seed=7)
    res = clip.search_images(engine, gallery, "a red car")
    sims = (engine.encode_images(gallery) @ engine.encode_texts(["a red car"]).T)[:, 0].numpy()
    np.testing.assert_allclose(res.similarities, sims, atol=1e-5)
    assert res.order == list(np.argsort(-sims))
    assert sorted(res.order) == list(range(5))
    encoded = engine.images_encoded
    clip.search_images(engine, gallery, "a blue boat")  # same gallery: only the query is encoded
    assert engine.images_encoded == encoded


# ---- bad input --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("labels, words", [
    ("", "Type some candidate labels"),
    (" , ,", "Type some candidate labels"),
    ("cat,,dog", "blank"),
    ("cat\n\ndog", "blank"),
    ("cat, dog, Cat", "listed twice"),
])
def test_bad_label_lists_say_what_to_do(engine, labels, words):
    with pytest.raises(UserError, match=words):
        clip.classify(engine, photos(1), labels)


@pytest.mark.parametrize("kw, words", [
    ({"mode": "multi", "threshold": 1.5}, "threshold is 1.5, which is out of range; use a number from 0 to 1"),
    ({"mode": "multi", "threshold": -0.1}, "out of range"),
    ({"mode": "multi", "threshold": float("nan")}, "must be a real number"),
    ({"mode": "multi", "threshold": None}, "threshold is missing"),
    ({"mode": "multi", "threshold": "0.5"}, "must be a number"),
    ({"mode": "single", "threshold": 7}, "out of range"),  # unused in single-label mode, but refused, not ignored
    ({"mode": "softmax"}, "mode 'softmax' is not one of the choices; use one of: single, multi"),
    ({"ensemble": "all"}, "ensemble 'all' is not one of the choices; use one of: none, simple, openai"),
])
def test_numbers_and_choices_out_of_range_are_refused_before_any_work(engine, kw, words):
    """hub.validate's one policy: refuse with its sentence, never clamp; nothing is encoded first."""
    before = (engine.texts_encoded, engine.images_encoded)
    with pytest.raises(UserError, match=words):
        clip.classify(engine, photos(1), "cat, dog", **kw)
    assert (engine.texts_encoded, engine.images_encoded) == before


def test_single_label_mode_accepts_no_threshold(engine):
    res = clip.classify(engine, photos(1), "cat, dog", threshold=None)
    assert res.threshold is None and res.scores.shape == (1, 2)


def test_operator_options_become_the_engines_caps(settings):
    from hub.options import DemoOptions, defaults, parse

    from demos.clip_zero_shot import DEMO

    assert defaults(DEMO).as_dict() == {"max_labels": 100, "max_images": 256, "max_inputs": 2048}
    opts = parse(DEMO, {"DEMOHUB_CLIP_ZERO_SHOT_MAX_LABELS": "2", "DEMOHUB_CLIP_ZERO_SHOT_MAX_IMAGES": "1"})
    assert isinstance(opts, DemoOptions) and (opts.max_labels, opts.max_images) == (2, 1)
    from hub.errors import SettingsError

    with pytest.raises(SettingsError, match="DEMOHUB_CLIP_ZERO_SHOT_MAX_IMAGES='0' is out of range"):
        parse(DEMO, {"DEMOHUB_CLIP_ZERO_SHOT_MAX_IMAGES": "0"})
    eng = clip.load(resolve(SPEC, SPEC.choice("tiny-random"), settings), "cpu", "float32", options=opts)
    assert (eng.max_labels, eng.max_images) == (2, 1)
    with pytest.raises(UserError, match="more than this hub allows \\(2\\)"):
        clip.classify(eng, photos(1), "a, b, c")
    with pytest.raises(UserError, match="2 images is more than one request may hold \\(1\\)"):
        clip.search_images(eng, photos(2), "a cat")
    assert clip.classify(eng, photos(1), "a, b, c", max_labels=3).scores.shape == (1, 3)  # an explicit cap wins


def test_package_imports_neither_torch_nor_gradio():
    import subprocess
    import sys

    code = ("import sys, demos.clip_zero_shot as c; assert c.DEMO.spec is c.SPEC; "
            "heavy = [m for m in ('torch', 'gradio', 'open_clip', 'torchvision') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_newlines_split_labels_and_keep_their_commas():
    assert clip.parse_labels("a dog, running\na cat\n") == ["a dog, running", "a cat"]
    assert clip.parse_labels("cat,  dog ,car,") == ["cat", "dog", "car"]


def test_one_label_in_single_label_mode_suggests_multi_label(engine):
    with pytest.raises(UserError, match="multi-label"):
        clip.classify(engine, photos(1), "cat")
    res = clip.classify(engine, photos(1), "cat", mode="multi")
    assert res.scores.shape == (1, 1) and 0 < res.scores[0, 0] < 1


def test_label_cap(engine):
    with pytest.raises(UserError, match="more than this hub allows \\(3\\)"):
        clip.classify(engine, photos(1), "a, b, c, d", max_labels=3)


def test_label_longer_than_the_context_is_truncated_with_a_note(engine):
    long = "a very long description of a scene " * 20
    res = clip.classify(engine, photos(1), [long, "cat"])
    assert len(res.notes) == 1 and "77-token" in res.notes[0] and "only its beginning" in res.notes[0]
    np.testing.assert_allclose(res.scores.sum(), 1.0, atol=1e-5)


def test_template_without_a_slot(engine):
    with pytest.raises(UserError, match="needs \\{\\}"):
        clip.classify(engine, photos(1), "cat, dog", template="a photo")


def test_non_image_and_missing_images(engine, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    with pytest.raises(UserError, match="notes.txt is not an image"):
        clip.classify(engine, [str(text)], "cat, dog")
    with pytest.raises(UserError, match="Upload at least one image"):
        clip.classify(engine, [], "cat, dog")
    with pytest.raises(UserError, match="Type a text query"):
        clip.search_images(engine, photos(2), "   ")


def _png_header_only(path, w, h):
    """A PNG that claims w x h pixels but holds no pixel data: refused before anything is decoded."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    idat = b"IDAT" + zlib.compress(b"\x00" * 16)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
                     + struct.pack(">I", len(idat) - 4) + idat + struct.pack(">I", zlib.crc32(idat)))
    return str(path)


def test_huge_and_truncated_images(engine, tmp_path):
    """The hub's decoder's sentences (hub.media.image): its 50 MP cap, PIL's bomb limit, damaged data."""
    with pytest.raises(UserError, match="'big.png' is 8000x7000 .*50 megapixels.*downscale"):
        clip.classify(engine, [_png_header_only(tmp_path / "big.png", 8000, 7000)], "cat, dog")
    with pytest.raises(UserError, match="far too many pixels.*downscale"):  # past PIL's own bomb limit
        clip.classify(engine, [_png_header_only(tmp_path / "huge.png", 20000, 20000)], "cat, dog")
    with pytest.raises(UserError, match="'cut.png' is damaged"):
        clip.classify(engine, [_png_header_only(tmp_path / "cut.png", 64, 64)], "cat, dog")


def test_odd_image_modes_become_rgb(engine, tmp_path):
    grey16 = Image.fromarray((np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16))
    assert grey16.mode.startswith("I")
    rgb = np.asarray(clip.load_image(grey16))
    assert rgb.shape == (64, 64, 3) and rgb.min() == 0 and rgb.max() == 255  # full 16-bit range: /257, not clipped
    dim = tmp_path / "dim16.png"  # the hub's policy (the old CLIP decoder stretched this to 0..255): stays dim
    Image.fromarray(np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) % 1029).save(dim)
    assert np.asarray(clip.load_image(str(dim))).max() == 4  # 1028 / 257
    clear = Image.new("RGBA", (8, 8), (10, 20, 30, 0))
    assert clip.load_image(clear).getpixel((0, 0)) == (10, 20, 30)  # alpha dropped, the colour under it kept
    assert clip.load_image([{"image": {"path": str(dim)}, "caption": None}][0]).size == (64, 64)  # gallery dict
    with pytest.raises(UserError, match="Upload an image file"):
        clip.load_image(5)
    cmyk = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (40, 30), (0, 255, 255, 0)).save(cmyk)
    pal = Image.new("P", (20, 20))
    odd = [str(cmyk), pal, Image.new("1", (30, 30)), Image.new("LA", (16, 16)), Image.new("F", (16, 16))]
    res = clip.classify(engine, odd, "cat, dog")
    assert res.scores.shape == (5, 2)


# ---- local checkpoint -------------------------------------------------------------------------------------------


def test_local_open_clip_folder_loads_its_weights(engine, tmp_path, settings):
    from safetensors.torch import save_file

    folder = tmp_path / "my-clip"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": clip.TINY_CONFIG, "preprocess_cfg": {}}))
    save_file({k: v.contiguous() for k, v in engine.model.state_dict().items()}, folder / "open_clip_model.safetensors")
    from hub.weights import choice_for

    choice = choice_for(SPEC, str(folder))
    assert choice.source == "path"
    local = clip.load(resolve(SPEC, choice, settings), "cpu", "float32")
    img = photos(1, seed=9)
    np.testing.assert_allclose(clip.classify(local, img, "cat, dog").scores,
                               clip.classify(engine, img, "cat, dog").scores, atol=1e-5)


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    """A random ViT-S-32-alt (a small built-in open_clip architecture) and its weights as safetensors."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    small = open_clip.create_model("ViT-S-32-alt", pretrained=None).eval()
    path = tmp_path_factory.mktemp("ckpt") / "my_clip.safetensors"
    save_file({k: v.contiguous() for k, v in small.state_dict().items()}, path)
    return small, path


def _same_image_embeddings(eng, reference):
    import torch

    img = photos(1, seed=12)
    with torch.no_grad():
        want = reference.encode_image(eng.preprocess(img[0])[None], normalize=True)
    np.testing.assert_allclose(eng.encode_images(img).numpy(), want.numpy(), atol=1e-5)


def test_single_checkpoint_file_is_recognised_by_its_shapes(small_checkpoint, tmp_path, settings):
    from safetensors.torch import save_file

    from hub.weights import choice_for

    small, path = small_checkpoint
    eng = clip.load(resolve(SPEC, choice_for(SPEC, str(path)), settings), "cpu", "float32")
    _same_image_embeddings(eng, small)

    odd = tmp_path / "odd.safetensors"  # the tiny test config matches no built-in architecture
    tiny = clip.load(resolve(SPEC, SPEC.choice("tiny-random"), settings), "cpu", "float32")
    save_file({k: v.contiguous() for k, v in tiny.model.state_dict().items()}, odd)
    with pytest.raises(UserError, match="no built-in open_clip architecture"):
        clip.load(resolve(SPEC, choice_for(SPEC, str(odd)), settings), "cpu", "float32")


def test_hf_snapshot_loads_into_the_listed_architecture_with_its_preprocessing(small_checkpoint, tmp_path,
                                                                               settings, monkeypatch):
    """What `demohub fetch` leaves in the cache (a snapshot folder) loads with the choice's arch, QuickGELU
    and open_clip's pretrained preprocessing table (ViT-S-32-alt stands in for ViT-B-32: same code path)."""
    import shutil

    import open_clip

    from hub.weights import Weights

    small, path = small_checkpoint
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    shutil.copy(path, snapshot / "open_clip_model.safetensors")
    listed = SPEC.choice("laion/CLIP-ViT-B-32-laion2B-s34B-b79K")
    choice = replace(listed, options={**listed.options, "arch": "ViT-S-32-alt", "quick_gelu": False})
    table = {"mean": (0.1, 0.2, 0.3), "std": (0.5, 0.5, 0.5), "interpolation": "bicubic", "resize_mode": "shortest"}
    seen = []
    monkeypatch.setattr(open_clip, "get_pretrained_cfg", lambda arch, tag: seen.append((arch, tag)) or table)
    eng = clip.load(Weights("clip_zero_shot", choice, "hf", snapshot, settings.cache_dir), "cpu", "float32")
    assert seen == [("ViT-S-32-alt", "laion2b_s34b_b79k")]
    normalize = eng.preprocess.transforms[-1]
    assert tuple(normalize.mean) == (0.1, 0.2, 0.3)
    _same_image_embeddings(eng, small)


def test_folder_without_config_says_what_to_use(tmp_path, settings):
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "readme.md").write_text("hi")
    from hub.weights import choice_for

    with pytest.raises(UserError, match="open_clip_config.json"):
        clip.load(resolve(SPEC, choice_for(SPEC, str(folder)), settings), "cpu", "float32")


def test_random_weights_build_the_real_architecture(settings):
    choice = replace(SPEC.choice("laion/CLIP-ViT-B-32-laion2B-s34B-b79K"), source="random")
    eng = clip.load(resolve(SPEC, choice, settings), "cpu", "float32")
    assert 140e6 < sum(p.numel() for p in eng.model.parameters()) < 160e6  # ViT-B/32: 151M parameters
    assert eng.preprocess(photos(1)[0]).shape == (3, 224, 224)
