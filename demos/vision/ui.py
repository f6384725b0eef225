"""The "Describe image" tab: a picture, what to do with it (caption, SD prompt, read text, ask), Describe / Stop, the
answer as it streams, and its stats and record.

The handler checks the request (mode, question, image count, settings) before any model loads, then streams the
engine's `describe` method through `ctx.stream`. The session hash of the page is the conversation key: a second
question about the same picture reuses its image features (the status line says so). UI only.
"""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from demos.vision.engine import check_count, check_sampling, describe_messages
from demos.vision.types import DescribeRequest, Delta
from hub.errors import UserError
from hub.uploads import refuse_bad_images, undecoded

MODE_CHOICES = [("Caption", "caption"), ("Stable Diffusion prompt", "sd_prompt"), ("Read text (OCR)", "ocr"),
                ("Ask a question", "ask")]
INPUT_NAMES = ("image", "mode", "question", "model", "max_new_tokens")
OUTPUT_NAMES = ("answer", "status", "record")


def build(ctx) -> None:
    c = _components(ctx)

    @ctx.handler
    def describe_image(image, mode="caption", question="", model=None, max_new_tokens=256,
                       request: gr.Request = None, progress=gr.Progress()):
        """Say what is in a picture; the answer streams, then the status line and the record follow.

        Args:
            image: the picture (PNG, JPEG, WebP, BMP, GIF or TIFF).
            mode: "caption", "sd_prompt" (a caption written as a Stable Diffusion prompt), "ocr" (read the text in
                it) or "ask" (answer `question`).
            question: the question, for mode "ask"; ignored otherwise.
            model: a vision model this hub lists (GET /v1/models); optional, the tab's default.
            max_new_tokens: optional, 1 to the hub's limit (default 256); the longest answer in tokens.
        """
        yield from run(ctx, image, mode, question, model, max_new_tokens, request, progress)

    quiet = {"api_visibility": "private", "show_progress": "hidden"}
    event = c.go.click(lambda: gr.update(visible=True), None, c.stop, **quiet).then(
        describe_image, [getattr(c, n) for n in INPUT_NAMES], [getattr(c, n) for n in OUTPUT_NAMES],
        api_name="describe_image", **ctx.events_on(c.status))
    for after in (event.then, event.failure):
        after(lambda: gr.update(visible=False), None, c.stop, **quiet)
    c.stop.click(lambda: gr.update(visible=False), None, c.stop, cancels=[event], **quiet)
    c.mode.change(lambda m: gr.update(visible=m == "ask"), c.mode, c.question, **quiet, queue=False)
    # "Send to SD tab" (hub.links): shown for the Stable Diffusion prompt, when this hub has an SD tab
    send = ctx.links.send(ctx.name, c.send_sd, to_sd_prompt, [c.answer], ("stable_diffusion.prompt",), show=False)
    c.mode.change(lambda m: gr.update(visible=send.wired and m == "sd_prompt"), c.mode, c.send_sd, **quiet,
                  queue=False)
    refuse_bad_images(ctx, c.image, c.status, _check_upload(ctx))


def to_sd_prompt(answer) -> dict:
    """The answer, as the SD tab's prompt."""
    text = " ".join((answer or "").split())
    if not text:
        raise UserError("Describe the picture first; then send its prompt to the SD tab.")
    return {"stable_diffusion.prompt": text}


def _check_upload(ctx):
    def check(path):
        from demos.vision.engine import open_images

        open_images((path,), ctx.options)
    return check


def run(ctx, image, mode, question, model, max_new_tokens, request, progress):
    """(answer so far, status, record) triples: the checks first, then the streamed answer, then its stats."""
    sampling = check_sampling(max_new_tokens, most=int(ctx.options.max_new_tokens))
    images = check_count((image,) if image else (), int(ctx.options.max_images))
    req = DescribeRequest(images, mode, question if isinstance(question, str) else "", sampling,
                          session=getattr(request, "session_hash", None) or "")
    describe_messages(req)  # a bad mode or an empty question is said before anything loads
    random = ctx.choice(model).source == "random"
    work = ctx.stream("describe", req, model, progress=progress)
    text = ""
    try:
        for item in work:
            if isinstance(item, Delta):
                text += item.text
                yield text, gr.skip(), gr.skip()
                continue
            yield item.text, status_line(item, random), item.record
    finally:
        work.close()


def status_line(done, random: bool = False) -> str:
    parts = [f"{done.completion_tokens} tokens"]
    if done.first_token_s is not None:
        parts.append(f"first token {done.first_token_s:.2f} s")
    parts.append(f"{done.prompt_tokens} prompt tokens")
    if done.images_cached:
        parts.append("image features reused from this conversation")
    if done.finish_reason == "length":
        parts.append("hit max new tokens")
    elif done.finish_reason == "cancelled":
        parts.append("stopped")
    note = " · ⚠️ random weights: the text is meaningless" if random else ""
    return "⏱ " + " · ".join(parts) + note


def _components(ctx) -> SimpleNamespace:
    from hub import fields
    from hub.assets import package_file
    from hub.page import MAIN, STATUS

    c = SimpleNamespace()
    c.model, c.notice = ctx.model_picker(info="SmolVLM runs on a CPU; Qwen3-VL-2B wants a GPU.")
    with gr.Row(equal_height=False):
        with gr.Column(min_width=300):
            c.image = undecoded(gr.Image(type="filepath", label="Picture", height=260))
            c.mode = gr.Radio(MODE_CHOICES, value="caption", label="What to write")
            c.question = gr.Textbox(label="Question", placeholder="What colour is the bus?", visible=False,
                                    lines=2)
            with gr.Row():
                c.go = gr.Button("Describe", variant="primary", elem_classes=[MAIN], scale=4)
                c.stop = gr.Button("Stop", variant="stop", visible=False, scale=1, min_width=80)
            c.status = gr.Markdown(elem_id="vision-status", elem_classes=[STATUS])
            photos = [str(p) for p in (package_file("ultralytics", "assets", "bus.jpg"),
                                       package_file("gradio", "media_assets", "images", "cheetah.jpg")) if p]
            if photos:
                gr.Examples([[p] for p in photos], [c.image], label="Samples", cache_examples=False)
            with gr.Accordion("Settings", open=False):
                c.max_new_tokens = fields.slider("Max new tokens", 1, int(ctx.options.max_new_tokens), 256, 1)
        with gr.Column(min_width=300):
            c.answer = gr.Textbox(label="Answer", lines=10, max_lines=30, buttons=["copy"], interactive=False,
                                  elem_id="vision-answer")
            c.send_sd = gr.Button("Send to SD tab as the prompt", size="sm")  # for an SD prompt, with an SD tab
            with gr.Accordion("Record", open=False):
                c.record = gr.JSON(label="Record (model, revision, settings, timings)")
    return c
