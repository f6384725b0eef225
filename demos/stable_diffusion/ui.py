"""The Stable Diffusion tab: shared settings, three modes (text, image, inpaint), a gallery of PNGs with their
parameters, Cancel, and *Read parameters from a PNG*. Handlers only parse values; the engine checks and runs."""

from __future__ import annotations

import contextvars
import queue
import threading
from types import SimpleNamespace

from demos.stable_diffusion import engine as sd
from demos.stable_diffusion.formats import NO_PARAMETERS, read_parameters
from demos.stable_diffusion.spec import MAX_GUIDANCE, MAX_IMAGES, MAX_SEED, MAX_SIDE, MAX_STEPS, MIN_SIDE, SCHEDULERS
from demos.stable_diffusion.spec import SPEC, model_defaults
from hub.errors import UserError
from hub.media.image import open_image
from hub.outputs import request_folder

EXAMPLE_PROMPTS = [["a watercolor fox in a snowy forest, soft morning light", "blurry, low quality"],
                   ["a cozy reading nook by a big window, rain outside, digital painting", "people, text, watermark"],
                   ["an astronaut riding a horse on the moon, photorealistic", "cartoon, deformed"],
                   ["isometric pixel-art island with a lighthouse", "blurry"]]


def build(ctx) -> None:
    """The tab, inside the current gr.Blocks."""
    c = _components(ctx, model_defaults(ctx.choice().id))
    _wire(ctx, c)


def _components(ctx, d: dict) -> SimpleNamespace:
    import gradio as gr

    c = SimpleNamespace()
    with gr.Row():
        c.model = ctx.model_dropdown(scale=3)
        c.seed = gr.Number(-1, label="Seed (-1 = random)", precision=0, minimum=-1, maximum=MAX_SEED, scale=2)
        c.reuse = gr.Button("\u267b\ufe0f Reuse last seed", scale=1, size="sm")
    c.prompt = gr.Textbox(label="Prompt", lines=2, placeholder="a watercolor fox in a snowy forest")
    c.negative = gr.Textbox(label="Negative prompt", lines=1, placeholder="blurry, low quality")
    gr.Examples(EXAMPLE_PROMPTS, [c.prompt, c.negative], label="Example prompts", cache_examples=False)
    with gr.Row():
        c.steps = gr.Slider(1, MAX_STEPS, d["steps"], step=1, label="Steps")
        c.guidance = gr.Slider(0, MAX_GUIDANCE, d["guidance"], step=0.5, label="Guidance scale (0-1 = off)")
        c.scheduler = gr.Dropdown(list(SCHEDULERS), value=d["scheduler"], label="Scheduler")
    with gr.Row():
        # Numbers, not sliders: a size that is not a multiple of 8 is rounded with a note; outside the range the
        # engine answers with a sentence
        c.width = gr.Number(d["size"], label=f"Width ({MIN_SIDE}-{MAX_SIDE}, multiple of 8)", precision=0, step=8)
        c.height = gr.Number(d["size"], label=f"Height ({MIN_SIDE}-{MAX_SIDE}, multiple of 8)", precision=0, step=8)
        c.count = gr.Slider(1, MAX_IMAGES, 1, step=1, label="Images")
    with gr.Tabs():
        with gr.Tab("Text to image"):
            c.run_t2i = gr.Button("Generate", variant="primary")
        with gr.Tab("Image to image"):
            c.init_image = gr.Image(type="filepath", label="Init image (fitted into width x height)")
            c.strength_i2i = gr.Slider(0.05, 1.0, 0.75, step=0.05, label="Strength (how much to change)")
            c.run_i2i = gr.Button("Transform", variant="primary")
        with gr.Tab("Inpaint"):
            c.editor = gr.ImageEditor(type="pil", format="png", label="Image: paint the part to repaint",
                                      brush=gr.Brush(colors=["#ffffff"], color_mode="fixed"),
                                      layers=gr.LayerOptions(allow_additional_layers=False))
            c.mask_upload = gr.Image(type="filepath", label="Or upload a mask (white = repaint)", height=160)
            c.strength_inp = gr.Slider(0.05, 1.0, 1.0, step=0.05, label="Strength (1 = repaint fully)")
            c.run_inp = gr.Button("Inpaint", variant="primary")
    c.cancel = gr.Button("Cancel", variant="stop")
    c.gallery = gr.Gallery(label="Images (PNG with parameters)", columns=2, format="png", type="filepath")
    c.used_seed = gr.Number(label="Seed used", precision=0, interactive=False)
    c.status = gr.Markdown()
    c.record = gr.JSON(label="Record")
    with gr.Accordion("Read parameters from a PNG", open=False):
        c.png = gr.File(label="PNG made by this tab (or AUTOMATIC1111)", file_types=[".png"], type="filepath")
    return c


