"""SAM 2.1 in the Segment Anything tab: clicks on images (same outputs as the other models), video tracking (overlay
MP4, per-frame mask PNGs, frame count, Stop, bounds), loading a transformers folder, and refusals in sentences."""

from __future__ import annotations

import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from demos.sam_segment import SPEC, sam2, ui_video
from demos.sam_segment import engine as S
from demos.sam_segment import everything as E
from demos.sam_segment import video as V
from demos.sam_segment.store import EmbeddingStore
from demos.sam_segment.types import TrackRequest
from hub.errors import UserError
from hub.samples import make_samples
from hub.weights import Weights


def _weights(model, source="random", path=None):
    return Weights("sam_segment", SPEC.choice(model), source, path, Path("/nonexistent"))


@pytest.fixture(scope="module")
def engine():
    return S.load(_weights("tiny-random-sam2"), "cpu", "float32")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_samples(tmp_path_factory.mktemp("media"))["video"]  # 12 frames, 128x96


def _photo(w=160, h=96, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8))


# ---- images -----------------------------------------------------------------------------------------------------


def test_the_sam2_choices_are_pinned_apache_models_with_sizes():
    sam2_models = [m for m in SPEC.models if m.options.get("family") == "sam2" and m.source == "hf"]
    assert [m.id for m in sam2_models] == [f"facebook/sam2.1-hiera-{s}" for s in ("tiny", "small", "base-plus",
                                                                                  "large")]
    for m in sam2_models:
        assert len(m.revision) == 40 and int(m.revision, 16) >= 0
        assert m.license == "Apache-2.0" and m.approx_bytes > 100_000_000
        assert "model.safetensors" in m.files  # safetensors, never the pickled .pt
    assert SPEC.default_model["cpu"] == "mobile_sam"  # measured faster per image on CPU (see the README)


def test_clicks_and_boxes_give_the_same_outputs_as_the_other_models(engine):
    v1 = S.load(_weights("tiny-random"), "cpu", "float32")
    image = _photo()
    for kwargs in ({"points": [[40, 30], [100, 50]], "labels": [1, 0]}, {"box": [10, 10, 100, 80]},
                   {"points": [[40, 30]], "labels": [1], "box": [10, 10, 100, 80]}):
        for multimask in (True, False):
            ours = S.segment_image(engine, image, multimask=multimask, **kwargs)
            theirs = S.segment_image(v1, image, multimask=multimask, **kwargs)
            assert ours.masks.shape == theirs.masks.shape == ((3 if multimask else 1), 96, 160)
            assert ours.masks.dtype == bool and len(ours.scores) == len(theirs.scores)
            assert ours.scores == sorted(ours.scores, reverse=True)  # best first


def test_the_image_is_encoded_once_and_clicks_reuse_it(engine):
    store = EmbeddingStore(per_session=2, sessions=8)
    pic = S.prepare_image(_photo(seed=3))
    before = engine.encoder_calls
    for x in (10, 60, 120):
        emb, _ = store.get("s", engine.embed, pic)
        S.segment(engine, emb, [[x, 40]], [1])
    assert engine.encoder_calls == before + 1
    before, extra = engine.encoder_calls, engine.extra_bytes
    engine.embedding("mine", pic)
    assert engine.embedding("mine", pic)[1] and not engine.embedding("theirs", pic)[1]
    assert engine.encoder_calls == before + 2 and engine.extra_bytes > extra  # SAM 2.1's pyramid is counted


def test_the_image_model_shares_the_video_models_encoder(engine):
    assert engine.image_model.vision_encoder is engine.video_model.vision_encoder
    assert not any(p.is_meta for p in engine.image_model.parameters())


def test_a_bad_click_is_refused_with_a_sentence(engine):
    with pytest.raises(UserError, match="x of point 1"):
        S.segment_image(engine, _photo(), [[500, 10]], [1])


def test_segment_everything_says_which_models_it_runs_with(engine):
    with pytest.raises(UserError, match="SAM and MobileSAM"):
        E.check_everything_model(engine)


