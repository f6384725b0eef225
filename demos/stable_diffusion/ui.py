"""The Stable Diffusion tab, top to bottom: the model picker and its notice, the three modes (text, image, inpaint)
with what each adds, the prompt, the shared settings, the one main button (Cancel beside it only while a run goes),
the status line (the tab's only progress and error pill), a gallery of PNGs with their parameters, the seed used and
the record, and *Read parameters from a PNG*. Handlers only build the engine's typed requests (types.py) from the
components' values and render its Step items and Result; the engine checks and runs."""

from __future__ import annotations

from types import SimpleNamespace

from demos.stable_diffusion import decoder, lora_ui, masks, ui_control, ui_hires
from demos.stable_diffusion.checks import EMPTY_MASK
from demos.stable_diffusion.formats import NO_PARAMETERS
from demos.stable_diffusion.formats import read_parameters as read_parameters_from
from demos.stable_diffusion.spec import MAX_GUIDANCE, MAX_IMAGES, MAX_SEED, MAX_SIDE, MAX_STEPS, MIN_SIDE, SCHEDULERS
from demos.stable_diffusion.spec import FAMILY_SCHEDULERS, SPEC, family, model_defaults
from demos.stable_diffusion.types import GenerateRequest, Img2ImgRequest, InpaintRequest, Settings, Step
from hub.errors import UserError
from hub.media.image import open_image
from hub.outputs import request_folder

HIRES = True  # the hires fix's controls on text to image (ui_hires.py)

EXAMPLE_PROMPTS = [["a watercolor fox in a snowy forest, soft morning light", "blurry, low quality"],
                   ["a cozy reading nook by a big window, rain outside, digital painting", "people, text, watermark"],
                   ["an astronaut riding a horse on the moon, photorealistic", "cartoon, deformed"],
                   ["isometric pixel-art island with a lighthouse", "blurry"]]


# What the API page shows as an example for /read_parameters (a PNG that ships with gradio; it carries no parameters,
# which the answer says in words)
EXAMPLE_PNG = "https://github.com/gradio-app/gradio/raw/main/gradio/media_assets/images/bus.png"


def build(ctx) -> None:
    """The tab, inside the current gr.Blocks. It reads top to bottom like AUTOMATIC1111's: the model, the mode (with
    its picture inputs), the prompt, the settings, the one main button, the status line, then the results."""
    model_id = ctx.choice().id
    c = _components(ctx, {**model_defaults(model_id), "family": family(model_id)})
    _wire(ctx, c)
    from demos.stable_diffusion import ui_links  # parts other tabs send to, and Describe by the gallery (hub.links)
    ui_links.build(ctx, c)


