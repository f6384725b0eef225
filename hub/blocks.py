"""`HubBlocks`: gr.Blocks whose input-reading failures reach the user as a sentence, not as a crash.

Gradio decodes uploads (images, audio, numbers) before an event function runs; a corrupt file or a wrong type sent
through the API fails there, outside any demo code, with a message about "input component at index 3". This
turns those failures into `gr.Error` naming the input and what to send instead, for every tab at once.
"""

from __future__ import annotations

import logging
import math
import re

import gradio as gr
from gradio.exceptions import ComponentProcessingError

log = logging.getLogger("demohub")

HINTS = {
    "image": "Upload a PNG, JPEG or WebP image (not an empty, truncated or enormous file).",
    "imageeditor": "Upload a PNG, JPEG or WebP image (not an empty, truncated or enormous file).",
    "gallery": "Upload PNG, JPEG or WebP images.",
    "audio": "Upload an audio file (wav, mp3, flac, ogg, m4a) or record from the microphone.",
    "video": "Upload a video file (mp4, webm, mov).",
    "number": "Send a number.",
    "slider": "Send a number within the slider's range.",
    "checkbox": "Send true or false.",
    "file": "Upload a file.",
}


class HubBlocks(gr.Blocks):
    async def call_function(self, block_fn, *args, **kwargs):
        """Name the event being served for the request metrics (hub.metrics.CURRENT_API); worker threads and
        generator steps inherit it."""
        from hub.metrics import CURRENT_API

        fn = self.fns[block_fn] if isinstance(block_fn, int) else block_fn
        token = CURRENT_API.set(getattr(fn, "api_name", None) or getattr(fn, "name", None))
        try:
            return await super().call_function(block_fn, *args, **kwargs)
        finally:
            CURRENT_API.reset(token)

    async def preprocess_data(self, block_fn, inputs, state, explicit_call: bool = False):
        check_sliders(block_fn.inputs, inputs)
        try:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        except ComponentProcessingError as e:
            raise _friendly(block_fn, e) from None


def check_sliders(blocks, values) -> None:
    """Out-of-range, NaN or non-numeric slider values sent through the API: a sentence naming the setting."""
    for block, value in zip(blocks, values):
        if not isinstance(block, gr.Slider) or value is None:
            continue
        label = block.label or "slider"
        lo, hi = block.minimum, block.maximum
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise gr.Error(f"{label} must be a number from {lo} to {hi}, not {str(value)[:40]!r}.", print_exception=False)
        if math.isnan(value) or not lo <= value <= hi:
            raise gr.Error(f"{label} must be from {lo} to {hi}; {value} is out of range.", print_exception=False)


def _friendly(block_fn, e: ComponentProcessingError) -> gr.Error:
    cause = e.__cause__
    m = re.search(r"at index (\d+)", str(e))
    block = block_fn.inputs[int(m.group(1))] if m and int(m.group(1)) < len(block_fn.inputs) else None
    kind = block.get_block_name() if block is not None else "input"
    label = getattr(block, "label", None) or kind
    reason = f"{type(cause).__name__}: {str(cause)[:200]}" if cause else str(e)[:200]
    reason = re.sub(r"(/[^\s'\"]+/)([^/\s'\"]+)", r"\2", reason)  # server paths: keep the file name only
    log.info("Rejected input for %s (%s): %s", label, block_fn.name, reason)
    return gr.Error(f"Could not read the {label!s} input ({reason}). {HINTS.get(kind, 'Check the value you sent.')}",
                    print_exception=False)