def test_the_real_hiera_tiny_architecture_has_the_checkpoints_size():
    import torch
    from transformers import Sam2VideoModel

    with torch.device("meta"):
        model = Sam2VideoModel(sam2.video_config("hiera_t"))
    n = sum(p.numel() for p in model.parameters())
    assert 38_000_000 < n < 40_000_000  # SAM 2.1 Hiera-T: 38.9 M parameters (156 MB float32)
    with torch.device("meta"):
        large = Sam2VideoModel(sam2.video_config("hiera_l"))
    assert 220_000_000 < sum(p.numel() for p in large.parameters()) < 230_000_000  # Hiera-L: 224.4 M


def test_a_transformers_folder_loads(tmp_path, engine):
    """The hf/path route: config.json + model.safetensors + processor files, as the pinned repos hold them."""
    engine.video_model.save_pretrained(tmp_path, safe_serialization=True)
    engine.video_processor.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded = S.load(_weights("facebook/sam2.1-hiera-tiny", "hf", tmp_path), "cpu", "float32")
    a = S.segment_image(engine, _photo(), [[40, 30]], [1])
    b = S.segment_image(loaded, _photo(), [[40, 30]], [1])
    np.testing.assert_array_equal(a.masks, b.masks)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5)


def test_a_folder_without_transformers_files_is_refused(tmp_path):
    with pytest.raises(UserError, match="config.json"):
        S.load(_weights("facebook/sam2.1-hiera-tiny", "hf", tmp_path), "cpu", "float32")


# ---- video ------------------------------------------------------------------------------------------------------


