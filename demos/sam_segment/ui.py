"""The Segment Anything tab: click points, a box by two corner clicks, undo, clear, candidate masks, warm-up on
upload, segment everything with Stop, and (ui_video.py) video tracking with SAM 2.1. Handlers that need the model
build a request (types.py) and go through `ctx.call` (the engine keeps each session's image embeddings, keyed by
gradio's session hash); the click bookkeeping (no model) runs without a GPU slot.

The image the user clicks shows the clicks drawn on it, so the picture the model sees is kept unchanged beside it in
a hidden image (`source`): the page copies every new image there (no round trip), and every handler reads it."""

import functools
import json
import logging
import threading
from types import SimpleNamespace

import gradio as gr
import numpy as np

from demos.sam_segment import SPEC, ui_video
from demos.sam_segment.engine import NEGATIVE, POSITIVE, check_segment, prepare_image
from demos.sam_segment.everything import MIN_AREA, POINTS_PER_SIDE, THRESHOLD, check_settings
from demos.sam_segment.formats import as_pil, cutout, draw_prompts, mask_png, save_for_display, thumbnail
from demos.sam_segment.types import EmbedRequest, EverythingRequest, SegmentRequest
from hub import fields
from hub.assets import package_file
from hub.errors import UserError
from hub.outputs import request_folder
from hub.page import MAIN, STATUS
from hub.streams import Stopped

log = logging.getLogger("demohub")

MODES = ("Positive point", "Negative point", "Box (two corner clicks)")
HEIGHT = 440  # px: images are shown whole (contained) at most this tall: the image and its mask fit one screen
COPY = "(image) => image"
HINT = "Click on the object to segment it; more clicks refine the mask."  # the page copies a new image into the hidden source as it is
CORNER = "Now click the opposite corner of the box."  # box mode, after its first corner: nothing to segment yet
READY = "Press **Segment everything** to find every object in the image."
STOPPED = "Stopped before it finished; press **Segment everything** to start again."


def fresh(key: str | None = None) -> dict:
    """The clicks of one image: points [x, y, label], a box, a pending first corner, and an undo history."""
    return {"key": key, "points": [], "box": None, "corner": None, "history": []}


