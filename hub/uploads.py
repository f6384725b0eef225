"""Uploaded pictures read once, on upload, by the hub's one decoder (hub.media.image), the same way on every tab.

A file that is not a picture (or is truncated, empty or enormous) is refused as it arrives, with the decoder's one
sentence on the tab's status line, and removed from the input: nothing is left to press the main button on. UI only.
"""

from __future__ import annotations


def undecoded(image):
    """gr.Image that hands the handler the uploaded file untouched: decoding, EXIF rotation, the pixel cap and the
    error sentences all live in the hub's decoder (gradio's own preprocessing opens the file with PIL and answers
    with PIL's words). An input tweak on the instance: subclassing a component would make gradio write a .pyi stub."""
    original = image.preprocess

    def preprocess(payload):
        if payload is not None and payload.path and not (payload.url or "").startswith("data:"):
            return str(payload.path)
        return original(payload)

    image.preprocess = preprocess
    return image


def refuse_bad_images(ctx, image, status, check) -> None:
    """On upload to `image`, `check(value)` reads it (raising UserError for a bad file); a refused file is removed.
    `status`: the tab's status line, where the sentence's error pill shows (and the toast says it once)."""
    def read(value):
        if value is not None:
            check(value)

    image.upload(ctx.handler(read), image, None, api_visibility="private", show_progress_on=[status]).failure(
        lambda: None, None, image, api_visibility="private", show_progress="hidden")
