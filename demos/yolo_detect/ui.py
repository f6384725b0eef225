"""The YOLO tab: the model picker, one row of settings, then Image, Video and Webcam (live tracking) sub-tabs.

Each sub-tab reads top to bottom (input, its one main button, its status line, its results) and keeps its own
status and record, so switching sub-tabs never shows another mode's results. Progress and errors show on the
sub-tab's status line only (`ctx.events_on`): an error leaves the other outputs as they were. Handlers are thin:
they build a typed request (types.py) and reach the engine's work methods only through `ctx.call` (image, webcam
frame, class list) and `ctx.stream` (video); the engine does all checking and work. The webcam's ByteTrack tracker
lives in the engine, keyed by the page's session and the model, so track ids carry over on any backend. Every
number is a `hub.fields` box: a value out of range gets the validator's sentence, never a silent clamp (a gradio
slider clamps what is typed into it).
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from pathlib import Path
from types import SimpleNamespace

from .engine import load_image
from .formats import COLUMNS, counts_long
from .spec import COCO_NAMES, DEFAULTS, IMGSZ_RANGE, MAX_DET_RANGE, SPEC
from .types import DetectRequest, NamesRequest, TrackRequest, VideoProgress, VideoRequest, VideoResult
from .video import pan_clip

log = logging.getLogger("demohub")


def _asset(name: str) -> str | None:
    """A sample image that ships with ultralytics, found without importing it."""
    from hub.assets import package_file

    p = package_file("ultralytics", "assets", name)
    return str(p) if p else None


def _sample_clip() -> str | None:
    """A 3 s H.264 pan across ultralytics' zidane.jpg, made once per machine (gradio's sample videos show a
    globe and a title card: nothing a COCO detector finds). None, with a log line, if it cannot be made."""
    src = _asset("zidane.jpg")
    out = Path(tempfile.gettempdir()) / "demohub" / SPEC.name / "examples" / "zidane_pan.mp4"
    if src is None or out.is_file():
        return str(out) if src else None
    try:
        return str(pan_clip(Path(src), out))
    except Exception as e:  # an optional example: the tab works without it
        log.warning("Could not make the sample video for the YOLO tab (%s: %s); it is left out.", type(e).__name__, e)
        return None


# ---- handlers ---------------------------------------------------------------------------------------------------

COUNT_HEADERS = ["class", "count"]


def _frame(rows, headers: list[str]):
    """A table with its headers even when it has no rows (an empty list would show "1 2 3" as headers)."""
    import pandas as pd

    return pd.DataFrame(rows, columns=headers)


def _nothing(rec: dict, where: str = "") -> str:
    classes = rec.get("classes")
    among = f" among {', '.join(map(str, classes))}" if isinstance(classes, list) and classes else ""
    return f"Nothing found{among} at confidence {rec['conf']:g}{where}"


def image_summary(rec: dict | None, counts) -> str:
    """The Image status line after a detection, in words (zero included), from the record and the counts table
    (a step after /detect, so the API keeps its five outputs)."""
    if not rec or "detections" not in rec:
        return ""
    took = f" ({rec['ms']:.0f} ms)"
    n = rec["detections"]
    if not n:
        return f"{_nothing(rec)}{took}."
    rows = counts.values.tolist() if hasattr(counts, "values") else (counts or {}).get("data", [])
    return f"Found {n} object{'s' if n != 1 else ''}: {', '.join(f'{c} {label}' for label, c in rows)}{took}."


def detect_image(ctx, model, image, conf, iou, classes, max_det, imgsz, progress=None):
    """/detect: the drawn image, the table, the counts, the CSV + JSON files and the record."""
    out = ctx.call("detect", DetectRequest(image, conf, iou, classes, max_det, imgsz), model, progress=progress)
    rows = _frame([[r[c] for c in COLUMNS] for r in out.rows], COLUMNS)
    counts = _frame(list(out.counts.items()), COUNT_HEADERS)
    return out.image, rows, counts, list(out.files), out.record


def detect_video_events(ctx, model, video, conf, iou, classes, max_det, imgsz, tracking, progress):
    """/detect_video: status lines while it runs, then the video, a summary, the plot, the counts CSV, the record."""
    import gradio as gr

    request = VideoRequest(video, conf, iou, classes, max_det, imgsz, tracking=bool(tracking))
    for item in ctx.stream("detect_video", request, model, progress=progress):
        if isinstance(item, VideoProgress):
            if item.total:
                progress((min(item.done, item.total), item.total), desc="Detecting", unit="frames")
            msg = f"Processed {item.done}{f' / {item.total}' if item.total else ''} frames ({item.fps:.1f} frames/s)..."
            yield gr.skip(), msg, gr.skip(), gr.skip(), gr.skip()
            continue
        result, rec = item.result, item.record
        yield result.path, video_summary(result, rec), counts_plot(result), item.counts_csv, rec


def counts_plot(result: VideoResult):
    """Objects per frame over time. The y axis reaches at least 10, so its ticks are whole counts (a plot of
    counts of 1 and 2 would otherwise be labelled 0.5, 1.5)."""
    import gradio as gr
    import pandas as pd

    rows = counts_long(result)
    peak = max((r["count"] for r in rows), default=0)
    return gr.LinePlot(pd.DataFrame(rows, columns=["time_s", "class", "count"]), y_lim=[0, max(10, peak)])


def video_summary(result: VideoResult, rec: dict) -> str:
    import gradio as gr

    text = (f"Done: {result.frames} frames at {result.fps:.2f} frames/s ({result.duration_s:.1f} s of video) "
            f"in {result.seconds:.1f} s.")
    if not result.totals():
        text += f" {_nothing(rec, ' in any frame')}."
    if result.tracks is not None:
        text += " Distinct objects: " + (", ".join(f"{k} {v}" for k, v in result.tracks.items()) or "none") + "."
    for note in result.notes:
        text += f" {note}"
        gr.Warning(note)
    return text


def track_webcam(ctx, model, frame, conf, iou, classes, max_det, imgsz, session: str | None):
    """track_stream: one webcam frame detected and tracked. The tracker lives in the engine under the key
    `<session>:<model>` (the page's session hash), so the ids of one stream carry over between frames."""
    if frame is None:
        return None, ""
    key = f"{session or uuid.uuid4().hex}:{model or ctx.default_model()}"
    out = ctx.call("track_stream", TrackRequest(frame, key, conf, iou, classes, max_det, imgsz), model)
    counts = ", ".join(f"{n} {label}" for label, n in out.counts.items())
    said = f"In view: {counts}." if out.found else _nothing({"conf": conf if conf is not None else DEFAULTS["conf"],
                                                             "classes": classes}, " in this frame") + "."
    return out.image, said


# ---- layout -----------------------------------------------------------------------------------------------------


def _settings(ctx):
    import gradio as gr

    from hub import fields

    start_names = list(COCO_NAMES) if ctx.choice().source in ("native", "random") else []
    with gr.Accordion("Settings (every mode)", open=False), gr.Row():
        conf = fields.number("Confidence threshold", 0, 1, DEFAULTS["conf"], integer=False, step=0.05,
                             info="boxes less sure than this are dropped")
        iou = fields.number("IoU threshold", 0, 1, DEFAULTS["iou"], integer=False, step=0.05,
                            info="overlap allowed between boxes (NMS; YOLO26 is NMS-free and ignores it)")
        max_det = fields.number("Max detections per image", *MAX_DET_RANGE, DEFAULTS["max_det"])
        imgsz = fields.number("Inference size (pixels)", *IMGSZ_RANGE, DEFAULTS["imgsz"], step=32,
                              info="rounded up to a multiple of 32")
        classes = gr.Dropdown(start_names, value=[], multiselect=True, allow_custom_value=True,
                              label="Only these classes (empty = every class)")
    return [conf, iou, classes, max_det, imgsz]


def _record_box():
    import gradio as gr

    return gr.JSON(label="Record (model, device, parameters)")


def _image_tab(ui) -> None:
    """Input, Detect and the status line on the left, the detections on the right (together at 1440x900); the
    samples under the button; the tables, downloads and record below."""
    import gradio as gr

    from hub.page import MAIN, STATUS
    from hub.uploads import undecoded

    with gr.Tab("Image"):
        with gr.Row(equal_height=False):
            with gr.Column(min_width=300):
                ui.image = undecoded(gr.Image(sources=["upload", "webcam", "clipboard"], type="filepath",
                                              label="Image", height=320))
                ui.go = gr.Button("Detect", variant="primary", elem_classes=[MAIN])
                ui.image_status = gr.Markdown(label="Status", show_label=False, elem_classes=["status", STATUS])
                examples = [p for p in (_asset("bus.jpg"), _asset("zidane.jpg")) if p]
                if examples:
                    gr.Examples([[p] for p in examples], [ui.image], label="Sample images (ship with ultralytics)")
            with gr.Column(min_width=300):
                ui.annotated = gr.Image(label="Detections", type="numpy", format="jpeg", interactive=False,
                                        height=320, elem_classes=["hub-compact"])
        with gr.Row():
            ui.table = gr.Dataframe(_frame([], COLUMNS), headers=COLUMNS, label="Detections", interactive=False,
                                    wrap=True, max_height=360, scale=3)
            ui.counts = gr.Dataframe(_frame([], COUNT_HEADERS), headers=COUNT_HEADERS, label="Objects per class",
                                     interactive=False, max_height=360, scale=1)
        ui.downloads = gr.File(label="Download the table (CSV, JSON)", file_count="multiple", interactive=False)
        ui.image_record = _record_box()


def _video_tab(ui) -> None:
    import gradio as gr

    from hub.page import MAIN, STATUS

    with gr.Tab("Video"):
        with gr.Row(equal_height=False):
            with gr.Column(min_width=300):
                ui.video_in = gr.Video(label="Video file", sources=["upload"], height=280)
                ui.tracking = gr.Checkbox(False, label="Track objects across frames (ByteTrack ids; counts distinct "
                                                       "objects)")
                with gr.Row():
                    ui.run_video = gr.Button("Detect in video", variant="primary", scale=4, elem_classes=[MAIN])
                    ui.stop_video = gr.Button("Stop", variant="stop", size="sm", visible=False, scale=1, min_width=80)
                ui.video_status = gr.Markdown(label="Status", show_label=False, elem_classes=["status", STATUS])
                clip = _sample_clip()
                if clip:
                    gr.Examples([[clip]], [ui.video_in], label="Sample video (a 3 s pan across ultralytics' "
                                                               "zidane.jpg)", cache_examples=False)
            with gr.Column(min_width=300):
                ui.video_out = gr.Video(label="Annotated video (H.264 MP4)", interactive=False, height=280)
        ui.counts_plot = gr.LinePlot(x="time_s", y="count", color="class", label="Objects per frame",
                                     y_lim=[0, 10], height=300)
        ui.counts_file = gr.File(label="Per-frame counts (CSV)", interactive=False)
        ui.video_record = _record_box()


def _webcam_tab(ui) -> None:
    import gradio as gr

    with gr.Tab("Webcam (live tracking)"):
        gr.Markdown("Start the webcam: every frame is detected and tracked (ByteTrack), ids stay with objects.")
        with gr.Row():
            ui.cam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam")
            ui.cam_out = gr.Image(label="Tracked", type="numpy", format="jpeg", interactive=False, streaming=False)
        ui.cam_status = gr.Markdown(label="Status", show_label=False, elem_classes=["status"])
        # /track_stream for API callers: gradio_client cannot feed a streaming event, so the same handler also
        # serves one frame per call (a caller's session keeps its tracker between calls, as the webcam's does)
        ui.api_frame = gr.Image(type="numpy", label="Frame", visible=False)
        ui.api_track = gr.Button("Track one frame", visible=False)


def build(ctx) -> None:
    """The tab, inside the current gr.Blocks: the picker, the Image, Video and Webcam sub-tabs, then the settings
    they share (collapsed)."""
    import gradio as gr

    ui = SimpleNamespace()
    ui.model, ui.notice = ctx.model_picker()
    with gr.Tabs():
        _image_tab(ui)
        _video_tab(ui)
        _webcam_tab(ui)
    ui.settings = _settings(ctx)  # conf, iou, classes, max_det, imgsz: the handlers' order after the input
    ui.classes = ui.settings[2]
    _events(ctx, ui)


def _events(ctx, ui) -> None:
    import gradio as gr

    from hub.uploads import refuse_bad_images

    @ctx.handler
    def run_detect(model, image, conf, iou, classes, max_det, imgsz, progress=gr.Progress(track_tqdm=True)):
        """Detect objects in one image: the image with boxes, the boxes table (original image pixels), the objects
        per class, the table as CSV and JSON, and the reproducibility record.

        Args:
            model: A YOLO model this hub lists (the Model picker's values); empty for the hub's default.
            image: The image (PNG, JPEG, WebP ...).
            conf: Confidence threshold from 0 to 1: boxes less sure than this are dropped (default 0.25).
            iou: IoU threshold from 0 to 1 for non-maximum suppression: overlap allowed between boxes (0.7); the
                NMS-free YOLO26 models ignore it.
            classes: Only these classes, by name ("person") or id; empty for every class.
            max_det: Most boxes kept per image, a whole number from 1 to 3000 (300).
            imgsz: Inference size in pixels, a whole number from 32 to 2048, rounded up to a multiple of 32 (640).
        """
        return detect_image(ctx, model, image, conf, iou, classes, max_det, imgsz, progress)

    @ctx.handler
    def run_video(model, video, conf, iou, classes, max_det, imgsz, tracking=False,
                  progress=gr.Progress(track_tqdm=True)):
        """Detect (and optionally track) objects in every frame of a video: the annotated H.264 MP4, a status line,
        the objects per frame, the per-frame counts as CSV and the reproducibility record.

        Args:
            model: A YOLO model this hub lists (the Model picker's values); empty for the hub's default.
            video: The video file (mp4, webm, mov ...).
            conf: Confidence threshold from 0 to 1 (default 0.25).
            iou: IoU threshold from 0 to 1 for non-maximum suppression (0.7); YOLO26 ignores it.
            classes: Only these classes, by name ("person") or id; empty for every class.
            max_det: Most boxes kept per frame, a whole number from 1 to 3000 (300).
            imgsz: Inference size in pixels, a whole number from 32 to 2048, rounded up to a multiple of 32 (640).
            tracking: Track objects across frames (ByteTrack) and count distinct objects.
        """
        yield from detect_video_events(ctx, model, video, conf, iou, classes, max_det, imgsz, tracking, progress)

    @ctx.handler
    def class_choices(model):
        if ctx.choice(model).source in ("native", "random"):  # every listed model knows COCO's 80 classes
            return gr.update(choices=list(COCO_NAMES), value=[])
        names = ctx.call("class_names", NamesRequest(), model).names
        return gr.update(choices=list(names), value=[])

    quiet = {"api_visibility": "private", "show_progress": "hidden"}  # queued: a queue=False step lost clicks
    # an upload is read right away: a file that is not an image is refused on upload, not on Detect
    refuse_bad_images(ctx, ui.image, ui.image_status, load_image)
    ui.go.click(run_detect, [ui.model, ui.image, *ui.settings],
                [ui.annotated, ui.table, ui.counts, ui.downloads, ui.image_record], api_name="detect",
                **ctx.events_on(ui.image_status)).success(image_summary, [ui.image_record, ui.counts], ui.image_status,
                                                          **quiet)
    # Stop shows while a video runs (shown first: a second listener on the button would wait for the run)
    video_event = ui.run_video.click(lambda: gr.update(visible=True), None, ui.stop_video, **quiet).then(
        run_video, [ui.model, ui.video_in, *ui.settings, ui.tracking],
        [ui.video_out, ui.video_status, ui.counts_plot, ui.counts_file, ui.video_record], api_name="detect_video",
        **ctx.events_on(ui.video_status))
    for after in (video_event.then, video_event.failure):  # `then` alone does not follow a failed run
        after(lambda: gr.update(visible=False), None, ui.stop_video, **quiet)
    ui.stop_video.click(lambda: gr.update(visible=False), None, ui.stop_video, cancels=[video_event], **quiet)
    _webcam_events(ctx, ui)
    ui.model.change(class_choices, ui.model, ui.classes, api_visibility="private", **ctx.events_on(ui.image_status))


def _webcam_events(ctx, ui) -> None:
    """The webcam stream (every frame, private) and /track_stream (one frame per call) on one tracking handler."""
    import gradio as gr

    def run_track(model, frame, conf, iou, classes, max_det, imgsz, request=None):
        """Detect and track the objects in one frame of a stream (ByteTrack): the frame with boxes and track ids
        drawn, and a status line. Frames of one session (and model) share one tracker, so ids stay with objects.

        Args:
            model: A YOLO model this hub lists (the Model picker's values); empty for the hub's default.
            frame: One frame of the stream (an image).
            conf: Confidence threshold from 0 to 1 (default 0.25).
            iou: IoU threshold from 0 to 1 for non-maximum suppression (0.7); YOLO26 ignores it.
            classes: Only these classes, by name ("person") or id; empty for every class.
            max_det: Most boxes kept per frame, a whole number from 1 to 3000 (300).
            imgsz: Inference size in pixels, a whole number from 32 to 2048, rounded up to a multiple of 32 (640).
        """
        session = getattr(request, "session_hash", None)
        return track_webcam(ctx, model, frame, conf, iou, classes, max_det, imgsz, session)

    run_track.__annotations__ = {"request": gr.Request}  # gradio passes the page's request (its session hash)
    run_track = ctx.handler(run_track)
    ui.cam.stream(run_track, [ui.model, ui.cam, *ui.settings], [ui.cam_out, ui.cam_status],
                  stream_every=0.2, time_limit=300, api_name="track_webcam", api_visibility="private",
                  **ctx.events_on(ui.cam_status))
    ui.api_track.click(run_track, [ui.model, ui.api_frame, *ui.settings], [ui.cam_out, ui.cam_status],
                       api_name="track_stream", **ctx.events_on(ui.cam_status))
