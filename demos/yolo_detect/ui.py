"""The YOLO tab: Image, Video and Webcam (live tracking) sub-tabs sharing one row of settings.

Handlers are thin: they reach the model only through `ctx.run` (image, webcam frame, class list) and `ctx.stream`
(video), and the engine does all checking and work.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from hub.outputs import request_folder

from .engine import check_params, detect
from .formats import COLUMNS, annotate, counts_long, export_counts, export_table
from .spec import COCO_NAMES, DEFAULTS, SPEC
from .video import VideoProgress, VideoResult, detect_video, new_tracker, pan_clip, track_frame

log = logging.getLogger("demohub")


def _asset(name: str) -> str | None:
    """A sample image that ships with ultralytics, found without importing it."""
    from hub.assets import package_file

    p = package_file("ultralytics", "assets", name)
    return str(p) if p else None


# Two input tweaks, made on the component instances: subclassing a gradio component would make gradio write a .pyi
# stub next to this file.


def _undecoded(image):
    """gr.Image that hands the engine the uploaded file untouched: decoding, EXIF rotation, the pixel cap and the
    error sentences all live in the hub's decoder (gradio's own preprocessing opens the file with PIL)."""
    original = image.preprocess

    def preprocess(payload):
        if payload is not None and payload.path and not (payload.url or "").startswith("data:"):
            return str(payload.path)
        return original(payload)

    image.preprocess = preprocess
    return image


def _raw(slider):
    """A slider whose value reaches the engine as sent, so an API caller gets the engine's sentence for a value out
    of range (e.g. confidence 1.5) instead of gradio's bare bounds error."""
    slider.preprocess = lambda payload: payload
    return slider


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


def _record(lease, params: dict, classes, **extra) -> dict:
    """The reproducibility record; native checkpoints are pinned by hash, not revision, so the hash goes in."""
    sha = lease.weights.choice.sha256
    pinned = {"sha256": sha} if sha and not lease.weights.is_random else {}
    return lease.record(**pinned, conf=params["conf"], iou=params["iou"], classes=classes or "all",
                        max_det=params["max_det"], imgsz=params["imgsz"], **extra)


# ---- handlers ---------------------------------------------------------------------------------------------------


def detect_image(ctx, model_id, image, conf, iou, classes, max_det, imgsz):
    """/detect: the drawn image, the table, the counts, the CSV + JSON files and the record."""
    import pandas as pd

    def work(lease):
        params = check_params(lease.engine, conf, iou, classes, max_det, imgsz)
        t0 = time.perf_counter()
        det = detect(lease.engine, image, conf, iou, classes, max_det, imgsz)
        ms = (time.perf_counter() - t0) * 1e3
        rec = _record(lease, params, classes, image=f"{det.original_size[0]}x{det.original_size[1]}",
                      detections=len(det), ms=round(ms, 1))
        if det.scale != 1.0:
            rec["note"] = (f"Large image: detected on a {det.image.shape[1]}x{det.image.shape[0]} copy; "
                           "table coordinates are in the original image's pixels.")
        return det, annotate(det), rec

    det, drawn, rec = ctx.run(work, model_id)
    csv_path, json_path = export_table(det, request_folder(SPEC.name, "tables"), record=rec)
    rows = pd.DataFrame(det.rows(), columns=COLUMNS)
    counts = pd.DataFrame({"class": list(det.counts()), "count": list(det.counts().values())})
    return drawn, rows, counts, [str(csv_path), str(json_path)], rec


