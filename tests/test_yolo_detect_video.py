"""YOLO tab, video files and tracking: the H.264 round trip, ByteTrack ids, bad videos, stopping mid-video."""

from __future__ import annotations

import importlib.util
import threading

import numpy as np
import pytest
from PIL import Image

from demos.yolo_detect import formats as yf
from demos.yolo_detect import video as yv
from hub.errors import UserError
from tests.test_yolo_detect import BUS, _probe, _video, cache, needs_lap, needs_real, real, tiny  # noqa: F401


@pytest.mark.real_weights
@needs_real
@needs_lap
def test_tracking_keeps_ids_for_objects_across_frames(real):
    frame = np.asarray(Image.open(BUS).convert("RGB"))
    tracker = yv.new_tracker(30)
    first = yv.track_frame(real, tracker, frame)
    shifted = np.ascontiguousarray(np.roll(frame, 6, axis=1))
    second = yv.track_frame(real, tracker, shifted)
    assert len(first) >= 4 and first.track_ids is not None
    assert set(second.track_ids) == set(first.track_ids)  # same objects, same ids
    assert "track_id" in second.rows()[0]


def test_video_round_trip_keeps_frames_and_duration_and_plays_in_browsers(tiny, tmp_path):
    src = _video(tmp_path / "in.mp4", frames=13, size=(161, 120), rate=12)  # odd width: padded for yuv420p
    out = tmp_path / "out" / "annotated.mp4"
    items = list(yv.detect_video(tiny, src, out, conf=0.0, max_det=2, imgsz=64, batch=4))
    progress, result = items[:-1], items[-1]
    assert [p.done for p in progress] == [4, 8, 12, 13] and progress[-1].total == 13
    assert isinstance(result, yv.VideoResult) and result.frames == 13 and result.fps == 12
    info = _probe(out)
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p"  # what every browser plays
    assert info["frames"] == 13 and info["rate"] == 12
    assert info["duration"] == pytest.approx(13 / 12, abs=1 / 12)
    assert info["size"] == (162, 120)
    with open(out, "rb") as fh:
        head = fh.read(64)
    assert head.find(b"moov") != -1 or head.find(b"ftyp") != -1  # mp4; faststart puts moov before mdat
    assert [r["frame"] for r in result.per_frame] == list(range(13))
    assert all(r["total"] == 2 for r in result.per_frame)
    counts = yf.export_counts(result, tmp_path / "counts.csv")
    lines = counts.read_text().splitlines()
    assert lines[0].startswith("frame,time_s,total") and len(lines) == 14


@pytest.mark.real_weights
@needs_real
@needs_lap
def test_video_tracking_counts_each_object_once(real, tmp_path):
    picture = np.asarray(Image.open(BUS).convert("RGB").resize((320, 428)))[:426]
    src = _video(tmp_path / "in.mp4", frames=6, size=(320, 426), rate=6, picture=picture)
    res = list(yv.detect_video(real, src, tmp_path / "o.mp4", imgsz=320, tracking=True))[-1]
    per_frame_people = [r.get("person", 0) for r in res.per_frame]
    assert res.tracks["bus"] == 1 and max(per_frame_people) >= 3
    assert res.tracks["person"] <= max(per_frame_people) + 1  # the same people keep their ids across frames


def test_tracking_without_lap_says_what_to_install_instead_of_pip_installing(monkeypatch):
    real_find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "lap" else real_find(name, *a))
    with pytest.raises(UserError, match="pip install 'lap>=0.5.12'"):
        yv.new_tracker()


