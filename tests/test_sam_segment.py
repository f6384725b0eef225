"""SAM tab: cached embeddings, coordinate mapping, sessions, outputs, segment-everything, bad inputs, the API."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from demos.sam_segment import SPEC, arch
from demos.sam_segment import engine as S
from demos.sam_segment import everything as E
from demos.sam_segment import formats as F
from demos.sam_segment.store import EmbeddingStore
from hub.errors import CorruptWeights, UserError
from hub.weights import Weights


def _weights(model="tiny-random", source="random", path=None, cache=Path("/nonexistent")):
    return Weights("sam_segment", SPEC.choice(model) or SPEC.models[0], source, path, cache)


@pytest.fixture(scope="module")
def engine():
    return S.load(_weights(), "cpu", "float32")


def _photo(w=160, h=96, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


# ---- a model whose output is forced: the mask is a disk around each prompt point (and box corner) --------------


def _forced_engine(radius_lowres=2.0):
    """A tiny SAM whose decoder paints a disk around every prompt, in the model's own input frame."""
    import torch

    sam = arch.build("tiny")

    class Prompt(torch.nn.Module):
        def forward(self, points, boxes, masks):
            parts = []
            if points is not None:
                parts.append(points[0])
            if boxes is not None:
                parts.append(boxes.reshape(boxes.shape[0], 2, 2))
            return torch.cat(parts, 1), None

        def get_dense_pe(self):
            return None

    class Decoder(torch.nn.Module):
        def forward(self, image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings,
                    multimask_output):
            side = image_embeddings.shape[-1] * 4  # SAM's low-res masks are 4x the embedding grid
            scale = sam.image_encoder.img_size / side
            yy, xx = torch.meshgrid(torch.arange(side) + 0.5, torch.arange(side) + 0.5, indexing="ij")
            logits = torch.full((side, side), -10.0)
            for x, y in sparse_prompt_embeddings[0]:
                d = torch.sqrt((xx - x / scale) ** 2 + (yy - y / scale) ** 2)
                logits = torch.maximum(logits, radius_lowres - d)
            k = 3 if multimask_output else 1
            return logits.expand(1, k, side, side).clone(), torch.tensor([[0.2, 0.9, 0.5][:k]])

    sam.prompt_encoder, sam.mask_decoder = Prompt(), Decoder()
    return S.SamEngine(sam, "cpu", "float32", "tiny")


def test_clicks_reuse_the_embedding(engine):
    store = EmbeddingStore(per_session=2, sessions=8)
    a, b = S.prepare_image(_photo(seed=1)), S.prepare_image(_photo(seed=2))
    before = engine.encoder_calls
    emb, hit = store.get("s1", engine.embed, a)
    assert not hit
    for x in (10, 50, 120):  # three clicks on one image
        emb, hit = store.get("s1", engine.embed, S.prepare_image(_photo(seed=1)))  # same content, new object
        assert hit
        seg = S.segment(engine, emb, [[x, 40]], [1])
        assert seg.masks.shape == (3, 96, 160)
    assert engine.encoder_calls - before == 1
    store.get("s1", engine.embed, b)  # a new image is encoded once
    store.get("s2", engine.embed, a)  # another session never sees s1's entries
    assert engine.encoder_calls - before == 3
    store.get("s1", engine.embed, S.prepare_image(_photo(seed=3)))  # per-session bound of 2 evicts s1's oldest (a)
    _, hit = store.get("s1", engine.embed, a)
    assert not hit and engine.encoder_calls - before == 5