def detect_video_events(ctx, model_id, video, conf, iou, classes, max_det, imgsz, tracking, progress):
    """/detect_video: status lines while it runs, then the video, a summary, the plot, the counts CSV, the record."""
    import gradio as gr
    import pandas as pd

    out_path = request_folder(SPEC.name, "videos") / "detections.mp4"

    def job(lease):
        params = check_params(lease.engine, conf, iou, classes, max_det, imgsz)
        for item in detect_video(lease.engine, video, out_path, conf, iou, classes, max_det, imgsz,
                                 tracking=bool(tracking), max_frames=ctx.options.max_video_frames):
            if isinstance(item, VideoResult):
                item = (item, _record(lease, params, classes, tracking=bool(tracking), frames=item.frames,
                                      fps=round(item.fps, 3), size=f"{item.width}x{item.height}",
                                      processing_fps=round(item.frames / max(item.seconds, 1e-9), 1)))
            yield item

    for item in ctx.stream(job, model_id):
        if isinstance(item, VideoProgress):
            if item.total:
                progress((min(item.done, item.total), item.total), desc="Detecting", unit="frames")
            msg = f"Processed {item.done}{f' / {item.total}' if item.total else ''} frames ({item.fps:.1f} frames/s)..."
            yield gr.skip(), msg, gr.skip(), gr.skip(), gr.skip()
            continue
        result, rec = item
        rec["totals"] = result.totals()
        if result.tracks is not None:
            rec["distinct_objects"] = result.tracks
        plot = pd.DataFrame(counts_long(result), columns=["time_s", "class", "count"])
        counts = export_counts(result, out_path.parent / "counts_per_frame.csv")
        yield str(result.path), _summary(result), plot, str(counts), rec


def _summary(result: VideoResult) -> str:
    import gradio as gr

    text = (f"Done: {result.frames} frames at {result.fps:.2f} frames/s ({result.duration_s:.1f} s of video) "
            f"in {result.seconds:.1f} s.")
    if result.tracks is not None:
        text += " Distinct objects: " + (", ".join(f"{k} {v}" for k, v in result.tracks.items()) or "none") + "."
    for note in result.notes:
        text += f" {note}"
        gr.Warning(note)
    return text


def track_webcam(ctx, model_id, frame, conf, iou, classes, max_det, imgsz, state):
    """track_stream: one webcam frame detected and tracked; `state` = (model id, its tracker) per stream."""
    if frame is None:
        return None, state
    model_key = model_id or ctx.default_model()

    def work(lease):
        nonlocal state
        if state is None or state[0] != model_key:
            state = (model_key, new_tracker(30.0))
        return annotate(track_frame(lease.engine, state[1], frame, conf, iou, classes, max_det, imgsz))

    return ctx.run(work, model_id), state


# ---- layout -----------------------------------------------------------------------------------------------------


def _settings(ctx):
    import gradio as gr

    start_names = list(COCO_NAMES) if ctx.choice().source in ("native", "random") else []
    with gr.Row():
        conf = _raw(gr.Slider(0, 1, DEFAULTS["conf"], step=0.01, label="Confidence threshold"))
        iou = _raw(gr.Slider(0, 1, DEFAULTS["iou"], step=0.01, label="IoU threshold (overlap allowed between boxes)"))
        max_det = _raw(gr.Slider(1, 1000, DEFAULTS["max_det"], step=1, label="Max detections per image"))
        imgsz = _raw(gr.Slider(320, 1280, DEFAULTS["imgsz"], step=32, label="Inference size (pixels)"))
    classes = gr.Dropdown(start_names, value=[], multiselect=True, allow_custom_value=True,
                          label="Only these classes (empty = every class)")
    return [conf, iou, classes, max_det, imgsz]


def _image_tab(ui) -> None:
    import gradio as gr

    with gr.Tab("Image"):
        with gr.Row():
            ui.image = _undecoded(gr.Image(sources=["upload", "webcam", "clipboard"], type="filepath", label="Image"))
            ui.annotated = gr.Image(label="Detections", type="numpy", format="jpeg", interactive=False)
        ui.go = gr.Button("Detect", variant="primary")
        examples = [p for p in (_asset("bus.jpg"), _asset("zidane.jpg")) if p]
        if examples:
            gr.Examples([[p] for p in examples], [ui.image], label="Sample images (ship with ultralytics)")
        with gr.Row():
            ui.table = gr.Dataframe(headers=COLUMNS, label="Detections", interactive=False, wrap=True, max_height=360)
            ui.chart = gr.BarPlot(x="class", y="count", title="Objects per class", sort="-y", y_lim=[0, None],
                                  height=300)
        ui.downloads = gr.File(label="Download the table (CSV, JSON)", file_count="multiple", interactive=False)


