"""Gradio's own FFmpeg calls, kept to the file they are given (issue #33), installed by `hub.app.launch`.

Gradio runs `ffmpeg`/`ffprobe` on files on the server: its screen-recording route (`/gradio_api/process_recording`,
for the page's "record screen" setting; no component of the hub needs it), format conversions of its Video and
Audio components, and playability checks. FFmpeg follows playlists and scripts inside a file (an HLS playlist named
`.mp4` listing `file:///...` segments answered with a private clip), so:

- the recording route is closed: a request there gets 404 with a sentence before gradio reads it;
- every input of gradio's FFmpeg wrapper (ffmpy, which all of those conversions use) is read with the hub's
  whitelists (hub.media.containers: the `file` protocol, self-contained formats only);
- its conversions and checks (and the calls that run FFmpeg another way: pydub's `audio_from_file`,
  `get_video_length`) first check the file with `containers.check_file`.
A refused file raises `gradio.Error` with the hub's sentence.
"""

from __future__ import annotations

import functools
from pathlib import Path

RECORDING_PATH = "/process_recording"
# gradio.processing_utils functions given a path first: checked before FFmpeg (or pydub) sees the file
CHECKED = ("audio_from_file", "get_video_length", "video_is_playable", "audio_is_playable",
           "convert_video_to_playable_mp4", "convert_audio_to_playable")
_installed = False


def install(app) -> None:
    """Close gradio's recording route on `app` and put the whitelists on gradio's FFmpeg calls (once per process).
    An image input to ffmpeg (a Video watermark) is not on the list of formats: the hub's components use none."""
    _drop_recording(app)
    _guard_ffmpeg()


def _drop_recording(app) -> None:
    """One ASGI layer in front of `app` (as hub.guard's): the recording route answers 404 before gradio sees it."""
    from starlette.responses import PlainTextResponse

    inner = app.middleware_stack or app.build_middleware_stack()
    refused = PlainTextResponse("Processing screen recordings is turned off on this hub; the page keeps the "
                                "recording as it was made.", 404)

    async def guarded(scope, receive, send):
        if scope["type"] == "http" and scope.get("path", "").rstrip("/").endswith(RECORDING_PATH):
            return await refused(scope, receive, send)
        return await inner(scope, receive, send)

    app.middleware_stack = guarded


def _guard_ffmpeg() -> None:
    global _installed
    if _installed:
        return
    from gradio import processing_utils
    from gradio._vendor.ffmpy import ffmpy

    from hub.media.containers import FFMPEG_INPUT

    init = ffmpy.FFmpeg.__init__

    @functools.wraps(init)
    def whitelisted(self, executable="ffmpeg", global_options=None, inputs=None, *args, **kw):
        if inputs:
            inputs = {path: (opts if _piped(path) else [*FFMPEG_INPUT, *ffmpy._normalize_options(opts)])
                      for path, opts in inputs.items()}
        init(self, executable, global_options, inputs, *args, **kw)

    ffmpy.FFmpeg.__init__ = whitelisted  # FFprobe's __init__ calls it too
    for name in CHECKED:
        setattr(processing_utils, name, _checked(getattr(processing_utils, name)))
    _installed = True


def _piped(path) -> bool:
    return not path or str(path) == "-" or str(path).startswith("pipe:")


def _checked(fn):
    """`fn(path, ...)` that first refuses a file FFmpeg may not read (gradio.Error with the hub's sentence)."""
    @functools.wraps(fn)
    def guarded(path, *args, **kw):
        import gradio as gr

        from hub.errors import UserError
        from hub.media.containers import check_file

        if Path(str(path)).is_file():
            try:
                check_file(path)
            except UserError as e:
                raise gr.Error(str(e)) from None
        return fn(path, *args, **kw)
    return guarded
