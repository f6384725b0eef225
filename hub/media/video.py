"""The one video entry point: `open_video` opens an upload with PyAV and answers unusable files with a sentence.

Decoding, batching and writing stay with each demo; this module only says whether a file is a video, how long it is
and whether its frames are small enough. FFmpeg reads the upload and nothing it names (hub.media.containers: no
playlists or scripts), and frames have the images' pixel cap (`MAX_PIXELS`): checked from the stream's header
before any frame is decoded, and set as the decoder's own `max_pixels`, so a frame that grows mid-stream is refused
too. PyAV is imported when a video is opened, never at import.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from hub.errors import UserError
from hub.media.containers import open_input
from hub.media.image import MAX_PIXELS
from hub.media.image import _reason as _path_free

FORMATS = "MP4, WebM, MOV, MKV or AVI"


def open_video(source, what: str = "the video", max_pixels: int = MAX_PIXELS):
    """An upload (path or gradio file dict) -> (PyAV input container, its first video stream).

    The caller closes the container. UserError for: nothing given, a missing or empty file, a file FFmpeg cannot
    read or may not read (a playlist), a file with no video track, and frames over `max_pixels`."""
    import av

    path = _path(source, what)
    cap = {"max_pixels": str(max_pixels)}  # the probe that opening runs decodes no frame larger than the cap
    try:
        container = open_input(path, cap)
    except av.FFmpegError as e:
        raise UserError(f"{path.name} could not be read as a video ({_reason(e)}): the file is damaged or not a "
                        f"video. Upload an {FORMATS} that plays in a player.") from None
    if not container.streams.video:
        container.close()
        raise UserError(f"{path.name} has no video frames (no video track, or an empty one); upload a video "
                        "that plays in a player.")
    stream = container.streams.video[0]
    w, h = stream.codec_context.width, stream.codec_context.height
    if w * h > max_pixels or not w or not h:  # 0: the probe refused a frame over the cap, or found none
        container.close()
        size = (f"{w}x{h} pixels ({w * h / 1e6:.0f} megapixels)" if w and h else
                f"larger than {max_pixels / 1e6:.0f} megapixels (or unreadable)")
        raise UserError(f"The frames of {path.name} are {size}; this hub takes videos of at most "
                        f"{max_pixels / 1e6:.0f} megapixels per frame: scale it down first.")
    stream.codec_context.options = {**stream.codec_context.options, **cap}  # and no frame over it when decoding
    return container, stream


def frame_rate(stream, default: Fraction = Fraction(25)) -> Fraction:
    """The stream's frame rate (average, else guessed, else `default`)."""
    return stream.average_rate or stream.guessed_rate or default


def frame_count(stream) -> int | None:
    """Frames in the stream when the container says (or its duration implies), else None."""
    total = int(stream.frames or 0) or None
    if total is None and stream.duration and stream.time_base:
        total = int(round(float(stream.duration * stream.time_base * frame_rate(stream)))) or None
    return total


def damaged(error, frames_read: int) -> UserError:
    """The sentence for a decoding error part-way through a video (the decoder refuses a frame over the pixel cap
    with EINVAL: said too)."""
    import errno

    if getattr(error, "errno", None) == errno.EINVAL:
        return UserError(f"The video could not be decoded after frame {frames_read}: a frame is over "
                         f"{MAX_PIXELS / 1e6:.0f} megapixels or damaged; scale it down or re-export it and try again.")
    return UserError(f"The video is damaged after frame {frames_read} ({_reason(error)}); re-export it with a video "
                     "editor and try again.")


def _path(source, what: str) -> Path:
    if isinstance(source, dict):  # gradio FileData / Video payloads sent as dicts
        source = source.get("path") or source.get("video") or source.get("url")
        if isinstance(source, dict):
            source = source.get("path")
    if source is None or (isinstance(source, str) and not source.strip()):
        raise UserError(f"Upload a video file first ({FORMATS}) for {what}.")
    path = Path(source)
    if not path.is_file():
        raise UserError(f"The video file {path.name!r} was not found; upload it again.")
    if path.stat().st_size == 0:
        raise UserError(f"The file {path.name!r} is empty (0 bytes); upload a video that plays in a player.")
    return path


def _reason(e: Exception) -> str:
    """FFmpeg's reason (its strerror has no file name), server paths cut to the file name."""
    return _path_free(RuntimeError(getattr(e, "strerror", None) or e))