def test_the_engines_store_is_bounded_counted_in_its_bytes_and_freed_on_close():
    eng = S.load(_weights(), "cpu", "float32")
    assert eng.extra_bytes == 0
    emb, _ = eng.embedding("s0", S.prepare_image(_photo(seed=10)))
    one = emb.features.numel() * emb.features.element_size()
    assert eng.extra_bytes == one > 0  # the manager counts the kept embeddings with the weights
    store = EmbeddingStore(per_session=5, sessions=3)  # at most three sessions: the least recently used go
    for i in range(5):
        store.get(f"s{i}", eng.embed, S.prepare_image(_photo(seed=10 + i)))
    assert len(store) == 3 and store.nbytes == 3 * one and "s0" not in store._sessions
    small = EmbeddingStore(max_bytes=2 * one)  # and at most max_bytes in all
    for i in range(4):
        small.get(f"s{i}", eng.embed, S.prepare_image(_photo(seed=20 + i)))
    assert small.nbytes <= 2 * one and len(small) == 2
    clock = [0.0]
    timed = EmbeddingStore(ttl_s=60)
    timed._sessions._clock = lambda: clock[0]
    timed.get("idle", eng.embed, S.prepare_image(_photo(seed=30)))
    clock[0] = 61.0  # a session unused for the TTL goes
    assert "idle" not in timed._sessions
    eng.close()  # unloading the model frees its embeddings (they may be GPU tensors)
    assert eng.extra_bytes == 0


def _lease(engine):
    from types import SimpleNamespace

    return SimpleNamespace(engine=engine, record=lambda **params: params)


def test_the_work_methods_keep_a_sessions_embedding_and_not_anothers():
    from demos.sam_segment.types import EmbedRequest, EverythingRequest, SegmentRequest
    from hub.work import Job

    eng = S.load(_weights(), "cpu", "float32")
    lease, pic = _lease(eng), S.prepare_image(_photo(seed=40))
    first = S.segment_request(lease, SegmentRequest(pic, [[30, 40]], [1], None, True, "alice"), Job())
    assert first.record["embedding"].startswith("computed") and first.masks.shape == (3, 96, 160)
    again = S.segment_request(lease, SegmentRequest(pic, [[90, 20]], [1], None, False, "alice"), Job())
    assert again.record["embedding"] == "cached" and len(again.scores) == 1  # carried over within the session
    bob = S.segment_request(lease, SegmentRequest(pic, [[30, 40]], [1], None, True, "bob"), Job())
    assert bob.record["embedding"].startswith("computed")  # never across sessions
    assert eng.encoder_calls == 2
    assert S.embed_request(lease, EmbedRequest(pic, "bob"), Job()).cached
    assert not S.embed_request(lease, EmbedRequest(pic, "carol"), Job()).cached
    seen = []
    job = Job(progress=lambda f, text: seen.append((f, text)))
    out = S.everything_request(lease, EverythingRequest(pic, 4, 0.0, 0.0, 0, "carol"), job)
    assert out.record["embedding"] == "cached" and out.masks and seen[0] == (0, "Encoding the image")
    assert seen[-1][0] == 1 and seen[-1][1].startswith("Decoding point batch")
    job.stop.set()  # Stop: the method ends between batches with a sentence
    with pytest.raises(E.Stopped, match="Press Segment everything"):
        S.everything_request(lease, EverythingRequest(pic, 16, 0.0, 0.0, 0, "carol"), job)
    with pytest.raises(UserError, match="Only negative points"):
        S.segment_request(lease, SegmentRequest(pic, [[30, 40]], [0], None, True, "alice"), Job())


def _same(a, b) -> bool:
    """Deep equality of plain data with numpy arrays and dataclasses inside."""
    from dataclasses import fields, is_dataclass

    if is_dataclass(a):
        return type(a) is type(b) and all(_same(getattr(a, f.name), getattr(b, f.name)) for f in fields(a))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def test_every_request_and_result_type_round_trips():
    from demos.sam_segment import types as T
    from hub.work import Job, roundtrip

    eng = S.load(_weights(), "cpu", "float32")
    lease, pic = _lease(eng), S.prepare_image(_photo(seed=41))
    requests = [T.SegmentRequest(pic, [[30, 40]], [1], [1, 2, 50, 60], True, "s"), T.EmbedRequest(pic, "s"),
                T.EverythingRequest(pic, 4, 0.0, 0.0, 0, "s"), T.TrackRequest("/tmp/clip.mp4", [[4, 3]], [1], None, 24)]
    results = [S.segment_request(lease, requests[0], Job()), S.embed_request(lease, requests[1], Job()),
               S.everything_request(lease, requests[2], Job()), T.TrackProgress(3, 12, 9.5),
               T.TrackResult("/tmp/a.mp4", "/tmp/a.zip", 12, 24.0, 128, 96, 1.5, (5, 0, 7), True, {"model": "x"})]
    for obj in requests + results:
        back = roundtrip(obj)
        assert type(back) is type(obj) and _same(back, obj)  # the same plain data
    assert sorted(S.WORK.methods) == ["embed", "segment", "segment_everything", "track_video"]


