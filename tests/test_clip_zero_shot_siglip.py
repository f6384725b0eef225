"""CLIP zero-shot with SigLIP 2 (sigmoid scoring) and MobileCLIP2: a 2-layer SigLIP 2 built in-process (timm ViT with
the MAP head, bidirectional text tower, logit bias) and its offline byte-level tokenizer; no downloads."""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from hub.errors import UserError
from hub.weights import resolve

pytest.importorskip("open_clip")
from demos.clip_zero_shot import SPEC, checkpoints, engine as clip  # noqa: E402


@pytest.fixture(scope="module")
def siglip(tmp_path_factory):
    from hub.settings import Settings

    s = Settings.load({}, cache_dir=str(tmp_path_factory.mktemp("cache")), offline=True, device="cpu")
    eng = clip.load(resolve(SPEC, SPEC.choice("tiny-random-siglip2"), s), "cpu", "float32")
    with __import__("torch").no_grad():  # a trained SigLIP's scale (~112) is above CLIP's clamp at 100
        eng.model.logit_scale.fill_(math.log(112.0))
        eng.model.logit_bias.fill_(-12.5)
    return clip.ClipEngine(eng.model, eng.preprocess, eng.tokenizer, "cpu", "float32", eng.name)


def photos(n=2, seed=0, size=(48, 40)):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)) for _ in range(n)]


def hand_sigmoid(model, tokenizer, images, preprocess, texts):
    """sigmoid(exp(logit_scale) * cos + logit_bias) from the model's own towers, outside the engine."""
    import torch

    with torch.no_grad():
        img = model.encode_image(torch.stack([preprocess(im) for im in images]), normalize=True)
        txt = model.encode_text(tokenizer(texts), normalize=True)
        logits = img @ txt.T * model.logit_scale.exp() + model.logit_bias
    return torch.sigmoid(logits).numpy()


def test_siglip2_is_the_real_structure_with_a_bias_and_an_offline_tokenizer(siglip):
    from open_clip.model import CustomTextCLIP

    assert isinstance(siglip.model, CustomTextCLIP) and siglip.sigmoid
    assert type(siglip.model.visual.trunk).__name__ == "VisionTransformer"
    assert siglip.model.visual.trunk.global_pool == "map" and siglip.model.visual.trunk.cls_token is None
    assert siglip.logit_scale == pytest.approx(112.0, rel=1e-5) and siglip.logit_bias == pytest.approx(-12.5)
    assert siglip.context_length == 64
    ids = siglip.tokenizer(["cat", "dog"])
    assert ids.shape == (2, 64) and not (ids[0] == ids[1]).all()  # labels stay distinct without Gemma's vocabulary


@pytest.mark.parametrize("mode", ["single", "multi"])
def test_siglip_scores_are_the_sigmoid_of_its_own_logits_in_both_modes(siglip, mode):
    imgs = photos(2, seed=4)
    res = clip.classify(siglip, imgs, "cat, dog, car", template="{}", mode=mode)
    expected = hand_sigmoid(siglip.model, siglip.tokenizer, imgs, siglip.preprocess, ["cat", "dog", "car"])
    np.testing.assert_allclose(res.scores, expected, rtol=1e-4, atol=1e-7)
    assert res.scoring == "sigmoid"
    if mode == "single":  # ranked, best named, but not pretending to be a distribution
        assert res.present(0) == [max(res.top(0), key=res.top(0).get)]
        assert not np.allclose(res.scores.sum(axis=1), 1.0)


def test_siglip_label_score_does_not_depend_on_the_other_labels_even_in_single_mode(siglip):
    imgs = photos(2, seed=5)
    a = clip.classify(siglip, imgs, "cat, dog")
    b = clip.classify(siglip, imgs, "car, cat, a red bicycle")
    np.testing.assert_allclose(a.scores[:, 0], b.scores[:, 1], rtol=1e-5)
    one = clip.classify(siglip, imgs, "cat")  # one label is a fair question for a sigmoid model
    np.testing.assert_allclose(one.scores[:, 0], a.scores[:, 0], rtol=1e-5)


def test_clip_keeps_the_softmax_and_refuses_one_label_in_single_mode(tmp_path):
    from hub.settings import Settings

    s = Settings.load({}, cache_dir=str(tmp_path), offline=True, device="cpu")
    eng = clip.load(resolve(SPEC, SPEC.choice("tiny-random"), s), "cpu", "float32")
    assert not eng.sigmoid
    res = clip.classify(eng, photos(1), "cat, dog")
    assert res.scoring == "softmax"
    np.testing.assert_allclose(res.scores.sum(axis=1), 1.0, atol=1e-5)
    with pytest.raises(UserError, match="multi-label"):
        clip.classify(eng, photos(1), "cat")


def test_siglip_threshold_marks_the_labels_present(siglip):
    img = photos(1, seed=6)
    res = clip.classify(siglip, img, "cat, dog, car", mode="multi", threshold=0.0)
    assert set(res.present(0)) == {"cat", "dog", "car"}
    mid = float(np.median(res.scores[0]))
    res = clip.classify(siglip, img, "cat, dog, car", mode="multi", threshold=mid)
    assert res.present(0) == [lab for lab, s in res.top(0).items() if s >= mid]