def _components(ctx, d: dict) -> SimpleNamespace:
    """Two columns, so the prompt, Generate and the pictures show together at 1440x900 (AUTOMATIC1111's layout):
    the model, the mode, the prompt, the button and the status line on the left, the gallery on the right; the
    settings, the example prompts, the record and *Read parameters* below, the first two collapsed."""
    import gradio as gr
    from gradio_client import handle_file

    from hub.page import MAIN, STATUS

    c = SimpleNamespace()
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=300):
            c.model, c.notice = ctx.model_picker()  # says up front whether the picked model is on this machine
            _modes(c)
            c.prompt = gr.Textbox(label="Prompt", lines=2,
                                  placeholder="a watercolor fox in a snowy forest (Ctrl+Enter generates)")
            c.negative = gr.Textbox("", label="Negative prompt", lines=1, placeholder="blurry, low quality")
            lora_ui.picker(ctx, c)  # c.loras: "name:0.8, other:0.5", sent with every run
            with gr.Row():
                # One main button: the one of the selected mode (the others are hidden; each is its own API).
                c.run_t2i = gr.Button("Generate", variant="primary", scale=6, elem_classes=[MAIN])
                c.run_i2i = gr.Button("Transform", variant="primary", scale=6, visible=False, elem_classes=[MAIN])
                c.run_inp = gr.Button("Inpaint", variant="primary", scale=6, visible=False, elem_classes=[MAIN])
                c.cancel = gr.Button("Cancel", variant="stop", size="sm", scale=1, min_width=90, visible=False)
            # The one status line: loading, steps, the error pill, notes (one line high even when empty)
            c.status = gr.Markdown(label="Status", min_height=36, elem_classes=["sd-status", STATUS])
            # the ControlNet units (their values go with every run), under the button as sd-webui-controlnet's
            # are under A1111's generation settings: Generate stays in view at 1440x900
            ui_control.components(ctx, c)
        with gr.Column(scale=6, min_width=300):
            # scale-down: every image whole (never cropped) and never blown up past its own size; two fixed
            # columns (with fitted columns one image got a full-width square cell taller than the box)
            c.gallery = gr.Gallery(label="Images (PNG with parameters)", columns=2, fit_columns=False, height=500,
                                   format="png", type="filepath", object_fit="scale-down", interactive=False,
                                   elem_classes=["hub-compact"])
            with gr.Row(visible=False) as c.seed_row:  # shown after the first run: no "Seed used 0" before it
                c.used_seed = gr.Number(label="Seed used", precision=0, interactive=False, scale=4)
                c.reuse = gr.Button("\u267b\ufe0f Reuse this seed", size="sm", scale=1, min_width=150)
    _settings(c, d, ctx._kind())
    with gr.Accordion("Example prompts", open=False):
        gr.Examples(EXAMPLE_PROMPTS, [c.prompt, c.negative], label="Example prompts", cache_examples=False)
    c.record = gr.JSON(label="Record")
    with gr.Accordion("Read parameters from a PNG", open=False):
        c.png = gr.File(label="PNG made by this tab (or AUTOMATIC1111)", file_types=[".png"], type="filepath")
    c.png.example_inputs = lambda: handle_file(EXAMPLE_PNG)  # the API page's example: a PNG (gradio's: a PDF)
    return c


def _modes(c: SimpleNamespace) -> None:
    """The three modes as tabs; each holds only what that mode adds (the prompt and settings are shared)."""
    import gradio as gr

    from hub import fields
    from hub.uploads import undecoded

    with gr.Tabs():
        with gr.Tab("Text to image") as c.tab_t2i:
            gr.Markdown("To start from a picture of your own, use *Image to image* or *Inpaint*.")
            ui_hires.components(c)  # the hires fix: text to image only
        with gr.Tab("Image to image") as c.tab_i2i:
            c.init_image = undecoded(gr.Image(type="filepath", label="Init image (fitted into width x height)",
                                              height=260))
            c.strength_i2i = fields.slider("Strength", 0.05, 1.0, 0.75, 0.05, info="How much to change: 1 draws anew")
        with gr.Tab("Inpaint") as c.tab_inp:
            c.editor = gr.ImageEditor(type="pil", format="png", label="Image: paint the part to repaint",
                                      brush=gr.Brush(colors=["#ffffff"], color_mode="fixed"), height=360,
                                      layers=gr.LayerOptions(allow_additional_layers=False))
            with gr.Row():
                c.mask_upload = undecoded(gr.Image(type="filepath", label="Or upload a mask (white = repaint)",
                                                   height=160))
                c.strength_inp = fields.slider("Strength", 0.05, 1.0, 1.0, 0.05, info="1 repaints the painted part fully")


def _settings(c: SimpleNamespace, d: dict, kind: str) -> None:
    """The settings every mode shares, collapsed under the results; each field's info states its range (a value
    typed out of range is refused with the validator's sentence, never clamped: hub.fields)."""
    import gradio as gr

    from hub import fields

    with gr.Accordion("Settings", open=False):
        with gr.Row():
            c.steps = fields.slider("Steps", 1, MAX_STEPS, d["steps"], 1)
            c.guidance = fields.slider("Guidance scale", 0, MAX_GUIDANCE, d["guidance"], 0.5, info="0 to 1 = off")
            # every scheduler, so an API call (a fresh session) may name any model's; picking a model narrows the
            # list to those its family runs (_defaults_for), and the engine refuses a mismatch with a sentence
            c.scheduler = gr.Dropdown(list(SCHEDULERS), value=d["scheduler"], label="Scheduler")
        with gr.Row():
            # any multiple of 8 (16 for Z-Image) in range; anything else is refused with one sentence
            k = 16 if d["family"] == "zimage" else 8
            c.width = fields.number("Width", MIN_SIDE, MAX_SIDE, d["size"], info=f"A multiple of {k}", step=k)
            c.height = fields.number("Height", MIN_SIDE, MAX_SIDE, d["size"], info=f"A multiple of {k}", step=k)
            c.count = fields.slider("Images", 1, MAX_IMAGES, 1, 1)
            c.seed = fields.number("Seed", -1, MAX_SEED, -1, info="-1 = random")
            c.decoder = gr.Radio([("full", "full"), ("tiny (fast)", "tiny")], value=decoder.default_for(kind),
                                 label="Decoder", info="tiny: about 10x faster on a CPU, slightly softer details")


