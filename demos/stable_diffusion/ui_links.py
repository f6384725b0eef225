"""The Stable Diffusion tab's links to the other tabs (hub.links), kept out of ui.py: the parts other tabs send to
("Send to SD tab" on Edit by object and Describe image), **Describe this image** under the gallery, which has the
vision demo write the picked image's caption as a prompt, with **Use as prompt**, and **Upscale**, which sends the
picked image to the Upscale tab.

Parts published: "stable_diffusion.prompt" (the prompt box), "stable_diffusion.init_image" (Image to image's
picture), "stable_diffusion.editor" (Inpaint's image editor) and "stable_diffusion.mask" (Inpaint's mask upload);
the mode tabs "stable_diffusion.txt2img", ".img2img" and ".inpaint", which a send opens with a click (the tab's own
select event then shows that mode's one main button).
"""

from __future__ import annotations

from contextlib import contextmanager

import gradio as gr

from hub.chain import reachable
from hub.errors import UserError

DEMO = "stable_diffusion"
MODES = ("txt2img", "img2img", "inpaint")
CAPTION_TOKENS = 77  # the CLIP text encoder of SD 1.x/2.x reads 77 tokens: a longer caption is cut there anyway


def build(ctx, c) -> None:
    """ui.build's one call, after its components and events (`c`: its SimpleNamespace of components)."""
    publish(ctx.links, c)
    upscale_send(ctx, c)
    vision = reachable(ctx, ("vision",))["vision"]
    if vision is not None:  # a hub without the vision demo shows no Describe
        describe(vision, c)


def publish(links, c) -> None:
    links.publish(DEMO, "prompt", c.prompt)
    links.publish(DEMO, "init_image", c.init_image)
    links.publish(DEMO, "editor", c.editor)
    links.publish(DEMO, "mask", c.mask_upload)
    for mode, tab in zip(MODES, (c.tab_t2i, c.tab_i2i, c.tab_inp)):
        links.publish_tab(DEMO, mode, tab)


def describe(vision, c) -> None:
    """**Describe this image** beside *Reuse this seed* (that row shows once there are images), the caption and
    **Use as prompt** under the gallery. ui.py's layout is closed by now, so this re-enters its blocks (gradio
    appends the new components to them)."""
    with _inside(c.seed_row):
        go = gr.Button("Describe this image", size="sm", scale=1, min_width=150)
    with _inside(c.gallery.parent):
        caption = gr.Textbox(label="Caption as a prompt (Describe image)", lines=2, visible=False, interactive=False,
                             buttons=["copy"], elem_id="sd-caption")
        use = gr.Button("Use as prompt", size="sm", visible=False)
    picked = gr.State(None)
    quiet = {"api_visibility": "private", "show_progress": "hidden", "queue": False}
    c.gallery.select(_picked, None, picked, **quiet)
    c.gallery.change(lambda: None, None, picked, **quiet)  # new images: the first is described until one is picked
    shown = go.click(lambda: (gr.update(visible=True, value=""), gr.update(visible=False)), None, [caption, use],
                     **quiet)
    ran = shown.then(vision.handler(_caption(vision)), [c.gallery, picked], caption, api_visibility="private",
                     **{**vision.events, "show_progress_on": [caption]})
    ran.then(lambda text: gr.update(visible=bool((text or "").strip())), caption, use, **quiet)
    use.click(lambda text: text, caption, c.prompt, **quiet)


def upscale_send(ctx, c) -> None:
    """**Upscale** beside *Reuse this seed*: the picked image of the gallery (else the first) goes to the Upscale
    tab's picture input, and the hub switches to that tab (hub.links: the button shows only in a hub with it)."""
    with _inside(c.seed_row):
        go = gr.Button("Upscale", size="sm", scale=1, min_width=110)
    picked = gr.State(None)
    quiet = {"api_visibility": "private", "show_progress": "hidden", "queue": False}
    c.gallery.select(_picked, None, picked, **quiet)
    c.gallery.change(lambda: None, None, picked, **quiet)  # new images: the first is sent until one is picked
    ctx.links.send(DEMO, go, _to_upscale, [c.gallery, picked], ("upscale.image",))


def _to_upscale(images, index) -> dict:
    if not images:
        raise UserError("Generate an image first; then Upscale sends it to the Upscale tab.")
    return {"upscale.image": pick(images, index)}


def _picked(evt: gr.SelectData):
    return evt.index


def _caption(vision):
    def caption_as_prompt(images, index, request: gr.Request = None, progress=gr.Progress()):
        from demos.vision.ui import run

        image = pick(images, index)
        most = min(CAPTION_TOKENS, int(vision.options.max_new_tokens))
        for text, _status, _record in run(vision, image, "sd_prompt", "", None, most, request, progress):
            yield text
    return caption_as_prompt


def pick(images, index):
    """The picked image of the gallery's value (list of (path, caption)), else the first."""
    paths = [item[0] if isinstance(item, (tuple, list)) else item for item in images or ()]
    if not paths:
        raise UserError("Generate an image first; then Describe writes a prompt for it.")
    return paths[index] if isinstance(index, int) and 0 <= index < len(paths) else paths[0]


@contextmanager
def _inside(block):
    """Add components to a layout block that is already closed; its place in the page stays (gradio's __enter__
    re-parents a block to the current context, which is put back)."""
    parent = block.parent
    try:
        with block:
            yield block
    finally:
        block.parent = parent
