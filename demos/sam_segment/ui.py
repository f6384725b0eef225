"""The Segment Anything tab: click points, a box by two corner clicks, undo, clear, candidate masks, warm-up on
upload, and segment everything with Stop. Handlers that need the model go through `ctx.run`; the click
bookkeeping (no model) runs without a GPU slot."""

import functools
import json
import threading
import time
from types import SimpleNamespace

import gradio as gr
import numpy as np

from demos.sam_segment import SPEC
from demos.sam_segment.engine import NEGATIVE, POSITIVE, check_segment, prepare_image, segment
from demos.sam_segment.everything import check_settings, segment_everything
from demos.sam_segment.formats import as_pil, cutout, draw_prompts, mask_png, save_for_display, thumbnail
from demos.sam_segment.store import EmbeddingStore
from hub.assets import package_file
from hub.errors import UserError
from hub.outputs import request_folder

MODES = ("Positive point", "Negative point", "Box (two corner clicks)")


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


class SamTab:
    """The tab's per-app state (the embedding store, the Stop flags of running requests) and its event handlers."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.store = EmbeddingStore(per_session=3, total=32)
        self.stop_flags: dict[str, threading.Event] = {}

    def cached(self, lease, picture, request):
        """(embedding, was it cached?, milliseconds) of `picture` for this session, encoding it if needed."""
        t0 = time.perf_counter()
        emb, hit = self.store.get(session(request), lease.engine, picture)
        return emb, hit, (time.perf_counter() - t0) * 1e3

    # ---- clicks (no model) --------------------------------------------------------------------------------------

    def on_click(self, state, mode_value, img, evt: gr.SelectData):
        picture = prepare_image(img)
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
        return state, *prompt_lists(state)

    def undo(self, state):
        state = json.loads(json.dumps(state or fresh()))
        if state["history"]:
            kind, *old = state["history"].pop()
            if kind == "point":
                state["points"].pop()
            elif kind == "corner":
                state["corner"] = None
            else:
                state["box"], state["corner"] = old
        return state, *prompt_lists(state)

    def clear(self, state):
        return fresh((state or {}).get("key")), [], [], None

    def reset_for_new_image(self):
        # An upload, a clear or a paste: the old clicks belong to the old image.
        return fresh(), [], [], None, None, None, [], None, None, None

    # ---- segmenting ---------------------------------------------------------------------------------------------

    def outputs_for(self, picture, seg, index, state):
        mask = seg["masks"][index]
        base = draw_prompts(picture, seg["points"], seg["labels"], seg["box"], (state or {}).get("corner"))
        label = f"mask {index + 1} (score {seg['scores'][index]:.3f})"
        base, mpng, cut = save_for_display(base, mask_png(mask), cutout(picture, mask),
                                           request_folder(SPEC.name, "clicks", keep_s=600))
        return (base, [(mask.astype(np.float32), label)]), mpng, cut

    def run_segment(self, img, points, labels, box, multi, model_id, state=None, request: gr.Request = None,
                    progress=gr.Progress(track_tqdm=True)):
        """Segment the object the prompts point at. Returns the overlay, every candidate mask (best first),
        the chosen mask as a PNG, the transparent cut-out and details (scores, timings, model)."""
        picture = prepare_image(img)
        prompts, multi = check_segment(picture.size, points, labels, box, multi)

        def work(lease):
            emb, hit, embed_ms = self.cached(lease, picture, request)
            t0 = time.perf_counter()
            seg = segment(lease.engine, emb, prompts.points, prompts.labels, prompts.box, multi)
            decode_ms = (time.perf_counter() - t0) * 1e3
            rec = lease.record(**prompts.as_json(), multimask=multi, scores=[round(s, 4) for s in seg.scores],
                               embedding="cached" if hit else f"computed in {embed_ms:.0f} ms",
                               decode_ms=round(decode_ms, 1), image=f"{picture.size[0]}x{picture.size[1]}")
            return seg, rec

        seg, rec = self.ctx.run(work, model_id)
        kept = {"key": picture.key, "masks": seg.masks, "scores": seg.scores, **prompts.as_json()}
        kept["points"], kept["labels"] = seg.prompts.points.tolist(), seg.prompts.labels.tolist()
        ov, mpng, cut = self.outputs_for(picture, kept, 0, state)
        thumbs = [(thumbnail(m), f"#{i + 1}  score {s:.3f}") for i, (m, s) in enumerate(zip(seg.masks, seg.scores))]
        return ov, thumbs, mpng, cut, rec, kept

    def refresh(self, img, points, labels, box, multi, model_id, state, request: gr.Request):
        """After undo/clear: segment what is left, or show the bare image (with a pending corner) if nothing is."""
        has_positive = any(int(v) == POSITIVE for v in (labels or []))
        if img is None:
            return None, [], None, None, None, None
        if not (has_positive or box):
            picture = prepare_image(img)
            return (draw_prompts(picture, points or [], labels or [], None, (state or {}).get("corner")), []), \
                [], None, None, None, None
        return self.run_segment(img, points, labels, box, multi, model_id, state, request)

    def pick(self, kept, img, state, evt: gr.SelectData):
        if kept is None:
            raise UserError("Click on the image first to make candidate masks.")
        picture = prepare_image(img)
        if picture.key != kept["key"]:
            raise UserError("The image changed since these masks were made; click on the new image.")
        return self.outputs_for(picture, kept, int(evt.index), state)

    def warm(self, img, model_id, request: gr.Request):
        """Encode a newly uploaded image right away, so the first click is fast."""
        if img is None:
            return
        picture = prepare_image(img)
        self.ctx.run(lambda lease: self.cached(lease, picture, request), model_id)

    # ---- segment everything -------------------------------------------------------------------------------------

    def run_everything(self, img, points_per_side, iou_thresh, stability_thresh, min_pixels, model_id,
                       request: gr.Request = None, progress=gr.Progress(track_tqdm=True)):
        """Find every object: returns the image with all masks (non-overlapping, largest first) and a table."""
        picture = prepare_image(img)
        s = check_settings(picture, points_per_side, iou_thresh, stability_thresh, min_pixels)
        sid = session(request)
        flag = self.stop_flags.setdefault(sid, threading.Event())
        flag.clear()

        def work(lease):
            progress(0, desc="Encoding the image")
            emb, hit, _ = self.cached(lease, picture, request)
            found = segment_everything(
                lease.engine, emb, picture, s.points_per_side, s.pred_iou_thresh, s.stability_score_thresh,
                s.min_area, progress=lambda i, n: progress(i / n, desc=f"Decoding point batch {i}/{n}"),
                should_stop=flag.is_set)
            rec = lease.record(points_per_side=s.points_per_side, pred_iou_thresh=s.pred_iou_thresh,
                               stability_score_thresh=s.stability_score_thresh, min_area=s.min_area,
                               masks=len(found), embedding="cached" if hit else "computed")
            return found, rec

        try:
            found, rec = self.ctx.run(work, model_id)
        finally:
            self.stop_flags.pop(sid, None)  # only running requests have a flag: the dict stays small
        if not found:
            gr.Info("No mask passed the thresholds; lower the predicted-IoU or stability threshold.")
        annotations = [(f.mask.astype(np.float32), f"#{i + 1}") for i, f in enumerate(found)]
        return (as_pil(picture), annotations), {"masks": [f.summary(i + 1) for i, f in enumerate(found)],
                                                "record": rec}

    def stop(self, request: gr.Request):
        flag = self.stop_flags.get(session(request))
        if flag is not None:
            flag.set()


# ---- layout and events ------------------------------------------------------------------------------------------


def build(ctx):
    """The tab, inside the current gr.Blocks."""
    tab = SamTab(ctx)
    c = _components(ctx)
    _wire_clicks(ctx, tab, c)
    _wire_everything(ctx, tab, c)


def _sample_photos():
    # photos shipped by ultralytics (found without importing it: torch) and gradio; a missing one is left out
    found = (package_file("ultralytics", "assets", "bus.jpg"),
             package_file("ultralytics", "assets", "zidane.jpg"),
             package_file("gradio", "media_assets", "images", "cheetah.jpg"),
             package_file("gradio", "media_assets", "images", "lion.jpg"))
    return [[str(p)] for p in found if p is not None]


def _components(ctx) -> SimpleNamespace:
    c = SimpleNamespace()
    with gr.Row():
        with gr.Column(scale=1):
            c.model = ctx.model_dropdown()
            c.image = gr.Image(label="Image: click to add points", type="pil", image_mode=None,
                               sources=["upload", "clipboard"], format="png")
            samples = _sample_photos()
            c.examples = gr.Examples(samples, [c.image], label="Sample photos (ship with ultralytics and gradio)",
                                     cache_examples=False) if samples else None
            c.mode = gr.Radio(list(MODES), value=MODES[0], label="A click adds")
            with gr.Row():
                c.undo_btn = gr.Button("Undo last click")
                c.clear_btn = gr.Button("Clear clicks")
            c.multimask = gr.Checkbox(True, label="Three candidate masks (best first); untick for one mask from "
                                                  "many clicks")
            with gr.Accordion("Prompts (what the /segment API takes)", open=False):
                c.points_js = gr.JSON(label="Points [[x, y], ...] in image pixels", value=[])
                c.labels_js = gr.JSON(label="Labels: 1 positive, 0 negative", value=[])
                c.box_js = gr.JSON(label="Box [x0, y0, x1, y1]", value=None)
        with gr.Column(scale=1):
            c.overlay = gr.AnnotatedImage(label="Mask", format="png", show_legend=False)
            c.gallery = gr.Gallery(label="Candidate masks, best first (click one to use it)", columns=3, height=170,
                                   format="png", allow_preview=False)
            with gr.Row():
                c.mask_out = gr.Image(label="Mask (PNG)", type="pil", format="png", interactive=False,
                                      buttons=["download"])
                c.cut_out = gr.Image(label="Cut-out (transparent PNG)", type="pil", image_mode="RGBA", format="png",
                                     interactive=False, buttons=["download"])
            c.record = gr.JSON(label="Details")
    with gr.Accordion("Segment everything", open=False):
        with gr.Row():
            c.pps = gr.Slider(4, 64, 32, step=1, label="Points per side (more finds smaller objects, slower)")
            c.iou_t = gr.Slider(0.0, 1.0, 0.88, step=0.01, label="Predicted-IoU threshold (quality)")
            c.stab_t = gr.Slider(0.0, 1.0, 0.95, step=0.01, label="Stability threshold")
            c.min_area = gr.Number(0, label="Drop masks smaller than (pixels)", precision=0, minimum=0)
        with gr.Row():
            c.all_btn = gr.Button("Segment everything", variant="primary")
            c.stop_btn = gr.Button("Stop")
        c.all_overlay = gr.AnnotatedImage(label="All masks", format="png")
        c.all_table = gr.JSON(label="Masks (largest first)")
    c.clicks = gr.State(fresh())
    c.candidates = gr.State(None)
    return c


def _wire_clicks(ctx, tab: SamTab, c: SimpleNamespace) -> None:
    run_segment, refresh, warm = ctx.handler(tab.run_segment), ctx.handler(tab.refresh), ctx.handler(tab.warm)
    prompts = [c.clicks, c.points_js, c.labels_js, c.box_js]
    seg_inputs = [c.image, c.points_js, c.labels_js, c.box_js, c.multimask, c.model, c.clicks]
    seg_outputs = [c.overlay, c.gallery, c.mask_out, c.cut_out, c.record, c.candidates]
    cleared = prompts + [c.overlay, c.record, c.gallery, c.mask_out, c.cut_out, c.candidates]
    c.image.select(light(tab.on_click), [c.clicks, c.mode, c.image], prompts, api_name=False).success(
        run_segment, seg_inputs, seg_outputs, api_name="segment", **ctx.events)
    c.undo_btn.click(tab.undo, [c.clicks], prompts, api_name=False).success(
        refresh, seg_inputs, seg_outputs, api_name=False, **ctx.events)
    c.clear_btn.click(tab.clear, [c.clicks], prompts, api_name=False).success(
        refresh, seg_inputs, seg_outputs, api_name=False, **ctx.events)
    c.gallery.select(light(tab.pick), [c.candidates, c.image, c.clicks], [c.overlay, c.mask_out, c.cut_out],
                     api_name=False)
    c.image.clear(tab.reset_for_new_image, None, cleared, api_name=False)
    c.image.upload(tab.reset_for_new_image, None, cleared, api_name=False).then(
        warm, [c.image, c.model], None, api_name=False, **ctx.events)
    if c.examples is not None:  # a sample photo is a new image too (an example click fires no upload event)
        c.examples.load_input_event.then(tab.reset_for_new_image, None, cleared, api_name=False).then(
            warm, [c.image, c.model], None, api_name=False, **ctx.events)


def _wire_everything(ctx, tab: SamTab, c: SimpleNamespace) -> None:
    everything = c.all_btn.click(ctx.handler(tab.run_everything),
                                 [c.image, c.pps, c.iou_t, c.stab_t, c.min_area, c.model], [c.all_overlay, c.all_table],
                                 api_name="segment_everything", **ctx.events)
    c.stop_btn.click(tab.stop, None, None, api_name=False, cancels=[everything])