def _wire(ctx, c: SimpleNamespace) -> None:
    common = [c.seed, c.steps, c.guidance, c.scheduler, c.width, c.height, c.count]
    outputs = [c.gallery, c.used_seed, c.status, c.record]
    events = [
        c.run_t2i.click(_generate_handler(ctx), [c.model, c.prompt, c.negative, *common], outputs,
                        api_name="generate_image", **ctx.events),
        c.run_i2i.click(_img2img_handler(ctx), [c.model, c.init_image, c.prompt, c.negative, c.strength_i2i, *common],
                        outputs, api_name="img2img", **ctx.events),
        c.run_inp.click(_inpaint_handler(ctx), [c.model, c.editor, c.mask_upload, c.prompt, c.negative,
                                                c.strength_inp, *common], outputs, api_name="inpaint", **ctx.events),
    ]
    c.cancel.click(lambda: "Cancelled.", None, c.status, cancels=events, api_visibility="private")
    c.reuse.click(lambda s: s if s is not None else -1, [c.used_seed], [c.seed], api_visibility="private")
    c.model.change(_defaults_for, [c.model], [c.steps, c.guidance, c.scheduler, c.width, c.height],
                   api_visibility="private")
    c.png.upload(_fill_handler(ctx), [c.png], [c.prompt, c.negative, c.seed, c.steps, c.guidance, c.scheduler,
                                                c.width, c.height, c.model, c.record], api_name="read_parameters")


def _defaults_for(model_id):
    o = model_defaults(model_id)
    return o["steps"], o["guidance"], o["scheduler"], o["size"], o["size"]


def _kw(seed_, steps_, guidance_, scheduler_, width_, height_, count_) -> dict:
    return dict(seed=seed_, steps=steps_, guidance=guidance_, scheduler=scheduler_, width=width_, height=height_,
                num_images=count_)


# ---- handlers: same names and positional parameters as always (the gradio_client API) ----------------------------


def _generate_handler(ctx):
    import gradio as gr

    @ctx.handler
    def run_generate(model_id, prompt_, negative_, seed_, steps_, guidance_, scheduler_, width_, height_, count_,
                     progress=gr.Progress(track_tqdm=True)):
        args = _kw(seed_, steps_, guidance_, scheduler_, width_, height_, count_)
        yield from stream(ctx, model_id, lambda e, on_step, stop, safety: sd.generate(
            e, prompt_, negative_, **args, safety_checker=safety, on_step=on_step, should_stop=stop), progress)
    return run_generate


def _img2img_handler(ctx):
    import gradio as gr

    @ctx.handler
    def run_img2img(model_id, image_, prompt_, negative_, strength_, seed_, steps_, guidance_, scheduler_, width_,
                    height_, count_, progress=gr.Progress(track_tqdm=True)):
        args = _kw(seed_, steps_, guidance_, scheduler_, width_, height_, count_)
        image_ = open_image(image_, "the init image")  # fail fast, before waiting for the model
        yield from stream(ctx, model_id, lambda e, on_step, stop, safety: sd.img2img(
            e, image_, prompt_, negative_, strength=strength_, **args, safety_checker=safety, on_step=on_step,
            should_stop=stop), progress)
    return run_img2img


