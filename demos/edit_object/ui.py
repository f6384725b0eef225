"""The Edit-by-object tab: the photo (click it to pick a detected box or to add + / - points), the objects and masks
beside it, then Cut out / Replace / Remove, with Cancel and every step's settings. Each button is one chained request
(hub.chain over flow.py's steps) and an API: /select_objects, /cut_out, /replace_object, /remove_object. Through the
page, the masks of the last *Find and mask* are reused (gr.State) while the photo, picks and models stay the same;
through the API every call runs the chain from the photo."""

from __future__ import annotations

import json
from types import SimpleNamespace

import gradio as gr

from demos.edit_object import STEPS, flow
from demos.edit_object import formats as F
from demos.edit_object import masks as M
from demos.stable_diffusion.spec import MAX_STEPS as SD_MAX_STEPS
from hub import fields
from hub.chain import Chain, StepRun, reachable, show_reach
from hub.errors import UserError
from hub.outputs import request_folder
from hub.page import MAIN, STATUS

MODES = ("Pick a detected box", "+ point (SAM)", "− point (SAM)")
KIND = {MODES[0]: "pick", MODES[1]: "+", MODES[2]: "-"}
HINT = ("Upload a photo, type the classes to pick (or click a detected box, or add + points), then **Find and "
        "mask**; then cut out, replace or remove.")


def build(ctx) -> None:
    """The tab inside the current gr.Blocks. Without the demos it chains (a hub started with --demos), it still
    serves its APIs, which answer with a sentence saying which tab is missing."""
    others = reachable(ctx, STEPS)
    show_reach("Edit by object", others, "boxes, masks and paintings")
    ui = _layout(others)
    _events(ctx, others, ui)


def _layout(others) -> SimpleNamespace:
    ui = SimpleNamespace()
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            ui.photo = gr.Image(type="filepath", label="Photo (click it to pick)", height=400,
                                sources=["upload", "clipboard"])
            ui.mode = gr.Radio(list(MODES), value=MODES[0], label="A click on the photo", container=False)
            with gr.Row():
                ui.classes = gr.Textbox(label="Classes to pick", placeholder="person, dog", scale=2)
                ui.clicks = gr.Textbox(label="Clicks [x, y, kind]", placeholder='[[120, 80, "pick"]]', scale=2)
            with gr.Row():
                ui.select = gr.Button("Find and mask", variant="primary", elem_classes=[MAIN])
                ui.clear = gr.Button("Clear clicks")
        with gr.Column(scale=1):
            ui.view = gr.Image(label="Objects and masks", interactive=False, height=400, format="jpeg")
            ui.status = gr.Markdown(HINT, elem_classes=[STATUS])
            ui.objects = gr.JSON(label="Objects", visible=False)
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            with gr.Tabs():
                with gr.Tab("Cut out"):
                    ui.cut = gr.Button("Cut out", variant="primary")
                with gr.Tab("Replace"):
                    ui.prompt = gr.Textbox(label="Replace with", placeholder="a golden retriever", lines=2)
                    ui.negative = gr.Textbox(label="Negative prompt", placeholder="blurry, deformed")
                    ui.replace = gr.Button("Replace", variant="primary")
                with gr.Tab("Remove"):
                    gr.Markdown(f"Paints over the object with the surroundings (prompt: *{flow.REMOVE_PROMPT}*).")
                    ui.remove = gr.Button("Remove", variant="primary")
            ui.cancel = gr.Button("Cancel", variant="stop")
            _settings(ui, others)
        with gr.Column(scale=1):
            ui.result = gr.Image(label="Result", type="filepath", format="png", interactive=False, height=360)
            ui.send_sd = gr.Button("Send to SD tab: inpaint with this mask", size="sm")  # shown with an SD tab
            ui.files = gr.File(label="Downloads: PNG with its record, mask PNG, record JSON", file_count="multiple")
            ui.record = gr.JSON(label="Record of the whole chain", open=False)
    ui.state = gr.State(None)
    return ui