def _wire(ctx, c: SimpleNamespace) -> None:
    import gradio as gr

    common = [c.seed, c.steps, c.guidance, c.scheduler, c.width, c.height, c.count, c.decoder, c.loras]
    control = ui_control.inputs(c)  # the ControlNet units' values (and text to image's hires fix)
    runs = [
        _run_event(ctx, c, c.run_t2i, _generate_handler(ctx),
                   [c.model, c.prompt, c.negative, *common, *ui_control.inputs(c, hires=HIRES)], "generate_image"),
        _run_event(ctx, c, c.run_i2i, _img2img_handler(ctx),
                   [c.model, c.init_image, c.prompt, c.negative, c.strength_i2i, *common, *control], "img2img"),
        _run_event(ctx, c, c.run_inp, _inpaint_handler(ctx),
                   [c.model, c.editor, c.mask_upload, c.prompt, c.negative, c.strength_inp, *common, *control],
                   "inpaint"),
    ]
    ui_control.wire(ctx, c)
    quiet = dict(queue=False, show_progress="hidden", api_visibility="private")
    # Cancel only cancels: the run's after-step (below) hides it and says "Cancelled." once the page has let go of
    # the run, so no late step can overwrite that and Generate is not clicked while the old run is still held.
    c.cancel.click(None, None, None, cancels=runs, **quiet)
    buttons = [c.run_t2i, c.run_i2i, c.run_inp]
    for i, tab in enumerate((c.tab_t2i, c.tab_i2i, c.tab_inp)):
        tab.select(lambda i=i: [gr.update(visible=k == i) for k in range(3)], None, buttons, **quiet)
    c.reuse.click(lambda s: s if s is not None else -1, [c.used_seed], [c.seed], **quiet)
    c.model.change(_defaults_for, [c.model], [c.steps, c.guidance, c.scheduler, c.width, c.height, c.decoder],
                   api_visibility="private")
    _refuse_bad_pictures(ctx, c)
    c.png.upload(_fill_handler(ctx), [c.png], [c.prompt, c.negative, c.seed, c.steps, c.guidance, c.scheduler,
                                                c.width, c.height, c.model, c.loras, *ui_hires.inputs(c), c.record],
                 api_name="read_parameters")


def _refuse_bad_pictures(ctx, c: SimpleNamespace) -> None:
    """A file that is not a picture is refused on upload, as on the YOLO, SAM and CLIP tabs, with the hub decoder's
    sentence (not at Generate, quoting PIL), and removed."""
    from hub.uploads import refuse_bad_images

    refuse_bad_images(ctx, c.init_image, c.status, lambda p: open_image(p, "the init image"))
    refuse_bad_images(ctx, c.mask_upload, c.status, lambda p: open_image(p, "the mask"))
    refuse_bad_images(ctx, c.editor, c.status, lambda v: open_image(v.get("background"), "the image to inpaint")
                      if isinstance(v, dict) and v.get("background") is not None else None)


def _run_event(ctx, c: SimpleNamespace, button, handler, inputs, api_name: str):
    """button -> Cancel shows, the last run's notes go -> the run (its API; progress and errors on the status line
    only) -> Cancel hides and the seed used shows. Returns the run's event, for Cancel."""
    import gradio as gr

    quiet = dict(queue=False, show_progress="hidden", api_visibility="private")
    shown = button.click(lambda: (gr.update(visible=True), ""), None, [c.cancel, c.status], **quiet)
    run = shown.then(handler, inputs, [c.gallery, c.used_seed, c.status, c.record], api_name=api_name,
                     **ctx.events_on(c.status))
    run.then(_after_run, [c.used_seed, c.status], [c.cancel, c.seed_row, c.status], **quiet)
    # gradio 6.31's page runs .then after success or Cancel, not after an error; this one leaves the status alone
    # (an output of it would lose the error pill there)
    run.failure(lambda seed: _after_run(seed, "")[:2], [c.used_seed], [c.cancel, c.seed_row], **quiet)
    return run


