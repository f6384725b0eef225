"""The Upscale tab, top to bottom: the model picker and its notice, the picture, the scale, the one Upscale button
(Cancel beside it while a run goes), the status line ("Tile k of n…"), then the upscaled PNG (downloadable) and the
record; the tile size under Settings. The handler builds the typed request (types.py) and renders the engine's Tile
items and result; the engine checks and runs. Stable Diffusion's gallery sends pictures here (hub.links: this tab
publishes its picture input as "upscale.image")."""

from __future__ import annotations

from types import SimpleNamespace

from demos.upscale.spec import DEFAULT_TILE, MAX_SCALE, MIN_SCALE, MIN_SIDE, SPEC, TILE_RANGE
from demos.upscale.types import Tile, UpscaleRequest
from hub.media.image import open_image


def build(ctx) -> None:
    import gradio as gr

    c = _components(ctx)
    quiet = dict(queue=False, show_progress="hidden", api_visibility="private")
    shown = c.go.click(lambda: (gr.update(visible=True), ""), None, [c.cancel, c.status], **quiet)
    run = shown.then(_handler(ctx), [c.model, c.image, c.scale, c.tile], [c.output, c.status, c.record],
                     api_name="upscale", **ctx.events_on(c.status))
    run.then(_after_run, c.status, [c.cancel, c.status], **quiet)
    run.failure(lambda: gr.update(visible=False), None, c.cancel, **quiet)  # the error pill stays on the line
    c.cancel.click(None, None, None, cancels=[run], **quiet)

    from hub.uploads import refuse_bad_images

    refuse_bad_images(ctx, c.image, c.status, lambda p: open_image(p, "the picture", min_side=MIN_SIDE))
    ctx.links.publish(SPEC.name, "image", c.image)  # Stable Diffusion's "Upscale" button sends its pictures here


def _components(ctx) -> SimpleNamespace:
    import gradio as gr

    from hub import fields
    from hub.page import MAIN, STATUS
    from hub.uploads import undecoded

    c = SimpleNamespace()
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=300):
            c.model, c.notice = ctx.model_picker(info="Real-ESRGAN x4plus makes 4x (smaller scales are resized "
                                                      "from it); x2plus makes 2x and runs twice for 4x.")
            # the file as uploaded (hub.uploads): its transparency reaches the engine, which keeps it
            c.image = undecoded(gr.Image(type="filepath", image_mode=None, label="Picture (transparency is kept)",
                                         height=300))
            c.scale = fields.slider("Scale", MIN_SCALE, MAX_SCALE, 4, 0.05, info="How many times larger each side")
            with gr.Row():
                c.go = gr.Button("Upscale", variant="primary", scale=6, elem_classes=[MAIN])
                c.cancel = gr.Button("Cancel", variant="stop", size="sm", scale=1, min_width=90, visible=False)
            c.status = gr.Markdown(label="Status", min_height=36, elem_classes=[STATUS])
        with gr.Column(scale=6, min_width=300):
            c.output = gr.Image(type="filepath", format="png", label="Upscaled (PNG)", interactive=False,
                                buttons=["download", "fullscreen"], height=420)
    with gr.Accordion("Settings", open=False):
        kind = ctx._kind().split(":")[0]
        c.tile = fields.slider("Tile size", *TILE_RANGE, DEFAULT_TILE.get(kind, DEFAULT_TILE["cpu"]), 16,
                               info="Pixels per side the model reads at once: smaller uses less memory, larger "
                                    "is faster")
    c.record = gr.JSON(label="Record")
    return c


def _after_run(said):
    """After a run ends (done or cancelled): Cancel goes; a line still saying what was under way ("Tile 3 of 9…")
    means the run was cancelled."""
    import gradio as gr

    stopped = (said or "").rstrip().endswith("\u2026")
    return gr.update(visible=False), "Cancelled." if stopped else gr.skip()


def _handler(ctx):
    import gradio as gr

    @ctx.handler
    def upscale(model, image, scale=4, tile=None, progress=gr.Progress()):
        """Upscale a picture with a super-resolution model: a PNG 1 to 4 times larger (transparency kept), the status
        line and the record.

        Args:
            model: one of the models the tab's Model dropdown lists.
            image: the picture (PNG, JPEG, WebP, BMP, GIF or TIFF); a transparent part stays transparent.
            scale: how many times larger each side gets, 1 to 4 (the result at most 4096 px a side by default).
            tile: the pixels per side the model reads at once, a whole number from 64 to 1024 (the tab starts at 512
                on a GPU, 256 on a CPU); smaller needs less memory, larger is faster.
        """
        yield from stream(ctx, UpscaleRequest(image, scale, tile), model)
    return upscale


def stream(ctx, request: UpscaleRequest, model):
    """The status line and result of one run: "Loading…" while the model loads, "Tile k of n…" as each tile starts,
    then the picture, its size and notes, and the record. Closing this generator (Cancel, a closed page) closes the
    stream, which stops the work between tiles."""
    import gradio as gr

    open_image(request.image, "the picture", min_side=MIN_SIDE)  # fail fast, before waiting for the model
    loading = ctx.loading_text(model)  # refuses an unlisted model with the allow-list's sentence
    if loading:
        yield gr.skip(), loading, gr.skip()
    work = ctx.stream("upscale", request, model)
    try:
        for item in work:
            if isinstance(item, Tile):
                said = (f"Tile {item.done + 1} of {item.total}\u2026" if item.done < item.total
                        else "Writing the PNG\u2026")
                yield gr.skip(), said, gr.skip()
                continue
            notes = "".join(f"\n- {n}" for n in item.notes)
            yield item.path, f"Done: {item.width}x{item.height} px.{notes}", item.record
            return
    except Exception:  # the toast says it; the line must not go on saying "Tile 3 of 9…" beside the pill
        yield gr.skip(), "", gr.skip()
        raise
    finally:
        work.close()
    yield gr.skip(), "Cancelled.", gr.skip()