def test_bad_videos_end_in_sentences(tiny, tmp_path):
    # fixed noise: some random byte strings do parse as a (video-less) stream, which is another test's case
    (tmp_path / "junk.mp4").write_bytes(np.random.default_rng(2).integers(0, 255, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(UserError, match="could not be read as a video"):
        list(yv.detect_video(tiny, tmp_path / "junk.mp4", tmp_path / "o1.mp4"))
    good = _video(tmp_path / "good.mp4", frames=8)
    (tmp_path / "cut.mp4").write_bytes(good.read_bytes()[: good.stat().st_size // 2])  # no moov atom
    with pytest.raises(UserError, match="could not be read|damaged|no frames"):
        list(yv.detect_video(tiny, tmp_path / "cut.mp4", tmp_path / "o2.mp4", imgsz=64))
    for suffix in ("mp4", "mkv"):  # a zero-frame MP4 has no video track left; a zero-frame MKV ends at its header
        empty = _video(tmp_path / f"empty.{suffix}", frames=0)
        with pytest.raises(UserError, match="no video frames|could not be read as a video"):
            list(yv.detect_video(tiny, empty, tmp_path / "o3.mp4", imgsz=64))
    with pytest.raises(UserError, match="Upload a video"):
        list(yv.detect_video(tiny, None, tmp_path / "o4.mp4"))
    with pytest.raises(UserError, match="at most 5"):
        list(yv.detect_video(tiny, good, tmp_path / "o5.mp4", max_frames=5))
    assert not any((tmp_path / f"o{i}.mp4").exists() for i in range(1, 6))  # no half-written outputs left


def test_stopping_a_video_stops_its_threads_and_removes_the_partial_file(tiny, tmp_path):
    src = _video(tmp_path / "in.mp4", frames=40)
    before = {t.name for t in threading.enumerate()}
    out = tmp_path / "o.mp4"
    gen = yv.detect_video(tiny, src, out, imgsz=64, batch=2)
    first = next(gen)
    assert isinstance(first, yv.VideoProgress) and first.done == 2
    gen.close()  # what gradio does when the user presses Stop
    alive = [t.name for t in threading.enumerate() if t.name.startswith("yolo-video") and t.name not in before]
    assert not alive and not out.exists()


def test_the_hubs_video_entry_answers_missing_empty_and_non_video_files_with_sentences(tmp_path):
    from hub.media.video import open_video

    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(UserError, match="'empty.mp4' is empty"):
        open_video(str(tmp_path / "empty.mp4"))
    with pytest.raises(UserError, match="'gone.mp4' was not found"):
        open_video({"path": str(tmp_path / "gone.mp4")})
    (tmp_path / "text.mp4").write_text("hello " * 100)
    with pytest.raises(UserError, match="text.mp4 could not be read as a video") as e:
        open_video(str(tmp_path / "text.mp4"))
    assert str(tmp_path) not in str(e.value)  # no server paths in sentences
    container, stream = open_video({"video": {"path": str(_video(tmp_path / "ok.mp4", frames=3))}})
    with container:
        assert stream.type == "video" and stream.width == 160


def test_video_options_are_declared_parsed_and_reach_the_engine(tmp_path):
    from demos.yolo_detect import DEMO, SPEC
    from hub.errors import SettingsError
    from hub.options import parse
    from hub.settings import Settings
    from hub.weights import resolve

    opts = parse(DEMO, {"DEMOHUB_YOLO_DETECT_VIDEO_BATCH": "2", "DEMOHUB_YOLO_DETECT_CUDA_GRAPHS": "0",
                        "DEMOHUB_YOLO_DETECT_MAX_VIDEO_FRAMES": "600"})
    assert (opts.video_batch, opts.cuda_graphs, opts.max_video_frames) == (2, False, 600)
    with pytest.raises(SettingsError, match="VIDEO_BATCH='999' is out of range"):
        parse(DEMO, {"DEMOHUB_YOLO_DETECT_VIDEO_BATCH": "999"})
    s = Settings.load({}, cache_dir=str(tmp_path), offline=True, device="cpu")
    w = resolve(SPEC, SPEC.choice("tiny-random"), s)
    assert DEMO.loader(opts)(w, "cpu", "float32").video_batch == 2
    assert DEMO.loader(None)(w, "cpu", "float32").video_batch == 4  # 0 = auto: 4 frames per pass on a CPU