def _after_run(seed, said):
    """After a run ends (done, failed or cancelled): Cancel goes, "Seed used" shows once there is a seed, and a
    status still saying what was under way ("Step 3 of 40…": every such line ends with an ellipsis, notes and
    "Done." never do) means the run was cancelled."""
    import gradio as gr

    stopped = (said or "").rstrip().endswith("\u2026")
    return gr.update(visible=False), gr.update(visible=seed is not None), "Cancelled." if stopped else gr.skip()


def _defaults_for(model_id):
    """The model's own steps, guidance, scheduler (among those its family runs) and size, sides stepping by 8 or 16."""
    import gradio as gr

    o = model_defaults(model_id)
    k = 16 if family(model_id) == "zimage" else 8
    info = f"A multiple of {k} (a whole number from {MIN_SIDE} to {MAX_SIDE})"  # as hub.fields.number words it
    side = [gr.update(value=o["size"], step=k, info=info) for _ in range(2)]
    full_only = family(model_id) == "zimage"  # no tiny decoder for its latents (zimage.NO_TINY)
    return (o["steps"], o["guidance"], gr.update(choices=list(FAMILY_SCHEDULERS[family(model_id)]),
                                                 value=o["scheduler"]), *side, "full" if full_only else gr.skip())


def _request_settings(seed, steps, guidance_scale, scheduler, width, height, num_images, decoder,
                      loras="", controlnet=(), hires=None) -> Settings:
    return Settings(seed=seed, steps=steps, guidance=guidance_scale, scheduler=scheduler, width=width, height=height,
                    num_images=num_images, decoder=decoder, loras=loras or (), controlnet=controlnet, hires=hires)


# ---- handlers: the positional order is the API's (gradio_client); the names and Args are the API page's -----------
# gradio reads one line per parameter from "Args:"; the shared settings are described the same way in each handler.


def _generate_handler(ctx):
    import gradio as gr

    def generate_image(model, prompt, negative_prompt="", seed=-1, steps=None, guidance_scale=None,
                       scheduler=None, width=None, height=None, num_images=1, decoder=None, loras="", *,
                       controlnet=(), hires=None, progress=gr.Progress(track_tqdm=True)):
        """Text to image: PNGs that carry their parameters, the seed used, notes and the reproducibility record.

        Args:
            model: one of the models the tab's Model dropdown lists.
            prompt: what to draw.
            negative_prompt: what the picture should not show ("" for nothing).
            seed: the first image's seed, a whole number from -1 to 4294967295 (-1 = random); image i uses seed + i.
            steps: denoising steps, a whole number from 1 to 150 (None: the model's default).
            guidance_scale: how closely to follow the prompt, 0 to 30; 0 to 1 turns guidance off (None: default).
            scheduler: "Euler a", "Euler", "DPM++ 2M", "DPM++ 2M Karras" or "DDIM"; "FlowMatch Euler" for Z-Image.
            width: image width in pixels, a multiple of 8 (16 for Z-Image), 64 to 1024.
            height: image height in pixels, a multiple of 8 (16 for Z-Image), 64 to 1024.
            num_images: how many images, 1 to 4.
            decoder: "full" (the model's VAE) or "tiny" (TAESD, fast on a CPU); None: tiny on a CPU, full on a GPU.
            loras: LoRAs with weights, "name:0.8, other:0.5" ("" = none; GET /v1/images/loras lists the names).
        """
        settings = _request_settings(seed, steps, guidance_scale, scheduler, width, height, num_images, decoder,
                                     loras, controlnet, hires)
        yield from stream(ctx, "txt2img", GenerateRequest(prompt, negative_prompt, settings), model)
    return ctx.handler(ui_control.extend(generate_image, hires=HIRES))


