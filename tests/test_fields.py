"""hub.fields: a number box or slider carries the bounds it is given and states them in its info text, in the words
the validator's refusal uses (so the range a person reads is the range that is checked)."""

from __future__ import annotations

import gradio as gr

from hub import fields


def test_a_whole_number_box_keeps_its_bounds_value_label_and_states_the_range():
    box = fields.number("Seed", -1, 4294967295, 7, elem_id="seed-box")
    assert isinstance(box, gr.Number) and (box.minimum, box.maximum, box.value) == (-1, 4294967295, 7)
    assert box.label == "Seed" and box.precision == 0 and box.elem_id == "seed-box"
    assert box.info == "A whole number from -1 to 4294967295"


def test_a_fractional_number_box_has_no_precision_and_adds_the_range_to_its_info():
    box = fields.number("Confidence", 0, 1, 0.25, integer=False, info="boxes below this are dropped")
    assert box.precision is None and box.value == 0.25 and (box.minimum, box.maximum) == (0, 1)
    assert box.info == "boxes below this are dropped (a number from 0 to 1)"


def test_a_slider_is_whole_only_when_its_step_and_start_are():
    steps = fields.slider("Steps", 1, 150, 20, 1, info="denoising steps")
    assert (steps.minimum, steps.maximum, steps.value, steps.step, steps.label) == (1, 150, 20, 1, "Steps")
    assert steps.info == "denoising steps (a whole number from 1 to 150)"
    scale = fields.slider("Guidance", 0, 30, 7.5, 0.5, elem_id="guidance")
    assert scale.info == "A number from 0 to 30" and (scale.value, scale.step, scale.elem_id) == (7.5, 0.5, "guidance")
    strength = fields.slider("Strength", 0.05, 1, 0.5, 1, render=False)
    assert strength.info == "A number from 0.05 to 1" and not strength.is_rendered
    big = fields.number("Min area", 0, 50_000_000)
    assert big.info == "A whole number from 0 to 50000000" and big.value is None