def test_search_with_siglip_ranks_by_its_own_cosine_similarity(siglip):
    """Search shows cosine similarities; SigLIP's sigmoid of them is monotonic, so the ranking is the same."""
    import torch

    imgs = photos(4, seed=7)
    res = clip.search_images(siglip, imgs, "a cat on a sofa")
    with torch.no_grad():
        img = siglip.model.encode_image(torch.stack([siglip.preprocess(im) for im in imgs]), normalize=True)
        txt = siglip.model.encode_text(siglip.tokenizer(["a cat on a sofa"]), normalize=True)
    np.testing.assert_allclose(res.similarities, (img @ txt.T)[:, 0].numpy(), atol=1e-5)
    assert res.order == sorted(range(4), key=lambda i: -float(res.similarities[i]))


def test_long_label_note_counts_siglip_tokens(siglip):
    long = "word " * 80
    res = clip.classify(siglip, photos(1), f"cat, {long}", template="{}")
    assert any("64-token" in n for n in res.notes)


def test_a_snapshot_without_its_tokenizer_says_what_to_do(tmp_path):
    weights = SimpleNamespace(is_random=False, path=tmp_path, hf_cache=tmp_path, cache_dir=tmp_path)
    with pytest.raises(UserError, match="tokenizer.json"):
        checkpoints.tokenizer_for("ViT-B-16-SigLIP2", weights)
    folder = checkpoints.byte_tokenizer(tmp_path / "c")  # a snapshot that has one: read from it, offline
    weights.path = folder
    tok = checkpoints.tokenizer_for("ViT-B-16-SigLIP2", weights)
    assert tok(["cat"]).shape == (1, 64)


def test_new_models_are_listed_pinned_with_license_and_size():
    for mid in ("timm/ViT-B-16-SigLIP2", "timm/ViT-L-16-SigLIP2-256", "timm/MobileCLIP2-S0-OpenCLIP"):
        c = SPEC.choice(mid)
        assert c.source == "hf" and len(c.revision) == 40 and int(c.revision, 16) >= 0
        assert c.license and c.approx_bytes > 0 and c.size_dtype == "float32"
        assert "open_clip_model.safetensors" in c.files
    assert "tokenizer.json" in SPEC.choice("timm/ViT-B-16-SigLIP2").files


def test_mobileclip2_random_build_is_the_fastvit_architecture(settings):
    choice = replace(SPEC.choice("timm/MobileCLIP2-S0-OpenCLIP"), source="random")
    eng = clip.load(resolve(SPEC, choice, settings), "cpu", "float32")
    assert not eng.sigmoid and "FastVit" in type(eng.model.visual.trunk).__name__
    assert 70e6 < sum(p.numel() for p in eng.model.parameters()) < 80e6  # MobileCLIP2-S0: 75M
    res = clip.classify(eng, photos(1), "cat, dog")
    np.testing.assert_allclose(res.scores.sum(axis=1), 1.0, atol=1e-5)


def test_siglip_through_the_tab_api_scores_each_label_on_its_own(serve, tmp_path):
    from gradio_client import handle_file

    client = serve(("clip_zero_shot",), models={"clip_zero_shot": "tiny-random-siglip2"})
    paths = []
    for i, im in enumerate(photos(2, seed=8)):
        im.save(tmp_path / f"p{i}.png")
        paths.append(str(tmp_path / f"p{i}.png"))
    gallery = [{"image": handle_file(p), "caption": None} for p in paths]
    _, chart, table, record = client.predict("tiny-random-siglip2", gallery, "cat, dog, car", "a photo of a {}.",
                                             "none", "single", 0.5, 3, api_name="/classify")
    assert record["model"] == "tiny-random-siglip2" and record["scoring"] == "sigmoid"
    assert table["headers"][:2] == ["image", "best"]
    scores = {r[0]: r[1] for r in chart["data"]}
    _, chart_one, _, _ = client.predict("tiny-random-siglip2", gallery, "dog", "a photo of a {}.", "none", "single",
                                        0.5, 3, api_name="/classify")  # one label: allowed, same score for it
    assert chart_one["data"][0][1] == pytest.approx(scores["dog"], abs=1e-4)
    ranked, ranking, _ = client.predict("tiny-random-siglip2", gallery, "a cat", api_name="/search_images")
    assert len(ranked) == 2 and [r[0] for r in ranking["data"]] == [1, 2]


def test_mobileclip2_reparameterized_image_tower_gives_the_same_embeddings():
    import open_clip
    import torch

    torch.manual_seed(0)
    model, _, pp = open_clip.create_model_and_transforms("MobileCLIP2-S0", pretrained=None)
    model.eval()
    x = pp(photos(1)[0])[None]
    with torch.no_grad():
        before = model.encode_image(x, normalize=True)
        fusable = [m for m in model.visual.trunk.modules() if hasattr(m, "reparam_conv")]
        assert fusable and all(m.reparam_conv is None for m in fusable)
        checkpoints.reparameterize(model)
        after = model.encode_image(x, normalize=True)
    assert all(m.reparam_conv is not None for m in fusable)  # every MobileOne branch set is one conv now
    torch.testing.assert_close(after, before, rtol=1e-3, atol=1e-4)


def test_embeddings_route_with_siglip_gives_unit_vectors_of_its_width_and_counts_its_tokens(siglip):
    from demos.clip_zero_shot import openai as route
    from hub.api import ApiError

    out = route.embed(siglip, ["a photo of a cat", "dog"])
    assert out.vectors.shape == (2, 32) and route.width(siglip) == 32
    np.testing.assert_allclose(np.linalg.norm(out.vectors, axis=1), 1.0, atol=1e-5)
    assert out.tokens == len("a photo of a cat") + len("dog")  # the byte stand-in: one token per byte
    with pytest.raises(ApiError, match="64-token"):
        route.embed(siglip, ["x" * 80], truncate=False)