def test_tracking_writes_a_mask_per_frame_and_the_overlay_video(engine, clip, tmp_path):
    import av

    items = list(V.track_video(engine, clip, tmp_path, [[40, 30]], [1], None, max_frames=24))
    progress, result = items[:-1], items[-1]
    assert [p.done for p in progress] == list(range(1, 13)) and result.frames == 12
    assert (result.width, result.height) == (128, 96) and len(result.areas) == 12
    names = zipfile.ZipFile(result.masks).namelist()
    assert names == [f"frame_{i:05d}.png" for i in range(12)]
    with zipfile.ZipFile(result.masks) as z, z.open(names[0]) as f:
        mask = np.asarray(Image.open(f))
    assert mask.shape == (96, 128) and set(np.unique(mask)) <= {0, 255}
    assert int((mask > 0).sum()) == result.areas[0]
    with av.open(str(result.video)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 12 and frames[0].shape == (96, 128, 3)


def test_the_overlay_tints_only_the_mask():
    rgb = np.full((4, 4, 3), 100, np.uint8)
    mask = np.zeros((4, 4), bool)
    mask[1, 2] = True
    out = V.overlay(rgb, mask)
    assert (out[~mask] == 100).all() and (out[1, 2] != 100).any()


def test_a_longer_video_is_tracked_for_its_first_max_frames_and_says_so(engine, clip, tmp_path):
    import zipfile

    items = list(V.track_video(engine, clip, tmp_path, [[40, 30]], [1], None, max_frames=5))
    result = items[-1]
    assert result.frames == 5 and len(items) == 6, "five frames tracked, one progress item each"
    assert [p.total for p in items[:-1]] == [5] * 5, "progress counts to the frames that will be tracked"
    assert "first 5 frames" in result.record()["note"]
    assert len(zipfile.ZipFile(result.masks).namelist()) == 5
    full = list(V.track_video(engine, clip, tmp_path / "all", [[40, 30]], [1], None, max_frames=24))[-1]
    assert full.frames == 12 and "note" not in full.record()


def test_a_bad_click_or_file_is_refused_with_a_sentence(engine, clip, tmp_path):
    with pytest.raises(UserError, match="x of point 1"):
        list(V.track_video(engine, clip, tmp_path, [[4000, 30]], [1], None, 24))
    with pytest.raises(UserError, match="Add a prompt"):
        list(V.track_video(engine, clip, tmp_path, [], [], None, 24))
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(UserError, match="could not be read as a video"):
        list(V.track_video(engine, str(text), tmp_path / "out", [[4, 3]], [1], None, 24))
    with pytest.raises(UserError, match="Max frames is 0"):
        list(V.track_video(engine, clip, tmp_path, [[40, 30]], [1], None, 0))
    assert not list((tmp_path).glob("*.zip"))


def test_stop_ends_tracking_and_deletes_the_partial_files(engine, clip, tmp_path):
    calls = []
    gen = V.track_video(engine, clip, tmp_path, [[40, 30]], [1], None, 24, should_stop=lambda: len(calls) > 2)
    with pytest.raises(UserError, match="Stopped"):
        for _ in gen:
            calls.append(1)
    assert len(calls) == 3 and not list(tmp_path.glob("*.mp4")) and not list(tmp_path.glob("*.zip"))
    gen = V.track_video(engine, clip, tmp_path, [[40, 30]], [1], None, 24)
    next(gen), next(gen)
    gen.close()  # what a Stop in the browser does (the stream is closed)
    assert not list(tmp_path.glob("*.mp4")) and not list(tmp_path.glob("*.zip"))


def test_the_track_video_method_streams_progress_then_the_result_with_its_record(engine, clip):
    from hub.work import Job

    lease = SimpleNamespace(engine=engine, record=lambda **params: {"model": "tiny-random-sam2", **params})
    items = list(S.track_request(lease, TrackRequest(clip, [[40, 30]], [1], None, 24), Job()))
    assert [type(i).__name__ for i in items] == ["TrackProgress"] * 12 + ["TrackResult"]
    result = items[-1]
    assert result.details["model"] == "tiny-random-sam2" and result.details["frames"] == 12
    assert result.details["points"] == [[40, 30]] and Path(result.video).is_file() and Path(result.masks).is_file()
    job = Job()
    items = S.track_request(lease, TrackRequest(clip, [[40, 30]], [1], None, 24), job)
    next(items), next(items)
    job.stop.set()  # the Stop button: the stream is dropped and the method stops at its next frame
    with pytest.raises(UserError, match="Stopped"):
        next(items)


def test_models_that_cannot_track_say_so():
    with pytest.raises(UserError, match="needs a SAM 2.1 model"):
        V.tracker_of(SimpleNamespace(arch="vit_t"))


def test_the_hidden_test_model_tracks_with_a_tiny_sam2(clip, tmp_path):
    v1 = S.load(_weights("tiny-random"), "cpu", "float32")
    result = list(V.track_video(v1, clip, tmp_path, [[40, 30]], [1], None, 24))[-1]
    assert result.frames == 12 and V.tracker_of(v1) is V.tracker_of(v1)  # built once, kept with the model


def test_big_frames_are_scaled_down_for_clicks_and_tracking():
    big = np.zeros((1080, 1920, 3), np.uint8)
    assert V.fit(big, 640).shape == (360, 640, 3)
    assert V.fit(np.zeros((90, 120, 3), np.uint8), 640).shape == (90, 120, 3)  # never up


def test_clicks_on_the_first_frame_in_the_tab(clip):
    frame, clean, points, labels, _ = ui_video.show_first_frame(clip)
    assert frame.shape == (96, 128, 3) and points == [] and labels == []
    drawn, points, labels = ui_video.click(clean, points, labels, "Positive point", SimpleNamespace(index=[40, 30]))
    drawn, points, labels = ui_video.click(clean, points, labels, "Negative point", SimpleNamespace(index=[5, 5]))
    assert points == [[40.0, 30.0], [5.0, 5.0]] and labels == [1, 0]
    assert np.asarray(drawn).shape == (96, 128, 3) and not np.array_equal(np.asarray(drawn), clean)
    with pytest.raises(UserError, match="outside the frame"):
        ui_video.click(clean, points, labels, "Positive point", SimpleNamespace(index=[500, 5]))
    with pytest.raises(UserError, match="Upload a video first"):
        ui_video.click(None, [], [], "Positive point", SimpleNamespace(index=[5, 5]))