def light(fn):
    """The UI edge for quick state-only handlers (no model, so no GPU slot on ZeroGPU): UserError -> gr.Error."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            raise gr.Error(str(e), print_exception=False) from None
    return wrapper


def session(request) -> str:
    return getattr(request, "session_hash", None) or ""


def prompt_lists(state: dict):
    """(points, labels, box) of the click state, as the /segment API takes them."""
    pts = [[p[0], p[1]] for p in state["points"]]
    return pts, [p[2] for p in state["points"]], state["box"]


def drawn(picture, state: dict) -> str:
    """The clicked image with its clicks drawn on it (green positive, red negative, the box, a pending corner)."""
    points, labels, box = prompt_lists(state)
    drawing = draw_prompts(picture, points, labels, box, state.get("corner"))
    return save_for_display.drawing(drawing, request_folder(SPEC.name, "clicks", keep_s=600))


def summary(table: dict | None) -> str:
    """The status line after "Segment everything": how many masks, or in words why there are none."""
    masks, rec = (table or {}).get("masks") or [], (table or {}).get("record") or {}
    if masks:
        return f"Found {len(masks)} mask{'s' * (len(masks) != 1)}, largest first."
    area = rec.get("min_area") or 0
    kept = (f"predicted IoU at least {rec.get('pred_iou_thresh')}, stability at least "
            f"{rec.get('stability_score_thresh')}" + (f", {area} pixels or more" if area else ""))
    return f"No mask passed ({kept}): lower a threshold{' or the minimum mask area' if area else ''}."


class SamTab:
    """The tab's event handlers, and the Stop flags of its running "segment everything" requests (the image
    embeddings live in the engine)."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.stop_flags: dict[str, threading.Event] = {}
        self.stopped: set[str] = set()  # sessions whose last "segment everything" their Stop ended

    # ---- clicks (no model) --------------------------------------------------------------------------------------

    def on_click(self, state, mode_value, image, evt: gr.SelectData):
        """A click on the image: the new click state, the prompts it makes, and the image with the clicks drawn."""
        picture = prepare_image(image)
        state = json.loads(json.dumps(state or fresh()))
        if state["key"] != picture.key:
            if state["points"] or state["box"] or state["corner"]:
                gr.Warning("The image changed, so the clicks on the previous image were cleared.")
            state = fresh(picture.key)
        x, y = (float(v) for v in evt.index[:2])
        w, h = picture.size
        if not (0 <= x < w and 0 <= y < h):
            raise UserError(f"The click ({x:g}, {y:g}) is outside the image ({w}x{h}); click on the image itself.")
        if mode_value == MODES[2]:
            if state["corner"] is None:
                state["corner"] = [x, y]
                state["history"].append(["corner", None])
            else:
                (cx, cy) = state["corner"]
                if abs(cx - x) < 1 or abs(cy - y) < 1:
                    raise UserError("The two corners are on one line, so the box has no area; click the opposite "
                                    "corner of the object.")
                state["history"].append(["box", state["box"], state["corner"]])
                state["box"] = [min(cx, x), min(cy, y), max(cx, x), max(cy, y)]
                state["corner"] = None
        else:
            state["points"].append([x, y, POSITIVE if mode_value == MODES[0] else NEGATIVE])
            state["history"].append(["point", None])
        return state, *prompt_lists(state), drawn(picture, state)

    def undo(self, state, image):
        state = json.loads(json.dumps(state or fresh()))
        if state["history"]:
            kind, *old = state["history"].pop()
            if kind == "point":
                state["points"].pop()
            elif kind == "corner":
                state["corner"] = None
            else:
                state["box"], state["corner"] = old
        return state, *prompt_lists(state), self.redrawn(state, image)

    def clear(self, state, image):
        state = fresh((state or {}).get("key"))
        return state, [], [], None, self.redrawn(state, image)

    @staticmethod
    def redrawn(state, image):
        return None if image is None else drawn(prepare_image(image), state)

    def reset_for_new_image(self):
        # An upload, a sample or a paste: the old clicks and results belong to the old image.
        return fresh(), [], [], None, None, None, [], None, None, None, None, None, READY

    def forget_image(self):
        """The image was removed (its x) or cannot be read: it goes, with its hidden source, clicks and results."""
        return None, None, *self.reset_for_new_image()

    def check_image(self, image):
        """A new image is read once, before anything else, so an unreadable one is refused once."""
        prepare_image(image)

    # ---- segmenting ---------------------------------------------------------------------------------------------

    def outputs_for(self, picture, seg, index):
        mask = seg["masks"][index]
        label = f"mask {index + 1} (score {seg['scores'][index]:.3f})"
        base, mpng, cut = save_for_display(as_pil(picture), mask_png(mask), cutout(picture, mask),
                                           request_folder(SPEC.name, "clicks", keep_s=600))
        return (base, [(mask.astype(np.float32), label)]), mpng, cut

    def run_segment(self, image, points=None, labels=None, box=None, multimask=True, model=None,
                    request: gr.Request = None, progress=gr.Progress(track_tqdm=True)):
        """Segment the object that points and/or a box mark. Returns the image under the chosen mask, every
        candidate mask (best first), the chosen mask as a PNG, the transparent cut-out and the details (scores,
        timings, model).

        Args:
            image: the photo (PNG, JPEG or WebP).
            points: points [[x, y], ...] in image pixels; [] for none (then give a box).
            labels: one label per point: 1 on the object (positive), 0 not on it (negative).
            box: optional box [x0, y0, x1, y1] around the object, in image pixels; None for no box.
            multimask: true for three candidate masks, best first; false for one mask (best with many points).
            model: the SAM model, one of the listed ones; the hub's default if left out.
        """
        picture = prepare_image(image)
        prompts, multimask = check_segment(picture.size, points, labels, box, multimask)  # before any model loads
        shown = prompts.as_json()
        req = SegmentRequest(picture, shown["points"], shown["labels"], shown["box"], multimask, session(request))
        out = self.ctx.call("segment", req, model, progress=progress)
        kept = {"key": picture.key, "masks": out.masks, "scores": list(out.scores), "points": out.points,
                "labels": out.labels, "box": out.box}
        ov, mpng, cut = self.outputs_for(picture, kept, 0)
        thumbs = [(thumbnail(m), f"#{i + 1}  score {s:.3f}") for i, (m, s) in enumerate(zip(out.masks, out.scores))]
        return ov, thumbs, mpng, cut, out.record, kept

    def segment_clicks(self, state, image, points, labels, box, multimask, model, request: gr.Request = None,
                       progress=gr.Progress(track_tqdm=True)):
        """After a click: the masks the clicks make and the hint, or, while a box has only its first corner, nothing
        new and a word on what to click next (no error: the box is not finished)."""
        if (state or {}).get("corner") is not None:
            return (*[gr.skip()] * 6, CORNER)
        return (*self.run_segment(image, points, labels, box, multimask, model, request, progress), HINT)

    def refresh(self, image, points, labels, box, multimask, model, request: gr.Request = None,
                progress=gr.Progress(track_tqdm=True)):
        """After undo/clear: segment what is left, or no mask if nothing is (a pending corner alone makes none)."""
        has_positive = any(int(v) == POSITIVE for v in (labels or []))
        if image is None or not (has_positive or box):
            return None, [], None, None, None, None
        return self.run_segment(image, points, labels, box, multimask, model, request, progress)

    def pick(self, kept, image, evt: gr.SelectData):
        if kept is None:
            raise UserError("Click on the image first to make candidate masks.")
        picture = prepare_image(image)
        if picture.key != kept["key"]:
            raise UserError("The image changed since these masks were made; click on the new image.")
        return self.outputs_for(picture, kept, int(evt.index))

    def warm(self, image, model, request: gr.Request = None, progress=gr.Progress(track_tqdm=True)):
        """Encode a newly uploaded image right away, so the first click is fast."""
        if image is None:
            return
        try:
            self.ctx.call("embed", EmbedRequest(prepare_image(image), session(request)), model, progress=progress)
        except UserError as e:  # a warm-up nobody asked for: no toast (perhaps on another tab); a click says it
            log.info("SAM warm-up skipped: %s", e)

    # ---- segment everything -------------------------------------------------------------------------------------

    def run_everything(self, image, points_per_side=32, iou_threshold=0.88, stability_threshold=0.95, min_area=0,
                       model=None, request: gr.Request = None, progress=gr.Progress(track_tqdm=True)):
        """Find every object: returns the image with all masks (non-overlapping, largest first) and a table of them
        (area, box, predicted IoU, stability) with the record.

        Args:
            image: the photo (PNG, JPEG or WebP).
            points_per_side: a grid of this many prompt points a side (2 to 128); more finds smaller objects, slower.
            iou_threshold: keep masks whose predicted IoU (the model's quality estimate) is at least this (0 to 1).
            stability_threshold: keep masks whose stability score is at least this (0 to 1).
            min_area: drop masks smaller than this many pixels (0 keeps all).
            model: the SAM model, one of the listed ones; the hub's default if left out.
        """
        picture = prepare_image(image)
        s = check_settings(points_per_side, iou_threshold, stability_threshold, min_area)  # before any model loads
        sid = session(request)
        flag = self.stop_flags.setdefault(sid, threading.Event())
        flag.clear()
        req = EverythingRequest(picture, s.points_per_side, s.pred_iou_thresh, s.stability_score_thresh, s.min_area,
                                sid)
        self.stopped.discard(sid)
        try:
            out = self.ctx.call("segment_everything", req, model, progress=progress, stop=flag)
        except Stopped:
            if not flag.is_set():
                raise
            self.stopped.add(sid)  # the page's Stop: an answer, not an error (the status line says it)
            return gr.skip(), gr.skip()
        finally:
            self.stop_flags.pop(sid, None)  # only running requests have a flag: the dict stays small
        annotations = [(f.mask.astype(np.float32), f"#{i + 1}") for i, f in enumerate(out.masks)]
        return (as_pil(picture), annotations), {"masks": [f.summary(i + 1) for i, f in enumerate(out.masks)],
                                                "record": out.record}

    def stop(self, request: gr.Request):
        """Stop: the work ends at its next batch of points and the run returns (no cancelled event, no error)."""
        flag = self.stop_flags.get(session(request))
        if flag is not None:
            flag.set()
        return gr.Button(interactive=False)

    def page_closed(self, request: gr.Request):
        """The page went away: its "segment everything" stops at the next batch of points. (gradio stops iterating
        a closed page's generators, which stops their work; a plain function like this one would run on.)"""
        flag = self.stop_flags.get(session(request))
        if flag is not None:
            flag.set()

    def everything_said(self, table, request: gr.Request):
        """The status line after "Segment everything": stopped, or how many masks."""
        sid = session(request)
        if sid in self.stopped:
            self.stopped.discard(sid)
            return STOPPED
        return summary(table)