def _img2img_handler(ctx):
    import gradio as gr

    def img2img(model, image, prompt, negative_prompt="", strength=0.75, seed=-1, steps=None,
                guidance_scale=None, scheduler=None, width=None, height=None, num_images=1, decoder=None, loras="",
                *, controlnet=(), progress=gr.Progress(track_tqdm=True)):
        """Image to image: the picture redrawn after the prompt, as PNGs with their parameters.

        Args:
            model: one of the models the tab's Model dropdown lists.
            image: the picture to start from (PNG, JPEG or WebP), fitted into width x height keeping its shape.
            prompt: what the picture should become.
            negative_prompt: what the picture should not show ("" for nothing).
            strength: how much to change, 0.05 to 1 (1 draws anew).
            seed: the first image's seed, a whole number from -1 to 4294967295 (-1 = random); image i uses seed + i.
            steps: denoising steps, a whole number from 1 to 150 (None: the model's default).
            guidance_scale: how closely to follow the prompt, 0 to 30; 0 to 1 turns guidance off (None: default).
            scheduler: "Euler a", "Euler", "DPM++ 2M", "DPM++ 2M Karras" or "DDIM"; "FlowMatch Euler" for Z-Image.
            width: the box the picture is fitted into, a multiple of 8 (16 for Z-Image), 64 to 1024.
            height: the box the picture is fitted into, a multiple of 8 (16 for Z-Image), 64 to 1024.
            num_images: how many images, 1 to 4.
            decoder: "full" (the model's VAE) or "tiny" (TAESD, fast on a CPU); None: tiny on a CPU, full on a GPU.
            loras: LoRAs with weights, "name:0.8, other:0.5" ("" = none; GET /v1/images/loras lists the names).
        """
        settings = _request_settings(seed, steps, guidance_scale, scheduler, width, height, num_images, decoder,
                                     loras, controlnet)
        picture = open_image(image, "the init image")  # fail fast, before waiting for the model
        yield from stream(ctx, "img2img", Img2ImgRequest(picture, prompt, negative_prompt, strength, settings), model)
    return ctx.handler(ui_control.extend(img2img))


def _inpaint_handler(ctx):
    import gradio as gr

    def inpaint(model, image, mask=None, prompt="", negative_prompt="", strength=1.0, seed=-1, steps=None,
                guidance_scale=None, scheduler=None, width=None, height=None, num_images=1, decoder=None, loras="",
                *, controlnet=(), progress=gr.Progress(track_tqdm=True)):
        """Inpaint: repaint part of a picture after the prompt; pixels far from the mask stay as they were.

        Args:
            model: one of the models the tab's Model dropdown lists.
            image: the image editor's value {"background": picture, "layers": [painted layers], "composite": None}.
            mask: a mask instead of painted layers (white = repaint), or None to repaint what the layers paint.
            prompt: what to paint there.
            negative_prompt: what the picture should not show ("" for nothing).
            strength: how much to change the painted part, 0.05 to 1 (1 repaints it fully).
            seed: the first image's seed, a whole number from -1 to 4294967295 (-1 = random); image i uses seed + i.
            steps: denoising steps, a whole number from 1 to 150 (None: the model's default).
            guidance_scale: how closely to follow the prompt, 0 to 30; 0 to 1 turns guidance off (None: default).
            scheduler: "Euler a", "Euler", "DPM++ 2M", "DPM++ 2M Karras" or "DDIM"; "FlowMatch Euler" for Z-Image.
            width: the box the picture is fitted into, a multiple of 8 (16 for Z-Image), 64 to 1024.
            height: the box the picture is fitted into, a multiple of 8 (16 for Z-Image), 64 to 1024.
            num_images: how many images, 1 to 4.
            decoder: "full" (the model's VAE) or "tiny" (TAESD, fast on a CPU); None: tiny on a CPU, full on a GPU.
            loras: LoRAs with weights, "name:0.8, other:0.5" ("" = none; GET /v1/images/loras lists the names).
        """
        settings = _request_settings(seed, steps, guidance_scale, scheduler, width, height, num_images, decoder,
                                     loras, controlnet)
        background = (image or {}).get("background")
        if background is None:
            raise UserError("Upload the image to inpaint into the editor first.")
        picture = open_image(background, "the image to inpaint")
        mask_image = masks.mask_from(mask) if mask is not None else masks.editor_mask((image or {}).get("layers"))
        if mask_image is None:
            raise UserError(EMPTY_MASK)
        request = InpaintRequest(picture, mask_image, prompt, negative_prompt, strength, settings)
        yield from stream(ctx, "inpaint", request, model)
    return ctx.handler(ui_control.extend(inpaint))


