"""The Stable Diffusion tab's ControlNet units, as sd-webui-controlnet lays them out: per unit a picture, the
ControlNet model (none: the unit is off), its preprocessor, **Preview map** (the map it will read, made by the
`control_map` work method, which can be downloaded and uploaded again with the preprocessor none), the strength and
the step window, and canny's thresholds. Two units in the tab (a third through /v1/images).

`extend(handler)` gives a run handler these API parameters after its own (controlnet_model, controlnet_image, ...,
controlnet2_model, ...; and for text to image the hires fix's, ui_hires.py): gradio_client names them, the API page
lists them with their Args lines, and the handler gets `controlnet=` (types.ControlUnit items) and `hires=`.
"""

from __future__ import annotations

import functools
import inspect
from types import SimpleNamespace

from demos.stable_diffusion import controlnet
from demos.stable_diffusion.types import ControlMapRequest, ControlUnit
from hub.errors import UserError

UNITS = 2
FIELDS = ("model", "image", "preprocessor", "strength", "start", "end", "low", "high")
DEFAULTS = {"model": "", "image": None, "preprocessor": "", "strength": 1.0, "start": 0.0, "end": 1.0, "low": 100,
            "high": 200}
DOCS = {"model": "a ControlNet name from GET /v1/images/controlnets (\"\" = this unit off).",
        "image": "the picture this ControlNet reads (its map is made from it by the preprocessor).",
        "preprocessor": "canny, depth, lineart, scribble, tile or none (the picture is the map); \"\" = the model's.",
        "strength": "how strongly the map steers, 0 to 2.",
        "start": "the fraction of the steps where it starts acting, 0 to 1.",
        "end": "the fraction of the steps where it stops, 0 to 1 (after start).",
        "low": "canny's low threshold, 0 to 255.",
        "high": "canny's high threshold, 0 to 255."}
HIRES = (("hires", False, "run the hires fix: draw at width x height, enlarge, then repaint (text to image)."),
         ("hires_upscaler", "Latent", "how to enlarge: Latent, Latent (nearest-exact), Lanczos or an upscaler model."),
         ("hires_scale", 2.0, "how many times larger, 1 to 4 (the result's sides at most 1024)."),
         ("hires_denoise", 0.5, "how much the second pass repaints, 0 to 1."),
         ("hires_steps", 0, "steps of the second pass (0 = as many as the first)."))


def prefix(k: int) -> str:
    return "controlnet_" if k == 0 else f"controlnet{k + 1}_"


def rows(ctx) -> list[dict]:
    """What GET /v1/images/controlnets answers: on random test weights one random ControlNet per pinned name, else
    the folder's and the fetched pins (controlnet.listing)."""
    if getattr(ctx.settings, "weights", "") == "random" or ctx.choice().source == "random":
        return [{"id": p.options["name"], "object": "controlnet", "source": "random",
                 "preprocessor": p.options["preprocessor"], "base": "the loaded model's"} for p in controlnet.PINS]
    return controlnet.listing(getattr(ctx.options, "controlnet_dir", ""), ctx.settings.cache_dir)


def names(ctx) -> list[str]:
    """The ControlNets the tab offers."""
    return [r["id"] for r in rows(ctx)]


def units(values: dict) -> tuple:
    """The request's units from the parameters (a unit without a model is off; a picture without one is a
    mistake worth a sentence)."""
    out = []
    for k in range(UNITS):
        u = {f: values.get(prefix(k) + f, DEFAULTS[f]) for f in FIELDS}
        if not (u["model"] or "").strip():
            if u["image"] is not None:
                raise UserError(f"ControlNet unit {k + 1} has a picture but no ControlNet model: pick one, or "
                                "remove the picture.")
            _in_range(u, k)  # off, but a value out of range is still a mistake worth its sentence
            continue
        out.append(ControlUnit(u["model"], u["image"], u["preprocessor"] or None, u["strength"], u["start"],
                               u["end"], u["low"], u["high"]))
    return tuple(out)


def _in_range(u: dict, k: int) -> None:
    from hub import validate

    for f, hi, whole in (("strength", controlnet.MAX_STRENGTH, False), ("start", 1, False), ("end", 1, False),
                         ("low", 255, True), ("high", 255, True)):
        validate.number(u[f], f"ControlNet unit {k + 1}'s {f}", 0, hi, integer=whole, default=DEFAULTS[f])