def _settings(ui, others) -> None:
    with gr.Accordion("Settings", open=False):
        with gr.Row():
            ui.detector = _picker(others["yolo_detect"], "Find objects with (YOLO)")
            ui.segmenter = _picker(others["sam_segment"], "Make masks with (SAM)")
            ui.painter = _picker(others["stable_diffusion"], "Inpaint with (Stable Diffusion)")
        with gr.Row():
            ui.conf = fields.slider("Detection confidence", *flow.CONF_RANGE, 0.25, 0.05)
            ui.grow = fields.slider("Grow mask (px)", 0, M.MAX_GROW, 8, 1)
            ui.feather = fields.slider("Feather (px)", 0, M.MAX_GROW, 8, 1)
        with gr.Row():
            ui.steps = fields.slider("Inpainting steps", 1, SD_MAX_STEPS, 20, 1)  # SD's own range
            ui.seed = fields.number("Seed", -1, 2**32 - 1, -1, info="-1: a random one")
            ui.size = fields.slider("Inpainting size (px)", 64, 1024, 512, 8,
                                    info="the crop around the mask fits in it")


def _picker(other, label: str):
    """A step's model picker: that demo's own choices (its allow-list checks what is sent)."""
    if other is None:
        return gr.Dropdown([], value=None, label=label, allow_custom_value=True, interactive=False)
    return gr.Dropdown(other.model_choices(), value=other.default_model(), label=label, allow_custom_value=True)


def _events(ctx, others, ui) -> None:
    pick = [ui.photo, ui.classes, ui.clicks, ui.conf, ui.detector, ui.segmenter]
    paint = [ui.grow, ui.feather, ui.steps, ui.seed, ui.size, ui.painter]
    done = [ui.result, ui.files, ui.record, ui.status, ui.state]
    kw = ctx.events_on(ui.status)
    h = Handlers(ctx)
    sel = ui.select.click(ctx.handler(h.select_objects), [*pick, ui.state], [ui.view, ui.objects, ui.status, ui.state],
                          api_name="select_objects", **kw)
    clicked = ui.photo.select(add_click, [ui.mode, ui.clicks], [ui.clicks], api_visibility="private", queue=False)
    again = clicked.then(ctx.handler(h.select_objects), [*pick, ui.state], [ui.view, ui.objects, ui.status, ui.state],
                         api_visibility="private", **kw)
    ui.clear.click(lambda: ("", None), None, [ui.clicks, ui.state], api_visibility="private", queue=False)
    cut = ui.cut.click(ctx.handler(h.cut_out), [*pick, ui.state], done, api_name="cut_out", **kw)
    rep = ui.replace.click(ctx.handler(h.replace_object), [*pick, ui.prompt, ui.negative, *paint, ui.state], done,
                           api_name="replace_object", **kw)
    rem = ui.remove.click(ctx.handler(h.remove_object), [*pick, *paint, ui.state], done, api_name="remove_object",
                          **kw)
    ui.cancel.click(lambda: "Cancelled; what was shown before stays.", None, ui.status,
                    cancels=[sel, again, cut, rep, rem],
                    api_visibility="private", queue=False)
    ctx.links.send(ctx.name, ui.send_sd, to_sd_inpaint, [ui.photo, ui.result, ui.files, ui.record, ui.prompt],
                   ("stable_diffusion.editor", "stable_diffusion.mask", "stable_diffusion.prompt"),
                   opens="stable_diffusion.inpaint")


def to_sd_inpaint(photo, result, files, record, prompt) -> dict:
    """"Send to SD tab": the picture as it is now (the edited one; the photo for a cut-out, whose transparent
    background is no picture to paint on) in SD's Inpaint editor, the object's mask as its "upload a mask" (white =
    repaint), and the prompt that painted it. Inpaint, not Image to image: the mask is what this tab made, and a
    person sends a result on to repaint that object again with more control (steps, strength, seed), not the whole
    picture. The mask goes to the mask upload, not onto the editor's layer: gradio 6.31's editor does not draw a
    layer sent by an event ("No draw texture found for layer"). The picture goes as pixels, which gradio saves as a
    new file: the editor drew nothing from a URL this page had already shown in an <img>."""
    from hub.media.image import image_size, open_image

    mask = next((f for f in files or () if str(f).endswith("mask.png")), None)
    if not result or not isinstance(record, dict) or mask is None:
        raise UserError("Cut out, replace or remove an object first; then send the result to the SD tab.")
    action = record.get("action")
    picture = photo if action == "cut out" else result
    if image_size(picture, "the picture to send") != image_size(mask, "the mask"):
        raise UserError("The photo changed since this result; run the action again, then send it.")
    out = {"stable_diffusion.editor": open_image(picture, "the picture to send"), "stable_diffusion.mask": str(mask)}
    said = {"replace": prompt, "remove": flow.REMOVE_PROMPT}.get(action)
    if said:
        out["stable_diffusion.prompt"] = said
    return out


