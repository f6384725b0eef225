"""Which files FFmpeg may open for the hub: the upload itself, and nothing it points to.

FFmpeg's demuxers include playlists and scripts that open other files: an HLS playlist (`.m3u8`, or named `.mp4`
for the command-line tool, which probes by content) can list `file:///any/path` segments, an ffconcat script lists
files to join, DASH and IMF manifests name their parts. Decoding such an "upload" reads a file of the server's
instead. So every FFmpeg input the hub (or gradio, hub.gradio_media) opens is read with two whitelists:

- `protocol_whitelist=file`: no network, pipes, `concat:` or `subfile:` protocols;
- `format_whitelist` = `FORMATS`: only demuxers of self-contained audio and video files. A playlist, script or
  manifest is refused before its header is read, so none of the files it names is ever opened.

`open_input` (PyAV) and `FFMPEG_INPUT` (the `ffmpeg`/`ffprobe` programs) apply them; `check_file` says whether a
file passes, with the sentence for one that does not.
"""

from __future__ import annotations

import errno
from pathlib import Path

from hub.errors import UserError

# FFmpeg demuxer names (ffmpeg -demuxers) of formats that hold their own media and never open another file.
# `mov` is the demuxer of MP4/MOV/M4A/3GP; `matroska` of MKV and WebM.
FORMATS = ("wav", "w64", "mp3", "flac", "ogg", "mov", "matroska", "webm", "aac", "avi", "mjpeg", "aiff", "caf", "asf",
           "mpegts", "mpeg", "flv", "amr", "au", "wv", "ac3", "h264", "hevc", "gif", "ivf")
OPTIONS = {"protocol_whitelist": "file", "format_whitelist": ",".join(FORMATS)}
FFMPEG_INPUT = [arg for name, value in OPTIONS.items() for arg in (f"-{name}", value)]  # before each `-i`
NAMES = "MP4, MOV, M4A, MKV, WebM, AVI, WAV, MP3, FLAC, OGG or AAC"


def refused(name: str) -> UserError:
    """The sentence for a file FFmpeg may not read: a playlist, a script naming other files, or an unknown format."""
    return UserError(f"{name} is not an audio or video file this hub reads (playlists, lists of other files and "
                     f"unknown formats are refused); upload the recording itself as {NAMES}.")


def open_input(path, stream_options: dict | None = None):
    """A PyAV input container reading only the file at `path`, or UserError (`refused`) when its format is not one
    of `FORMATS`. FFmpeg's other errors (a damaged file) propagate for the caller's own sentence.

    stream_options: codec options for the probe that opening runs (e.g. `max_pixels`)."""
    import av

    path = Path(path)
    try:
        return av.open(str(path), "r", metadata_errors="ignore", container_options=dict(OPTIONS),
                       options=dict(stream_options or {}))
    except av.error.FFmpegError as e:
        if e.errno == errno.EINVAL:  # the probed format is not on the whitelist (its header was not read)
            raise refused(path.name) from None
        raise


def check_file(path) -> None:
    """UserError (`refused`) unless the file at `path` opens as a self-contained audio or video file: for tools
    that cannot be given the whitelists (pydub, a bare `ffprobe`). Another FFmpeg build may detect a format this
    one does not (ffmpeg 5 reads an HLS playlist named .mp4 as HLS), so a file this check cannot open is refused
    too."""
    import av

    try:
        container = open_input(path)
    except av.error.FFmpegError:
        raise refused(Path(path).name) from None
    container.close()
