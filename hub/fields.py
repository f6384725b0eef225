"""Number fields with one policy for bad values (see hub/validate.py): refuse with one sentence, never clamp.

The bounds live on the component; `hub.blocks.check_sliders` refuses a value outside them (or a fraction in a
whole-number field) with the one validator's sentence naming the field, the same sentence an API caller gets, before
gradio's own toast or its rounding could answer. A slider sends what is typed into its number box as typed (gradio's
page clamps it on leaving the box, 500 steps silently became 150: hub/page.py's script stops that for `SLIDER`s), so
the browser gets the sentence too. The info text states the range. UI only: imported by `ui.py`.
"""

from __future__ import annotations

import gradio as gr

from hub.validate import plain_number

SLIDER = "hub-slider"  # elem_classes of a slider whose typed value is sent as typed (hub/page.py)


def _range(lo, hi, integer: bool) -> str:
    kind = "whole number" if integer else "number"
    return f"a {kind} from {plain_number(lo)} to {plain_number(hi)}"


def _info(info: str, text: str) -> str:
    return f"{info} ({text})" if info else text[:1].upper() + text[1:]


def number(label: str, lo: float, hi: float, value=None, *, integer: bool = True, info: str = "", **kw) -> gr.Number:
    """A number box for [lo, hi]; its info states the range."""
    return gr.Number(value, label=label, info=_info(info, _range(lo, hi, integer)), minimum=lo, maximum=hi,
                     precision=0 if integer else None, **kw)


def slider(label: str, lo: float, hi: float, value, step: float, *, info: str = "", **kw) -> gr.Slider:
    """A slider over [lo, hi]; its info states the range (for API callers, who may send any value)."""
    whole = float(step).is_integer() and float(lo).is_integer()
    classes = [SLIDER, *_classes(kw.pop("elem_classes", None))]
    return gr.Slider(lo, hi, value, step=step, label=label, info=_info(info, _range(lo, hi, whole)),
                     elem_classes=classes, **kw)


def _classes(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])