def _video_tab(ui) -> None:
    import gradio as gr

    with gr.Tab("Video"):
        with gr.Row():
            ui.video_in = gr.Video(label="Video file", sources=["upload"])
            ui.video_out = gr.Video(label="Annotated video (H.264 MP4)", interactive=False)
        ui.tracking = gr.Checkbox(False, label="Track objects across frames (ByteTrack ids; counts distinct objects)")
        with gr.Row():
            ui.run_video = gr.Button("Detect in video", variant="primary")
            ui.stop_video = gr.Button("Stop", variant="stop")
        clip = _sample_clip()
        if clip:
            gr.Examples([[clip]], [ui.video_in], label="Sample video (a 3 s pan across ultralytics' zidane.jpg)",
                        cache_examples=False)
        ui.status = gr.Markdown()
        ui.counts_plot = gr.LinePlot(x="time_s", y="count", color="class", title="Objects per frame",
                                     y_lim=[0, None], height=300)
        ui.counts_file = gr.File(label="Per-frame counts (CSV)", interactive=False)


def _webcam_tab(ui) -> None:
    import gradio as gr

    with gr.Tab("Webcam (live tracking)"):
        gr.Markdown("Start the webcam: every frame is detected and tracked (ByteTrack), ids stay with objects.")
        with gr.Row():
            ui.cam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam")
            ui.cam_out = gr.Image(label="Tracked", type="numpy", format="jpeg", interactive=False, streaming=False)
        ui.cam_state = gr.State(None)


def build(ctx) -> None:
    """The tab, inside the current gr.Blocks."""
    import gradio as gr

    ui = SimpleNamespace(model=ctx.model_dropdown())
    ui.settings = _settings(ctx)  # conf, iou, classes, max_det, imgsz: the handlers' order after the input
    ui.classes = ui.settings[2]
    ui.record = gr.JSON(label="Record (model, device, parameters)", render=False)
    _image_tab(ui)
    _video_tab(ui)
    _webcam_tab(ui)
    ui.record.render()
    _events(ctx, ui)


def _events(ctx, ui) -> None:
    import gradio as gr

    @ctx.handler
    def run_detect(model_id, image, conf, iou, classes, max_det, imgsz, progress=gr.Progress(track_tqdm=True)):
        return detect_image(ctx, model_id, image, conf, iou, classes, max_det, imgsz)

    @ctx.handler
    def run_video(model_id, video, conf, iou, classes, max_det, imgsz, tracking,
                  progress=gr.Progress(track_tqdm=True)):
        yield from detect_video_events(ctx, model_id, video, conf, iou, classes, max_det, imgsz, tracking, progress)

    @ctx.handler
    def run_track(model_id, frame, conf, iou, classes, max_det, imgsz, state):
        return track_webcam(ctx, model_id, frame, conf, iou, classes, max_det, imgsz, state)

    @ctx.handler
    def class_choices(model_id):
        names = ctx.run(lambda lease: list(lease.engine.names.values()), model_id)
        return gr.update(choices=names, value=[])

    ui.go.click(run_detect, [ui.model, ui.image, *ui.settings],
                [ui.annotated, ui.table, ui.chart, ui.downloads, ui.record], api_name="detect", **ctx.events)
    video_event = ui.run_video.click(
        run_video, [ui.model, ui.video_in, *ui.settings, ui.tracking],
        [ui.video_out, ui.status, ui.counts_plot, ui.counts_file, ui.record], api_name="detect_video", **ctx.events)
    ui.stop_video.click(None, None, None, cancels=[video_event])
    ui.cam.stream(run_track, [ui.model, ui.cam, *ui.settings, ui.cam_state], [ui.cam_out, ui.cam_state],
                  stream_every=0.2, time_limit=300, api_name="track_stream", **ctx.events)
    ui.model.change(class_choices, ui.model, ui.classes, api_visibility="private", **ctx.events)
