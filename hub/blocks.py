"""`HubBlocks`: gr.Blocks whose input-reading failures reach the user as a sentence, not as a crash.

Gradio decodes uploads (images, audio, numbers) before an event function runs; a corrupt file or a wrong type sent
through the API fails there, outside any demo code, with a message about "input component at index 3". This
turns those failures into `gr.Error` naming the input and what to send instead, for every tab at once.
"""

from __future__ import annotations

import logging
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
    def __exit__(self, *args, **kwargs):
        """Every gr.Tabs wraps its tab bar: on a phone each tab shows (gradio's default hides all but a few behind
        a "⋯" menu)."""
        for block in self.blocks.values():
            if isinstance(block, gr.Tabs):
                block.overflow_behavior = "wrap"
        return super().__exit__(*args, **kwargs)

    def launch(self, *args, **kwargs):
        """gradio's launch with the hub's page style and Ctrl+Enter script (hub/page.py) unless given others."""
        from hub import page

        kwargs.setdefault("css", page.CSS)
        kwargs.setdefault("js", page.JS)
        return super().launch(*args, **kwargs)

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
        try:
            check_sliders(block_fn.inputs, inputs)
            try:
                return await super().preprocess_data(block_fn, inputs, state, explicit_call)
            except ComponentProcessingError as e:
                raise _friendly(block_fn, e) from None
        except gr.Error:
            self._count_refused(block_fn)
            raise

    def _count_refused(self, block_fn) -> None:
        """A request refused while reading its inputs counts as the demo's user_error in /metrics, as one its
        engine refuses does."""
        metrics, api = getattr(self, "hub_metrics", None), getattr(block_fn, "api_name", None)
        demo = next((h.name for h in getattr(self, "hub_demos", ()) if api in getattr(h.spec, "api_names", ())), None)
        if metrics is not None and demo is not None:
            metrics.request(demo, api, "user_error", 0.0)


def check_sliders(blocks, values) -> None:
    """Sliders and bounded number boxes: an out-of-range, fractional (for a whole-number field), NaN or non-numeric
    value is refused with the one validator's sentence naming the field (hub/validate.py), before gradio's own
    check ("Value 1e+08 is greater than maximum value 2048.") or its rounding could answer. Radios and dropdowns:
    a value outside their choices gets the validator's sentence too, not gradio's ("Value: 'x' (type: <class
    'str'>) is not in the list of choices")."""
    from hub import validate
    from hub.errors import UserError

    for block, value in zip(blocks, values):
        if value is not None and _fixed_choices(block):  # radios and dropdowns: gradio's refusal names a type
            try:
                validate.choice(value, _name(block), [v for _, v in block.choices])
            except UserError as e:
                raise gr.Error(str(e), print_exception=False) from None
            continue
        if value is None or not isinstance(block, (gr.Slider, gr.Number)):
            continue
        if isinstance(block, gr.Number) and block.minimum is None and block.maximum is None \
                and block.precision is None:
            continue
        try:
            validate.number(value, _name(block), block.minimum, block.maximum, integer=_whole(block))
        except UserError as e:
            raise gr.Error(str(e), print_exception=False) from None


def _fixed_choices(block) -> bool:
    """A radio or a single-choice dropdown that takes only its listed string values."""
    if isinstance(block, gr.Dropdown):
        return not block.multiselect and not block.allow_custom_value and block.type == "value" and \
            all(isinstance(v, str) for _, v in block.choices)
    return isinstance(block, gr.Radio) and block.type == "value" and all(isinstance(v, str) for _, v in block.choices)


def _name(block) -> str:
    label = re.sub(r"\s*\(.*\)\s*$", "", block.label or "")  # "Seed (-1 = random)" -> "Seed"
    return label or block.get_block_name()


def _whole(block) -> bool:
    if isinstance(block, gr.Slider):
        return float(block.step).is_integer() and float(block.minimum).is_integer()
    return block.precision == 0


def _friendly(block_fn, e: ComponentProcessingError) -> gr.Error:
    cause = e.__cause__
    m = re.search(r"at index (\d+)", str(e))
    block = block_fn.inputs[int(m.group(1))] if m and int(m.group(1)) < len(block_fn.inputs) else None
    kind = block.get_block_name() if block is not None else "input"
    label = getattr(block, "label", None) or kind
    reason = str(cause or e).splitlines()[0][:200] if str(cause or e) else "unreadable"  # no class names
    reason = re.sub(r"(/[^\s'\"]+/)([^/\s'\"]+)", r"\2", reason)  # server paths: keep the file name only
    log.info("Rejected input for %s (%s): %s", label, block_fn.name, reason)
    return gr.Error(f"Could not read the {label!s} input ({reason}). {HINTS.get(kind, 'Check the value you sent.')}",
                    print_exception=False)