@pytest.mark.parametrize("multimask", [True, False])
@pytest.mark.parametrize("points, labels, box", [([[30, 40]], [1], None), ([[30, 40], [100, 20]], [1, 0], None),
                                                 (None, None, [10, 10, 120, 80]), ([[50, 50]], [1], [10, 10, 120, 80])])
def test_the_lean_click_path_gives_the_librarys_masks_and_scores(engine, points, labels, box, multimask):
    import torch

    assert engine._lean, "the tiny model uses segment-anything's own decoder: the lean path must be taken"
    emb = engine.embed(S.prepare_image(_photo()))
    masks, scores, low = engine.decode(emb, points, labels, box, multimask, return_logits=True)
    with torch.inference_mode():  # the library's forward, as SamPredictor.predict_torch runs it
        pts = None
        if points is not None:
            c = engine.transform.apply_coords(np.asarray(points, np.float64), emb.original_size)
            pts = (torch.as_tensor(c, dtype=torch.float)[None], torch.as_tensor(labels, dtype=torch.int)[None])
        bx = None if box is None else torch.as_tensor(
            engine.transform.apply_boxes(np.asarray(box, np.float64)[None], emb.original_size), dtype=torch.float)
        sparse, dense = engine.sam.prompt_encoder(points=pts, boxes=bx, masks=None)
        ref_low, ref_iou = engine.sam.mask_decoder(
            image_embeddings=emb.features, image_pe=engine.sam.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=multimask)
    assert low.shape == ref_low[0].shape and len(scores) == (3 if multimask else 1)
    np.testing.assert_allclose(low, ref_low[0].numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(scores, ref_iou[0].numpy(), rtol=1e-4, atol=1e-5)


def test_sdpa_attention_gives_the_librarys_encoder_output():
    """The GPU encoder's attention (fused SDPA, relative positions as its mask) equals segment-anything's own
    `Attention.forward`, in windowed and global blocks, with non-zero relative-position tables."""
    import copy

    import torch

    torch.manual_seed(0)
    encoder = arch.build("tiny").image_encoder
    with torch.no_grad():
        for name, p in encoder.named_parameters():
            if "rel_pos" in name:
                p.normal_(0, 0.5)
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        want = encoder(x)
        fast = copy.deepcopy(encoder)
        assert arch.use_sdpa_attention(fast) == 2  # one windowed and one global block
        torch.testing.assert_close(fast(x), want, atol=1e-4, rtol=1e-4)
        for blk in fast.blocks:  # without the relative-position mask the output differs: the test sees it
            blk.attn.use_rel_pos = False
        assert not torch.allclose(fast(x), want, atol=1e-3)


def test_scores_are_sorted_best_first_and_single_mask_mode():
    eng = _forced_engine()
    emb = eng.embed(S.prepare_image(_photo()))
    seg = S.segment(eng, emb, [[30, 30]], [1])
    assert seg.scores == sorted(seg.scores, reverse=True) and len(seg.masks) == 3
    assert len(S.segment(eng, emb, [[30, 30], [60, 30]], [1, 1], multimask=False).masks) == 1


@pytest.mark.parametrize("size", [(500, 300), (300, 500), (97, 211)])
def test_points_map_from_image_pixels_to_model_space(size):
    eng = _forced_engine()
    w, h = size
    emb = eng.embed(S.prepare_image(_photo(w, h)))
    for x, y in [(0.8 * w, 0.15 * h), (0.1 * w, 0.9 * h)]:
        mask = S.segment(eng, emb, [[x, y]], [1]).masks[0]
        assert mask.shape == (h, w)
        assert mask[int(y), int(x)], "the mask must cover the clicked pixel"
        ys, xs = np.nonzero(mask)
        assert abs(xs.mean() - x) < 0.05 * max(w, h) and abs(ys.mean() - y) < 0.05 * max(w, h)
        assert not mask[int(h - 1 - y) if abs(h - 1 - 2 * y) > 0.3 * h else 0, int(w - 1 - x)]


def test_box_corners_map_and_boxes_are_clipped():
    eng = _forced_engine()
    emb = eng.embed(S.prepare_image(_photo(400, 240)))
    mask = S.segment(eng, emb, box=[300, 200, 40, 20]).masks[0]  # corners in any order
    assert mask[20, 40] and mask[199, 299] and not mask[120, 170]
    clipped = S.check_prompts((400, 240), box=[-50, 10, 100, 900])
    assert clipped.box.tolist() == [0, 10, 100, 240]


def test_concurrent_sessions_with_different_images_stay_separate():
    eng = _forced_engine()
    store = EmbeddingStore()
    jobs = {"alice": (_photo(200, 120, seed=4), (150, 30)), "bob": (_photo(120, 220, seed=5), (20, 200))}
    barrier = threading.Barrier(2)

    def session(name):
        img, (x, y) = jobs[name]
        barrier.wait()
        out = []
        for _ in range(15):
            emb, _ = store.get(name, eng.embed, S.prepare_image(img))
            out.append(S.segment(eng, emb, [[x, y]], [1]).masks[0])
        return out

    with ThreadPoolExecutor(2) as pool:
        results = dict(zip(jobs, pool.map(session, jobs)))
    for name, masks in results.items():
        img, (x, y) = jobs[name]
        for m in masks:
            assert m.shape == (img.height, img.width) and m[y, x]
    assert eng.encoder_calls == 2


def test_mask_png_and_cutout_match_the_input(engine):
    rgba = np.zeros((70, 130, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    rgba[:, :10, 1], rgba[:, :10, 3] = 90, 0  # a transparent strip: the hub's decoder keeps the colour under it
    pic = S.prepare_image(Image.fromarray(rgba, "RGBA"))
    assert pic.rgb[0, 0].tolist() == [200, 90, 0] and pic.rgb[0, 50].tolist() == [200, 0, 0]
    mask = S.segment_image(engine, pic, [[60, 35]], [1]).masks[0]
    mask[:, :20] = True
    png, cut = F.mask_png(mask), F.cutout(pic, mask)
    assert png.size == cut.size == (130, 70) and png.mode == "L" and cut.mode == "RGBA"
    rgba_out = np.asarray(cut)
    alpha = rgba_out[..., 3]
    assert (alpha[mask] == 255).all() and (alpha[~mask] == 0).all() and not rgba_out[~mask].any()
    assert (rgba_out[..., :3][mask] == pic.rgb[mask]).all()
    assert (np.asarray(png) > 0).tolist() == mask.tolist()


def test_gallery_thumbnails_are_small_and_keep_the_shape():
    mask = np.zeros((768, 1024), bool)
    mask[100:400, 200:700] = True
    thumb = np.asarray(F.thumbnail(mask))
    assert max(thumb.shape) <= 256 and thumb.shape == (192, 256)
    assert thumb[25:100, 50:175].min() == 255 and thumb[:20].max() == 0
    assert F.thumbnail(mask[:90, :150]).size == (150, 90)  # small masks stay as they are


def test_disjoint_makes_masks_non_overlapping_and_sorted():
    big = np.zeros((50, 50), bool)
    big[5:35, 5:35] = True
    small = np.zeros((50, 50), bool)
    small[10:20, 10:20] = True  # inside big
    other = np.zeros((50, 50), bool)
    other[30:42, 30:42] = True  # overlaps big in one corner
    recs = [{"segmentation": m, "area": int(m.sum()), "predicted_iou": 0.9, "stability_score": 0.95}
            for m in (small, big, other)]
    found = E.disjoint(recs)
    stack = np.stack([f.mask for f in found])
    assert stack.sum(0).max() == 1
    assert [f.area for f in found] == sorted((f.area for f in found), reverse=True)
    assert found[-1].area == 100 and found[-1].mask[10:20, 10:20].all()  # the small part keeps all its pixels
    assert found[0].area == 900 - 100 - 25 and found[0].bbox == (5, 5, 30, 30)
    assert found[1].area == 144
    assert len(E.disjoint(recs, min_area=500)) == 1


def test_segment_everything_reuses_the_embedding_and_reports_progress(engine):
    pic = S.prepare_image(_photo(64, 48, seed=7))
    emb = engine.embed(pic)
    calls, seen = engine.encoder_calls, []
    found = E.segment_everything(engine, emb, pic, points_per_side=8, pred_iou_thresh=0.0,
                                 stability_score_thresh=0.0, points_per_batch=16,
                                 progress=lambda i, n: seen.append((i, n)))
    assert engine.encoder_calls == calls
    assert seen[-1] == (4, 4)
    assert found, "with thresholds at 0 the random model must return masks"
    stack = np.stack([f.mask for f in found])
    assert stack.shape[1:] == (48, 64) and stack.sum(0).max() == 1
    assert [f.area for f in found] == sorted((f.area for f in found), reverse=True)
    with pytest.raises(E.Stopped):
        E.segment_everything(engine, emb, pic, points_per_side=8, points_per_batch=16, should_stop=lambda: True)


def test_mobile_sam_matches_the_checkpoint_layout_and_loads_weights_only(tmp_path):
    """Our MobileSAM (TinyViT + segment-anything decoder) has exactly the parameter names and shapes of the
    model ultralytics loads `mobile_sam.pt` into, and a saved state dict loads back through `load`."""
    import torch

    ours = arch.build("vit_t").state_dict()  # configures ultralytics (hub.ultralytics_env) before it is imported
    from ultralytics.models.sam.build import build_mobile_sam

    theirs = build_mobile_sam().state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in theirs.items()}
    path = tmp_path / "mine.pt"
    torch.save(theirs, path)
    eng = S.load(_weights(source="path", path=path, cache=tmp_path), "cpu", "float32")
    assert eng.arch == "vit_t"
    assert torch.equal(eng.sam.state_dict()["mask_decoder.iou_token.weight"], theirs["mask_decoder.iou_token.weight"])


def test_a_checkpoint_with_the_wrong_hash_is_refused(tmp_path):
    folder = tmp_path / "native"
    folder.mkdir()
    (folder / "mobile_sam.pt").write_bytes(b"\x80" + b"0" * 100)
    w = Weights("sam_segment", SPEC.choice("mobile_sam"), "native", folder, tmp_path)
    with pytest.raises(CorruptWeights, match="SHA-256"):
        S.load(w, "cpu", "float32")


# ---- bad inputs ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("points, labels, box, says", [
    ([[200, 10]], [1], None, "x of point 1 .*160 pixels wide.* out of range"),
    ([[-1, 10]], [1], None, "x of point 1 .* out of range"),
    ([[10, 10], [20, 97]], [1, 1], None, "y of point 2 .*96 pixels high.* out of range"),
    (None, None, None, "Add a prompt"),
    ([], [], [], "Add a prompt"),
    ([[10, 10], [20, 20]], [0, 0], None, "Only negative points"),
    (None, None, [10, 10, 10, 50], "no area"),
    (None, None, [500, 500, 600, 600], "outside the image"),
    ([[10, 10]], [1, 0], None, "one label"),
    ([[10, 10]], [2], None, "Labels must be 1"),
    ("[[10, 10", None, None, "JSON"),
    ([[10, "a"]], [1], None, "pairs"),
    ([[float("nan"), 1]], [1], None, "real number"),
    (None, None, [0, 0, float("inf"), 50], "real number"),
])
def test_bad_prompts_say_what_to_do(engine, points, labels, box, says):
    emb = engine.embed(S.prepare_image(_photo()))
    with pytest.raises(UserError, match=says):
        S.segment(engine, emb, points, labels, box)