def _inpaint_handler(ctx):
    import gradio as gr

    @ctx.handler
    def run_inpaint(model_id, editor_, mask_, prompt_, negative_, strength_, seed_, steps_, guidance_, scheduler_,
                    width_, height_, count_, progress=gr.Progress(track_tqdm=True)):
        args = _kw(seed_, steps_, guidance_, scheduler_, width_, height_, count_)
        background = (editor_ or {}).get("background")
        if background is None:
            raise UserError("Upload the image to inpaint into the editor first.")
        image_ = open_image(background, "the image to inpaint")
        mask_image = sd.mask_from(mask_) if mask_ is not None else sd.editor_mask((editor_ or {}).get("layers"))
        if mask_image is None:
            raise UserError(sd.EMPTY_MASK)
        yield from stream(ctx, model_id, lambda e, on_step, stop, safety: sd.inpaint(
            e, image_, mask_image, prompt_, negative_, strength=strength_, **args, safety_checker=safety,
            on_step=on_step, should_stop=stop), progress)
    return run_inpaint


def _fill_handler(ctx):
    import gradio as gr

    @ctx.handler
    def fill_from_png(file):
        p = read_parameters(file, missing_ok=True)
        if not p:  # a picture without parameters: nothing to fill in, which is an answer, not an error
            gr.Warning(NO_PARAMETERS)
            return (gr.skip(),) * 9 + ({},)
        models = [m for _, m in ctx.model_choices()]
        sched = p.get("scheduler")
        return (p.get("prompt", gr.skip()), p.get("negative_prompt", gr.skip()), p.get("seed", gr.skip()),
                p.get("steps", gr.skip()), p.get("guidance", gr.skip()),
                sched if sched in SCHEDULERS else gr.skip(), p.get("width", gr.skip()), p.get("height", gr.skip()),
                p["model"] if p.get("model") in models else gr.skip(), p)
    return fill_from_png


# ---- the request path: one worker per request, under ctx.run ------------------------------------------------------


def stream(ctx, model_id, work, progress):
    """Run `work(engine, on_step, should_stop, safety_checker)` under `ctx.run` in a worker; yield once per step.

    Yielding every step lets Cancel (or a closed page) close this generator between steps; closing sets the stop
    flag, the pipeline stops after its current step, and `ctx.run` releases the lease when the worker returns.
    Not `ctx.stream`: gradio closes a cancelled generator on its event loop, and the lease must stay held until the
    pipeline's current step has ended without blocking that loop for the rest of the step. `ctx.run` gives the same
    allow-list check, OOM recovery (the whole run is retried: nothing but progress has been shown) and warnings.
    """
    import gradio as gr

    events: queue.Queue = queue.Queue()
    stop = threading.Event()
    safety = ctx.options.safety_checker

    def call(lease):
        events.put(("loaded", None))
        res = work(lease.engine, lambda i, n: events.put(("step", (i, n))), stop.is_set, safety)
        return res, sd.record(lease, res, safety)

    def worker():
        try:
            events.put(("done", ctx.run(call, model_id)))
        except BaseException as e:  # re-raised in the request's thread, where the UI edge turns it into gr.Error
            events.put(("error", e))

    progress(0, desc="Loading the model")
    # The copied context carries gradio's request (event id), so the lease's warnings reach this user's page.
    threading.Thread(target=contextvars.copy_context().run, args=(worker,), daemon=True,
                     name="stable-diffusion").start()
    try:
        while True:
            kind, payload = events.get()
            if kind == "loaded":
                progress(0, desc="Encoding the prompt")
            elif kind == "step":
                i, n = payload
                progress((i, n), desc="Denoising", unit="steps")
                yield gr.skip(), gr.skip(), f"Step {i} of {n}\u2026", gr.skip()
            elif kind == "error":
                raise payload
            else:
                yield from _finish(*payload, progress)
                return
    finally:
        stop.set()


def _finish(res, rec, progress):
    import gradio as gr

    if res.cancelled:
        yield gr.skip(), gr.skip(), "Cancelled.", gr.skip()
        return
    progress(1.0, desc="Saving")
    paths = [str(p) for p in res.save(request_folder(SPEC.name, "images"))]
    notes = "\n".join(f"- {n}" for n in res.notes) or "Done."
    yield paths, res.seeds[0], notes, rec