# ---- layout and events ------------------------------------------------------------------------------------------


def build(ctx):
    """The tab, inside the current gr.Blocks."""
    tab = SamTab(ctx)
    c = _components(ctx)
    _wire_clicks(ctx, tab, c)
    _wire_everything(ctx, tab, c)
    ui_video.wire(ctx, c, light)


def _sample_photos():
    # photos shipped by ultralytics (found without importing it: torch) and gradio; a missing one is left out
    found = (package_file("ultralytics", "assets", "bus.jpg"),
             package_file("ultralytics", "assets", "zidane.jpg"),
             package_file("gradio", "media_assets", "images", "cheetah.jpg"),
             package_file("gradio", "media_assets", "images", "lion.jpg"))
    return [[str(p)] for p in found if p is not None]


def _components(ctx) -> SimpleNamespace:
    """Top to bottom: the model, the image to click and how a click counts, the status, then the results."""
    c = SimpleNamespace()
    c.model, c.notice = ctx.model_picker()
    with gr.Row():
        with gr.Column(scale=1):
            c.image = gr.Image(label="Image: click to add points", type="pil", image_mode=None,
                               sources=["upload", "clipboard"], format="png", height=HEIGHT)
            c.source = gr.Image(label="Image", type="pil", image_mode=None, format="png", visible=False)
            samples = _sample_photos()
            c.examples = gr.Examples(samples, [c.image], label="Sample photos (ship with ultralytics and gradio)",
                                     cache_examples=False) if samples else None
            c.mode = gr.Radio(list(MODES), value=MODES[0], label="A click adds")
            c.multimask = gr.Checkbox(True, label="Three candidate masks (best first); untick for one mask from "
                                                  "many clicks")
            with gr.Row():
                c.undo_btn = gr.Button("Undo last click", size="sm")
                c.clear_btn = gr.Button("Clear clicks", size="sm")
            # the status line: what to do, and progress and errors of a click (they show here only)
            c.status = gr.Markdown(HINT, elem_id="sam-status", elem_classes=[STATUS])
            with gr.Accordion("Prompts (what the /segment API takes)", open=False):
                c.points_js = gr.JSON(label="Points [[x, y], ...] in image pixels", value=[])
                c.labels_js = gr.JSON(label="Labels: 1 positive, 0 negative", value=[])
                c.box_js = gr.JSON(label="Box [x0, y0, x1, y1]", value=None)
        with gr.Column(scale=1):
            # hub-compact: on a phone an empty result box is one line high, not a tall blank (hub/page.py)
            c.overlay = gr.AnnotatedImage(label="Mask", format="png", show_legend=False, height=HEIGHT,
                                          elem_classes=["hub-compact"])
            c.gallery = gr.Gallery(label="Candidate masks, best first (click one to use it)", columns=3, height=170,
                                   format="png", allow_preview=False, object_fit="contain",
                                   elem_classes=["hub-compact"])
            with gr.Row():
                c.mask_out = gr.Image(label="Mask (PNG)", type="pil", format="png", interactive=False,
                                      buttons=["download"], height=260, elem_classes=["hub-compact"])
                c.cut_out = gr.Image(label="Cut-out (transparent PNG)", type="pil", image_mode="RGBA", format="png",
                                     interactive=False, buttons=["download"], height=260, elem_classes=["hub-compact"])
            c.record = gr.JSON(label="Details")
    with gr.Accordion("Segment everything", open=False):
        _everything_components(c)
    with gr.Accordion("Video: click an object, track it through the clip (SAM 2.1)", open=False):
        ui_video.components(c)
    c.clicks = gr.State(fresh())
    c.candidates = gr.State(None)
    return c