def _fill_handler(ctx):
    import gradio as gr

    @ctx.handler
    def read_parameters(file):
        """Fill the tab's fields from a PNG this tab, AUTOMATIC1111 or ComfyUI made (LoRAs as "name:0.8, ...", then
        the hires fix: on, upscaler, scale, denoise, steps).

        Args:
            file: a PNG with parameters in its text chunks.
        """
        p = read_parameters_from(file, missing_ok=True)
        if not p:  # a picture without parameters: nothing to fill in, which is an answer, not an error
            gr.Warning(NO_PARAMETERS)
            return (gr.skip(),) * 15 + ({},)
        models = [m for _, m in ctx.model_choices()]
        sched = p.get("scheduler")
        return (p.get("prompt", gr.skip()), p.get("negative_prompt", gr.skip()), p.get("seed", gr.skip()),
                p.get("steps", gr.skip()), p.get("guidance", gr.skip()),
                sched if sched in SCHEDULERS else gr.skip(), p.get("width", gr.skip()), p.get("height", gr.skip()),
                p["model"] if p.get("model") in models else gr.skip(), lora_ui.as_text(p.get("loras")),
                *ui_hires.filled(p.get("hires")), p)
    return read_parameters


# ---- the request path: the engine's streaming work method, through ctx.stream ---------------------------------------


def stream(ctx, method: str, request, model):
    """The status line and results of one run of the work method `method`: yield once per step.

    What the status line says, in order (the one progress of the tab, issue #16 point 2): "Loading <model> (<size>)…"
    while the model loads (a download shows its bytes there too: the handler's gr.Progress tracks tqdm), "Encoding the
    prompt, then denoising step 1…" (the method's Step 0: the model is loaded), "Step k of n…" as each denoising step
    starts, "Decoding the image…" after the last, then the notes. Yielding
    every step also lets Cancel (or a closed page) close this generator between steps: closing the stream sets the
    method's `job.stop`, the pipeline stops after its current step, and the lease is released when the method
    returns, without this generator (gradio's event loop) waiting for that step. The handlers' gr.Progress is not
    handed to `ctx.stream`: the status line already says the model is loading, in words (gradio 6 shows a progress
    description only beside a percentage); it is there so that a download's tqdm bars show their bytes.
    """
    import gradio as gr

    loading = ctx.loading_text(model)  # refuses an unlisted model with the allow-list's sentence, as ctx.stream does
    if loading:
        yield gr.skip(), gr.skip(), loading, gr.skip()
    work = ctx.stream(method, request, model)
    try:
        for item in work:
            if isinstance(item, Step):
                yield gr.skip(), gr.skip(), _said(item), gr.skip()
            else:
                yield _finish(item)
                return
    except Exception:  # the toast says it; the line must not go on saying "Loading…" beside the pill
        yield gr.skip(), gr.skip(), "", gr.skip()
        raise
    finally:
        work.close()
    yield gr.skip(), gr.skip(), "Cancelled.", gr.skip()  # stopped before its result


def _said(step: Step) -> str:
    """What is under way as each stage starts: a Step arrives when the stage before it has ended (Step 0: the model
    is loaded; Step k: denoising step k is done), so the line names the next one."""
    if step.step == 0:
        return "Encoding the prompt, then denoising step 1\u2026"
    if step.total and step.step < step.total:
        return f"Step {step.step + 1} of {step.total}\u2026"
    return "Decoding the image\u2026"


def _finish(res) -> tuple:
    paths = [str(p) for p in res.save(request_folder(SPEC.name, "images"))]
    notes = "\n".join(f"- {n}" for n in res.notes) or "Done."
    return paths, res.seeds[0], notes, res.record
