"""hub.media.video: the one video entry — a real file opens with its stream; anything else gets a sentence."""

from __future__ import annotations

import numpy as np
import pytest

from hub.errors import UserError
from hub.media.video import frame_count, frame_rate, open_video
from hub.samples import make_samples


def test_a_video_opens_with_its_rate_and_length(tmp_path):
    path = make_samples(tmp_path)["video"]
    for source in (path, {"path": path}, {"video": {"path": path}}):
        container, stream = open_video(source)
        try:
            assert frame_rate(stream) == 12 and frame_count(stream) == 12 and stream.width == 128
        finally:
            container.close()


@pytest.mark.parametrize("make, words", [
    (lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
    (lambda p: p.write_bytes(b"not a video\n" * 100), "could not be read as a video"),
    (lambda p: p.write_bytes(np.random.default_rng(2).integers(0, 255, 20000, dtype=np.uint8).tobytes()),
     "could not be read as a video"),
])
def test_unusable_files_get_a_sentence_without_server_paths(tmp_path, make, words):
    path = tmp_path / "private" / "clip.mp4"
    path.parent.mkdir()
    make(path)
    with pytest.raises(UserError) as e:
        open_video(str(path))
    assert words in str(e.value) and "private" not in str(e.value) and "Error" not in str(e.value)


def test_audio_only_and_missing_inputs(tmp_path):
    wav = make_samples(tmp_path)["audio"]
    with pytest.raises(UserError, match="has no video frames"):
        open_video(wav)
    with pytest.raises(UserError, match="Upload a video file first"):
        open_video(None)
    with pytest.raises(UserError, match="'gone.mp4' was not found"):
        open_video(str(tmp_path / "gone.mp4"))