def test_points_on_the_far_edge_count_and_multimask_is_a_flag(engine):
    emb = engine.embed(S.prepare_image(_photo()))  # 160x96
    assert S.segment(engine, emb, [[160, 96]], [1]).prompts.points.tolist() == [[160.0, 96.0]]
    with pytest.raises(UserError, match="true or false"):
        S.segment(engine, emb, [[5, 5]], [1], multimask="no")


@pytest.mark.parametrize("image, says", [
    (None, "No image was given"),
    (Image.new("1", (8000, 7000)), "56 megapixels.* 50 megapixels"),  # the hub's cap (SAM's own was 25 MP)
    (Image.new("RGB", (4, 100)), "at least 8"),
    (Image.new("RGB", (3300, 100)), "32:1"),
    (np.zeros((20, 20, 2), np.uint8), "shape"),
    ("/no/such/file.png", "'file.png' was not found"),
    (12, "must be an uploaded image file"),
])
def test_bad_images_say_what_to_do(image, says):
    with pytest.raises(UserError, match=says):
        S.prepare_image(image)


@pytest.mark.parametrize("mode", ["L", "1", "P", "CMYK", "LA", "RGBA", "I;16", "I", "F", "YCbCr"])
def test_odd_image_modes_become_rgb(mode, engine):
    img = _photo(40, 30).convert("L").convert(mode) if mode not in ("CMYK", "YCbCr", "P", "RGBA") \
        else _photo(40, 30).convert(mode)
    if mode == "I;16":
        img = Image.fromarray((np.arange(1200, dtype=np.uint16).reshape(30, 40) * 50))
    pic = S.prepare_image(img)
    assert pic.rgb.shape == (30, 40, 3) and pic.rgb.dtype == np.uint8
    assert S.segment_image(engine, pic, [[5, 5]], [1]).masks.shape == (3, 30, 40)