def _everything_components(c: SimpleNamespace) -> None:
    with gr.Row():
        c.pps = fields.slider("Points per side", *POINTS_PER_SIDE, 32, 1, info="more finds smaller objects, slower")
        c.iou_t = fields.slider("Predicted-IoU threshold", *THRESHOLD, 0.88, 0.01,
                                info="keep masks the model rates at least this good")
        c.stab_t = fields.slider("Stability threshold", *THRESHOLD, 0.95, 0.01,
                                 info="keep masks that hold their shape at least this well")
        c.min_area = fields.number("Minimum mask area (pixels)", *MIN_AREA, 0,
                                   info="masks smaller than this are dropped")
    with gr.Row():
        c.all_btn = gr.Button("Segment everything", variant="primary", scale=4, elem_id="sam-everything",
                              elem_classes=[MAIN])
        c.stop_btn = gr.Button("Stop", size="sm", interactive=False, scale=1)  # enabled while it runs
    # progress (batches of points), errors, how many masks: one line high even before the first run
    c.all_status = gr.Markdown(READY, elem_id="sam-everything-status", elem_classes=[STATUS])
    c.all_overlay = gr.AnnotatedImage(label="All masks", format="png", height=HEIGHT, elem_classes=["hub-compact"])
    c.all_table = gr.JSON(label="Masks (largest first)")


