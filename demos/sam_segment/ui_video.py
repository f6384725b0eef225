"""The tab's video part: upload a clip, click the object on its first frame, Track (SAM 2.1), Stop, and download the
overlay video and the per-frame masks. Clicks need no model; tracking is the engine's streaming method
`track_video` through `ctx.stream` (the lease is held while frames are tracked; Stop closes the stream, which sets
the method's job.stop: it ends at the next frame and deletes the half-written files)."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import numpy as np

from demos.sam_segment.formats import draw_prompts
from demos.sam_segment.prompts import NEGATIVE, POSITIVE
from demos.sam_segment.types import MAX_FRAMES, Picture, TrackProgress, TrackRequest
from demos.sam_segment.video import FRAMES_RANGE, MAX_SIDE, first_frame
from hub import fields
from hub.errors import UserError

VIDEO_MODES = ("Positive point", "Negative point")
HINT = (f"Upload a short video, click the object on its first frame (shown at most {MAX_SIDE} px wide), then press "
        "**Track**. Tracking needs a SAM 2.1 model.")


def _frame_picture(frame: np.ndarray) -> Picture:
    return Picture(np.ascontiguousarray(frame, np.uint8), "")


def show_first_frame(video):
    """A new video: its first frame to click on, and no clicks yet."""
    if video is None:
        return None, None, [], [], HINT
    frame = first_frame(video)
    return frame, frame, [], [], "Click the object on the frame (green: on it, red: not on it), then press Track."


def click(frame, points, labels, mode_value, evt: gr.SelectData):
    """A click on the first frame: one more point, and the frame with every point drawn."""
    if frame is None:
        raise UserError("Upload a video first, then click on its first frame.")
    frame = np.asarray(frame)
    x, y = (float(v) for v in evt.index[:2])
    h, w = frame.shape[:2]
    if not (0 <= x < w and 0 <= y < h):
        raise UserError(f"The click ({x:g}, {y:g}) is outside the frame ({w}x{h}); click on the frame itself.")
    points = [*(points or []), [x, y]]
    labels = [*(labels or []), POSITIVE if mode_value != VIDEO_MODES[1] else NEGATIVE]
    return draw_prompts(_frame_picture(frame), points, labels), points, labels


def clear(frame):
    return (None if frame is None else np.asarray(frame)), [], []


def track_events(ctx, video, points, labels, box, max_frames, model, progress):
    """/track_video: status lines while it runs, then the overlay video, the zip of masks and the record."""
    req = TrackRequest(video, points, labels, box, max_frames)
    for item in ctx.stream("track_video", req, model, progress=progress):
        if isinstance(item, TrackProgress):
            if item.total:
                progress((min(item.done, item.total), item.total), desc="Tracking", unit="frames")
            msg = f"Tracked {item.done}{f' / {item.total}' if item.total else ''} frames ({item.fps:.1f} frames/s)..."
            yield gr.skip(), gr.skip(), gr.skip(), msg
            continue
        result, rec = item, item.details
        seen = rec["frames_with_object"]
        yield (result.video, result.masks, rec,
               f"Tracked {result.frames} frames; the object has a mask on {seen} of them."
               + (f" {rec['note']}" if rec.get("note") else ""))


def components(c: SimpleNamespace) -> None:
    """The video part's components, inside the current layout."""
    with gr.Row():
        with gr.Column(scale=1):
            c.video_in = gr.Video(label="Video to track", sources=["upload"], height=260)
            c.v_frame = gr.Image(label="First frame: click the object", type="numpy", interactive=False,
                                 format="png", height=360, elem_id="sam-video-frame")
            c.v_mode = gr.Radio(list(VIDEO_MODES), value=VIDEO_MODES[0], label="A click adds")
            c.v_max_frames = fields.number("Max frames", *FRAMES_RANGE, MAX_FRAMES,
                                           info="a longer video is tracked for its first frames only")
            with gr.Row():
                c.v_clear = gr.Button("Clear clicks", size="sm")
                c.v_track = gr.Button("Track", variant="primary", scale=4, elem_id="sam-track",
                                      elem_classes=["hub-main"])
                c.v_stop = gr.Button("Stop", variant="stop", size="sm", visible=False, scale=1, min_width=80)
            c.v_status = gr.Markdown(HINT, elem_id="sam-video-status", elem_classes=["hub-status"])
            with gr.Accordion("Prompts (what the /track_video API takes)", open=False):
                c.v_points = gr.JSON(label="Points [[x, y], ...] in first-frame pixels", value=[])
                c.v_labels = gr.JSON(label="Labels: 1 positive, 0 negative", value=[])
                c.v_box = gr.JSON(label="Box [x0, y0, x1, y1] (optional)", value=None)
        with gr.Column(scale=1):
            c.v_out = gr.Video(label="Tracked video (H.264 MP4)", interactive=False, height=360)
            c.v_masks = gr.File(label="Per-frame masks (zip of PNGs, 255 = object)", interactive=False)
            c.v_record = gr.JSON(label="Details")
    c.v_clean = gr.State(None)  # the first frame without clicks drawn on it


def wire(ctx, c: SimpleNamespace, light) -> None:
    """The video part's events; `light` wraps a no-model handler (UserError -> gr.Error)."""

    @ctx.handler
    def run_track(video, points=None, labels=None, box=None, max_frames=MAX_FRAMES, model=None,
                  progress=gr.Progress(track_tqdm=True)):
        """Track one object through a video with SAM 2.1: click it on the first frame, get the video with the
        object tinted blue (H.264 MP4), every frame's mask as a PNG in a zip, and the details.

        Args:
            video: the video file (MP4, WebM, MOV, MKV or AVI).
            points: points [[x, y], ...] on the first frame, in its pixels after scaling to at most 640 px on the
                longest side (a smaller video keeps its size); [] for none (then give a box).
            labels: one label per point: 1 on the object (positive), 0 not on it (negative).
            box: optional box [x0, y0, x1, y1] around the object on the first frame; None for no box.
            max_frames: the most frames to track (1 to 300); a longer video is tracked for its first max_frames frames.
            model: a SAM 2.1 model from the list; the hub's default if left out (it must be a SAM 2.1 model).
        """
        yield from track_events(ctx, video, points, labels, box, max_frames, model, progress)

    quiet = {"api_name": False, "show_progress": "hidden"}
    c.video_in.change(light(show_first_frame), [c.video_in], [c.v_frame, c.v_clean, c.v_points, c.v_labels,
                                                               c.v_status], **quiet)
    c.v_frame.select(light(click), [c.v_clean, c.v_points, c.v_labels, c.v_mode],
                     [c.v_frame, c.v_points, c.v_labels], **quiet)
    c.v_clear.click(clear, [c.v_clean], [c.v_frame, c.v_points, c.v_labels], **quiet)
    event = c.v_track.click(lambda: gr.update(visible=True), None, c.v_stop, **quiet).then(
        run_track, [c.video_in, c.v_points, c.v_labels, c.v_box, c.v_max_frames, c.model],
        [c.v_out, c.v_masks, c.v_record, c.v_status], api_name="track_video", **ctx.events_on(c.v_status))
    for after in (event.then, event.failure):  # `then` alone does not follow a failed run
        after(lambda: gr.update(visible=False), None, c.v_stop, **quiet)
    c.v_stop.click(lambda: gr.update(visible=False), None, c.v_stop, cancels=[event], **quiet)