def extend(fn, hires: bool = False):
    """`fn(..., loras="", *, controlnet=(), hires=None, progress=...)` as a handler whose API parameters add the
    units' (and the hires fix's): see the module docstring."""
    sig = inspect.signature(fn)
    own = [p for n, p in sig.parameters.items() if n not in ("controlnet", "hires", "progress")]
    extra = [(prefix(k) + f, DEFAULTS[f], f"ControlNet unit {k + 1}: {DOCS[f]}") for k in range(UNITS)
             for f in FIELDS] + (list(HIRES) if hires else [])
    params = own + [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=d) for n, d, _ in extra]
    params.append(sig.parameters["progress"])
    new_sig = sig.replace(parameters=params)

    @functools.wraps(fn)
    def handler(*args, **kwargs):
        bound = new_sig.bind(*args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        control = units(values)
        picked = {n: values.pop(n) for n, _, _ in extra}
        kw = {"controlnet": control}
        if hires:
            from demos.stable_diffusion.ui_hires import to_hires

            kw["hires"] = to_hires(*(picked[n] for n, _, _ in HIRES))
        yield from fn(**values, **kw)

    handler.__signature__ = new_sig
    handler.__doc__ = (fn.__doc__ or "").rstrip() + "\n" + "".join(f"            {n}: {d}\n" for n, _, d in extra)
    return handler


def inputs(c: SimpleNamespace, hires: bool = False) -> list:
    """The components, in extend()'s parameter order."""
    comps = [getattr(c, f"cn{k}_{f}") for k in range(UNITS) for f in FIELDS]
    return comps + ([c.hires_enable, c.hires_upscaler, c.hires_scale, c.hires_denoise, c.hires_steps] if hires else [])


def components(ctx, c: SimpleNamespace) -> None:
    """The ControlNet accordion (under the LoRAs): a tab per unit."""
    import gradio as gr

    from hub import fields
    from hub.uploads import undecoded

    offered = names(ctx)
    with gr.Accordion("ControlNet", open=False, elem_id="sd-controlnet"):
        if not offered:
            gr.Markdown("No ControlNets on this hub yet: the operator gets the pinned SD 1.5 ones with `demohub "
                        f"fetch stable_diffusion --model {controlnet.SD15}`, or names a folder of them with "
                        "`DEMOHUB_STABLE_DIFFUSION_CONTROLNET_DIR`.")
        with gr.Tabs():
            for k in range(UNITS):
                with gr.Tab(f"Unit {k + 1}"):
                    with gr.Row(equal_height=False):
                        setattr(c, f"cn{k}_image", undecoded(gr.Image(type="filepath", label="Control picture",
                                                                      height=220)))
                        setattr(c, f"cn{k}_map", gr.Image(type="filepath", format="png", label="Its map",
                                                          height=220, interactive=False))
                    with gr.Row():
                        # custom values: a ControlNet added to the folder since the start (the engine answers)
                        setattr(c, f"cn{k}_model", gr.Dropdown([("(none)", "")] + [(n, n) for n in offered],
                                                               value="", label="ControlNet model",
                                                               allow_custom_value=True))
                        setattr(c, f"cn{k}_preprocessor", gr.Dropdown(
                            [("auto", "")] + [(p, p) for p in controlnet.PREPROCESSORS], value="",
                            label="Preprocessor"))
                        setattr(c, f"cn{k}_preview", gr.Button("Preview map", size="sm", min_width=120))
                    with gr.Row():
                        setattr(c, f"cn{k}_strength", fields.slider("Control strength", 0, controlnet.MAX_STRENGTH,
                                                                    1.0, 0.05))
                        setattr(c, f"cn{k}_start", fields.slider("Starting step", 0, 1, 0.0, 0.05,
                                                                 info="a fraction of the steps"))
                        setattr(c, f"cn{k}_end", fields.slider("Ending step", 0, 1, 1.0, 0.05,
                                                               info="a fraction of the steps"))
                    with gr.Row():
                        setattr(c, f"cn{k}_low", fields.number("Canny low threshold", 0, 255, 100))
                        setattr(c, f"cn{k}_high", fields.number("Canny high threshold", 0, 255, 200))


def wire(ctx, c: SimpleNamespace) -> None:
    """Preview map (API `control_map`, on the first unit's button; the second's is private), and a picture that is
    not one refused on upload."""
    from hub.media.image import open_image
    from hub.uploads import refuse_bad_images

    handler = ctx.handler(_map_handler(ctx))
    for k in range(UNITS):
        ins = [c.model, getattr(c, f"cn{k}_image"), getattr(c, f"cn{k}_preprocessor"), getattr(c, f"cn{k}_model"),
               getattr(c, f"cn{k}_low"), getattr(c, f"cn{k}_high"), c.width, c.height]
        extra = {"api_name": "control_map"} if k == 0 else {"api_visibility": "private"}
        getattr(c, f"cn{k}_preview").click(handler, ins, [getattr(c, f"cn{k}_map"), c.status],
                                           **ctx.events_on(c.status), **extra)
        refuse_bad_images(ctx, getattr(c, f"cn{k}_image"), c.status,
                          lambda p: open_image(p, "the control picture"))


def _map_handler(ctx):
    def control_map(model, image, preprocessor="canny", controlnet_model="", low=100, high=200, width=None,
                    height=None):
        """The map a ControlNet reads from a picture (PNG), to look at before generating or to upload as it is.

        Args:
            model: one of the models the tab's Model dropdown lists (the map is made at its size).
            image: the picture.
            preprocessor: canny, depth, lineart, scribble, tile or none; "" = the ControlNet model's own.
            controlnet_model: the ControlNet whose preprocessor "" means ("" = canny).
            low: canny's low threshold, 0 to 255.
            high: canny's high threshold, 0 to 255.
            width: the map's width, a multiple of 8 (None: the model's size).
            height: the map's height, a multiple of 8 (None: the model's size).
        """
        from hub.outputs import request_folder

        if image is None:
            raise UserError("Upload the control picture first; then Preview map shows what the ControlNet reads.")
        pre = preprocessor or _own_preprocessor(ctx, controlnet_model)
        picture = ctx.call("control_map", ControlMapRequest(image, pre, low, high, width, height), model)
        path = request_folder("stable_diffusion", "maps") / f"map-{pre}.png"
        picture.save(path)
        return str(path), f"The {pre} map at {picture.width}x{picture.height}."
    return control_map


def _own_preprocessor(ctx, name) -> str:
    return next((r["preprocessor"] for r in rows(ctx) if r["id"] == name), "canny")