def _wire_clicks(ctx, tab: SamTab, c: SimpleNamespace) -> None:
    run_segment, refresh, warm = ctx.handler(tab.run_segment), ctx.handler(tab.refresh), ctx.handler(tab.warm)
    segment_clicks = ctx.handler(tab.segment_clicks)
    quiet = {"api_name": False, "show_progress_on": [c.status]}
    prompts = [c.clicks, c.points_js, c.labels_js, c.box_js]
    seg_inputs = [c.source, c.points_js, c.labels_js, c.box_js, c.multimask, c.model]
    seg_outputs = [c.overlay, c.gallery, c.mask_out, c.cut_out, c.record, c.candidates]
    cleared = prompts + [c.overlay, c.record, c.gallery, c.mask_out, c.cut_out, c.candidates, c.all_overlay,
                         c.all_table, c.all_status]
    c.image.select(light(tab.on_click), [c.clicks, c.mode, c.source], prompts + [c.image], **quiet).success(
        segment_clicks, [c.clicks, *seg_inputs], [*seg_outputs, c.status], api_name=False, **ctx.events_on(c.status))
    # /segment for API callers: the same handler on a hidden button (a click's chain waits for a box's 2nd corner)
    api_segment = gr.Button("Segment", visible=False)
    api_segment.click(run_segment, seg_inputs, seg_outputs, api_name="segment", **ctx.events_on(c.status))
    c.undo_btn.click(light(tab.undo), [c.clicks, c.source], prompts + [c.image], **quiet).success(
        refresh, seg_inputs, seg_outputs, api_name=False, **ctx.events_on(c.status))
    c.clear_btn.click(light(tab.clear), [c.clicks, c.source], prompts + [c.image], **quiet).success(
        refresh, seg_inputs, seg_outputs, api_name=False, **ctx.events_on(c.status))
    c.gallery.select(light(tab.pick), [c.candidates, c.source], [c.overlay, c.mask_out, c.cut_out], **quiet)
    c.image.clear(tab.forget_image, None, [c.image, c.source, *cleared], api_name=False, show_progress="hidden")
    # A new image (an upload, a paste, a sample: an example click fires no upload event) goes to the hidden source
    # as it is and is read once: one that cannot be read is refused once and removed (nothing to click again);
    # otherwise the old clicks and results go and the model encodes it right away.
    new_images = [c.image.upload] + ([c.examples.load_input_event.then] if c.examples is not None else [])
    for event in new_images:
        read = event(None, [c.image], [c.source], js=COPY, api_name=False, show_progress="hidden").then(
            light(tab.check_image), [c.source], None, **quiet)
        read.failure(tab.forget_image, None, [c.image, c.source, *cleared], api_name=False, show_progress="hidden")
        read.success(tab.reset_for_new_image, None, cleared, api_name=False, show_progress="hidden").then(
            warm, [c.source, c.model], None, api_name=False, **ctx.events_on(c.status))


def _wire_everything(ctx, tab: SamTab, c: SimpleNamespace) -> None:
    enable = c.all_btn.click(lambda: gr.Button(interactive=True), None, c.stop_btn, api_name=False, queue=False,
                             show_progress="hidden")
    everything = enable.then(ctx.handler(tab.run_everything),
                             [c.source, c.pps, c.iou_t, c.stab_t, c.min_area, c.model], [c.all_overlay, c.all_table],
                             api_name="segment_everything", **ctx.events_on(c.all_status))
    everything.then(lambda: gr.Button(interactive=False), None, c.stop_btn, api_name=False, queue=False,
                    show_progress="hidden")
    everything.success(tab.everything_said, [c.all_table], [c.all_status], api_name=False, queue=False,
                       show_progress="hidden")
    # Stop sets the run's flag (no cancel: a cancelled event ended in a bare "Error"); the work ends at its next
    # batch of points and the run returns, and the status line says it stopped
    c.stop_btn.click(tab.stop, None, c.stop_btn, api_name=False, queue=False, show_progress="hidden")
    from gradio.context import Context

    Context.root_block.unload(tab.page_closed)
