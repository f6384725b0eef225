"""The Stable Diffusion tab's **Hires fix** accordion (AUTOMATIC1111's): Enable, the upscaler (Latent, Latent
(nearest-exact), Lanczos, or an Upscale tab model), the scale, the denoise and the hires steps (0 = as many as the
first pass). The engine checks every value (hires.check_hires); the sliders only show their ranges.

Wiring, one line each (ui.py's handlers and /v1/images): `ui_hires.components(c)` inside the settings,
`[c.hires_enable, c.hires_upscaler, c.hires_scale, c.hires_denoise, c.hires_steps]` (= `inputs(c)`) after the
handler's other inputs, and `Settings(..., hires=ui_hires.to_hires(enable, upscaler, scale, denoise, steps))`.
"""

from __future__ import annotations

from demos.stable_diffusion.hires import MAX_SCALE, MIN_SCALE, upscalers
from demos.stable_diffusion.spec import MAX_STEPS
from demos.stable_diffusion.types import Hires


def components(c) -> None:
    """The accordion, closed, in the current layout; sets c.hires_enable, c.hires_upscaler, c.hires_scale,
    c.hires_denoise and c.hires_steps."""
    import gradio as gr

    from hub import fields

    with gr.Accordion("Hires fix", open=False):
        with gr.Row():
            c.hires_enable = gr.Checkbox(False, label="Enable", info="Draw at the Settings size, then enlarge and "
                                                                     "repaint (text to image)")
            c.hires_upscaler = gr.Dropdown(upscalers(), value="Latent", label="Upscaler")
        with gr.Row():
            c.hires_scale = fields.slider("Upscale by", MIN_SCALE, MAX_SCALE, 2.0, 0.05,
                                          info="The result is at most 1024 px a side")
            c.hires_denoise = fields.slider("Denoising strength", 0.0, 1.0, 0.5, 0.01,
                                            info="How much the enlarged picture is repainted; 0 keeps it")
        with gr.Row():  # three sliders in one row of the left column squeeze their labels into a tall stack
            c.hires_steps = fields.slider("Hires steps", 0, MAX_STEPS, 0, 1, info="0 = as many as the first pass")


def inputs(c) -> list:
    """The accordion's components in `to_hires`'s order (a handler's inputs)."""
    return [c.hires_enable, c.hires_upscaler, c.hires_scale, c.hires_denoise, c.hires_steps]


def to_hires(enable, upscaler="Latent", scale=2.0, denoise=0.5, steps=0) -> Hires | None:
    """The request's Hires from the accordion's (or an API call's) values; None when not enabled. Steps 0 or None:
    as many as the first pass. The values are passed on as they came: the engine checks them."""
    if not enable:  # off, but a value out of range is still a mistake worth its sentence
        from hub import validate

        validate.number(scale, "hires scale", MIN_SCALE, MAX_SCALE, default=2.0)
        validate.number(denoise, "hires denoise", 0, 1, default=0.5)
        validate.number(steps, "hires steps", 0, MAX_STEPS, integer=True, default=0)
        return None
    return Hires(scale=scale, upscaler=upscaler or "Latent", denoise=denoise,
                 steps=None if steps in (0, None) else steps)


def filled(hires) -> tuple:
    """The accordion's five values from a PNG's parameters (its "hires": this tab's or A1111's fields, read by
    formats.py): on with the PNG's settings, or off (the other fields as they are) when it had no hires fix. An
    upscaler this hub lacks leaves the list as it is (Generate then says which there are)."""
    import gradio as gr

    if not isinstance(hires, dict):
        return False, gr.skip(), gr.skip(), gr.skip(), gr.skip()
    from demos.stable_diffusion.hires import upscaler_name

    try:
        upscaler = upscaler_name(hires.get("upscaler"))
    except Exception:  # a name this hub does not list
        upscaler = gr.skip()
    scale, denoise = hires.get("scale"), hires.get("denoise")
    return (True, upscaler, scale if isinstance(scale, (int, float)) else gr.skip(),
            denoise if isinstance(denoise, (int, float)) else gr.skip(), hires.get("steps") or 0)