def add_click(mode, clicks, evt: gr.SelectData):
    """A click on the photo, added to the clicks text ([x, y, kind] in the photo's pixels)."""
    try:
        items = json.loads(clicks) if clicks and clicks.strip() else []
    except ValueError:
        items = []
    x, y = evt.index[:2]
    items.append([int(x), int(y), KIND.get(mode, "pick")])
    return json.dumps(items[-flow.MAX_CLICKS:])


class Handlers:
    """The four APIs. Each runs the chain from the photo, or reuses the page's last masks (gr.State)."""

    def __init__(self, ctx):
        self.ctx = ctx

    def select_objects(self, image, classes, clicks, conf, detector, segmenter, state=None, request: gr.Request = None,
                       progress=gr.Progress()):
        """Find the objects in the photo with YOLO and mask the picked ones with SAM.

        Args:
            image: The photo (PNG, JPEG, WebP ...).
            classes: Class names to pick, comma-separated ("person, dog"); empty to pick by clicks only.
            clicks: JSON list of [x, y, kind] in the photo's pixels: kind "pick" picks the detected box under the
                point; "+" / "-" are points for SAM (inside a picked box they refine its mask; elsewhere they make
                one mask of their own).
            conf: Detection confidence from 0.05 to 0.95.
            detector: A YOLO model this hub lists; empty for the hub's default.
            segmenter: A Segment Anything model this hub lists; empty for the hub's default.

        Returns: the photo with the boxes and masks drawn, the objects (every detection, the picked ones, mask sizes),
        the status.
        """
        chain = Chain(self.ctx, progress=progress)
        picture, clicks_ = _inputs(image, clicks)
        found = flow.find_objects(chain, picture, flow.parse_classes(classes), clicks_, conf, detector)
        if found.rows:  # the boxes stay on screen if the masks fail
            yield M.overlay(picture.rgb, found.rows, found.picked), found.summary(), _log(chain), gr.skip()
        sel = flow.make_masks(chain, picture, found, clicks_, segmenter, _session(request))
        key = _key(picture, classes, clicks, conf, detector, segmenter)
        state = {"key": key, "sel": sel, "steps": list(chain.steps)}
        yield M.overlay(picture.rgb, sel.rows, sel.picked, sel.masks), sel.summary(), _log(chain), state

    def cut_out(self, image, classes, clicks, conf, detector, segmenter, state=None, request: gr.Request = None,
                progress=gr.Progress()):
        """The picked objects cut out: a PNG transparent outside their masks, the mask PNG and the record.

        Args:
            image: The photo. classes, clicks, conf, detector, segmenter: as /select_objects.

        Returns: the cut-out PNG, the files (cut-out PNG, mask PNG, record JSON), the record, the status.
        """
        chain, picture, sel = self._selected(image, classes, clicks, conf, detector, segmenter, state, request,
                                             progress)
        mask = sel.mask
        cut = flow.compose(chain, "cutout", picture, mask)
        mask_img = flow.compose(chain, "mask", picture, mask)
        record = chain.record(action="cut out", objects=sel.summary()["picked"])
        folder = request_folder("edit_object", "results")
        png = F.write_png(folder, "cutout.png", cut, record)
        files = [png, F.write_png(folder, "mask.png", mask_img, record), F.write_json(folder, record)]
        return png, files, record, _log(chain), gr.skip()

    def replace_object(self, image, classes, clicks, conf, detector, segmenter, prompt, negative_prompt, grow, feather,
                       steps, seed, size, painter, state=None, request: gr.Request = None, progress=gr.Progress()):
        """Replace the picked objects: Stable Diffusion inpaints the mask grown and feathered by N px, with a prompt.

        Args:
            image: The photo. classes, clicks, conf, detector, segmenter: as /select_objects.
            prompt: What to paint there. negative_prompt: what to keep out.
            grow: Pixels the mask grows by (0-256). feather: Pixels of soft edge inside that band (0-256).
            steps: Denoising steps. seed: -1 for a random one. size: The side the crop around the mask is fitted
                into (multiples of 8). painter: A Stable Diffusion model this hub lists; empty for the default.

        Returns: the edited PNG, the files (PNG with its record, mask PNG, record JSON), the record, the status.
        """
        if not (prompt or "").strip():
            raise UserError("Replace: type what to paint in the object's place (the prompt is empty).")
        paint = flow.Paint(prompt, negative_prompt or "", grow, feather, steps, seed, size=size)
        return self._paint("replace", image, classes, clicks, conf, detector, segmenter, paint, painter, state,
                           request, progress)

    def remove_object(self, image, classes, clicks, conf, detector, segmenter, grow, feather, steps, seed, size,
                      painter, state=None, request: gr.Request = None, progress=gr.Progress()):
        """Remove the picked objects: inpaint their grown mask with the surroundings (a "background" prompt).

        Args: as /replace_object, without the prompts.

        Returns: the edited PNG, the files, the record, the status.
        """
        paint = flow.Paint(flow.REMOVE_PROMPT, flow.REMOVE_NEGATIVE, grow, feather, steps, seed, size=size)
        return self._paint("remove", image, classes, clicks, conf, detector, segmenter, paint, painter, state,
                           request, progress)

    def _paint(self, action, image, classes, clicks, conf, detector, segmenter, paint, painter, state, request,
               progress):
        M.check_px(paint.grow, "Grow")  # before any model
        M.check_px(paint.feather, "Feather")
        chain, picture, sel = self._selected(image, classes, clicks, conf, detector, segmenter, state, request,
                                             progress)
        out, sd_params = flow.inpaint(chain, picture, sel.mask, paint, painter)
        mask_img = flow.compose(chain, "mask", picture, sel.mask)
        record = chain.record(action=action, objects=sel.summary()["picked"])
        folder = request_folder("edit_object", "results")
        png = F.write_png(folder, f"{action}d.png", out, record, sd_params)
        files = [png, F.write_png(folder, "mask.png", mask_img, record), F.write_json(folder, record)]
        return png, files, record, _log(chain), gr.skip()

    def _selected(self, image, classes, clicks, conf, detector, segmenter, state, request, progress):
        """(chain, picture, selection): the page's last masks when they were made from these inputs, else the first
        two steps run now."""
        chain = Chain(self.ctx, progress=progress)
        picture, clicks_ = _inputs(image, clicks)
        if state and state.get("key") == _key(picture, classes, clicks, conf, detector, segmenter):
            chain.steps.extend(StepRun(**vars(s)) for s in state["steps"])
            chain.say("Using the masks of the last Find and mask.")
            return chain, picture, state["sel"]
        found = flow.find_objects(chain, picture, flow.parse_classes(classes), clicks_, conf, detector)
        return chain, picture, flow.make_masks(chain, picture, found, clicks_, segmenter, _session(request))


def _inputs(image, clicks):
    from demos.sam_segment.engine import prepare_image

    if image is None or (isinstance(image, str) and not image.strip()):
        raise UserError("Upload a photo first.")
    picture = prepare_image(image)
    return picture, flow.parse_clicks(clicks, picture.size)


def _key(picture, classes, clicks, conf, detector, segmenter) -> str:
    return json.dumps([picture.key, classes, clicks, conf, detector, segmenter], default=str)


def _session(request) -> str:
    return getattr(request, "session_hash", None) or ""


def _log(chain: Chain) -> str:
    return "  \n".join(chain.log[-12:])