def test_arrays_of_other_types_are_converted():
    f = S.prepare_image(np.linspace(0, 1, 400).reshape(20, 20))
    assert f.rgb[0, 0, 0] == 0 and f.rgb[-1, -1, 0] == 255
    assert S.prepare_image(np.full((20, 20, 3), 65535, np.uint16)).rgb.max() == 255
    # the hub's policy (hub.media.image): 16-bit divides by 257 (a dim image stays dim, no stretching), other
    # integer arrays are converted, NaN becomes 0 (SAM used to stretch and to refuse int64 and NaN)
    assert S.prepare_image(np.full((20, 20), 2570, np.uint16)).rgb.max() == 10
    assert S.prepare_image(np.full((20, 20), 100, np.int64)).rgb.max() == 0
    assert S.prepare_image(np.full((20, 20), np.nan)).rgb.max() == 0


def test_exif_rotation_is_applied(tmp_path):
    img = Image.fromarray(np.zeros((30, 60, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when shown
    img.save(tmp_path / "phone.jpg", exif=exif)
    assert S.prepare_image(str(tmp_path / "phone.jpg")).size == (30, 60)


def test_a_new_image_while_old_clicks_are_pending(engine):
    old, new = S.prepare_image(_photo(seed=1)), S.prepare_image(_photo(seed=2))
    emb_old = engine.embed(old)
    with pytest.raises(UserError, match="image changed"):
        E.segment_everything(engine, emb_old, new, points_per_side=4)
    other = S.load(_weights(), "cpu", "float32")
    with pytest.raises(UserError, match="model changed"):
        S.segment(other, emb_old, [[5, 5]], [1])


@pytest.mark.parametrize("pps, iou, says", [(1, 0.5, "Points per side"), (8.5, 0.5, "whole number"),
                                            (8, 1.5, "from 0 to 1"), (8, float("nan"), "real number")])
def test_bad_segment_everything_settings(engine, pps, iou, says):
    pic = S.prepare_image(_photo())
    with pytest.raises(UserError, match=says):
        E.segment_everything(engine, engine.embed(pic), pic, points_per_side=pps, pred_iou_thresh=iou)


def test_building_mobilesam_leaves_pillow_open_alone():
    """ultralytics patches PIL.Image.open to pip-install pi-heif on unknown files; other tabs must not see that."""
    from PIL import Image

    arch._tiny_vit()
    assert Image.open.__module__.startswith("PIL")
