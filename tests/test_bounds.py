"""Every bounded field of every API at its declared bounds (issue #22): min and max are served, one step beyond
either is refused with the sentence that states the field's range; and the engine behind the tab refuses the same
values on its own (the path /v1 and scripts take), so a slider and its engine's validator cannot drift apart.

The bounds come from the components themselves (the slider's or number box's minimum, maximum and step), not from
this file: a change to a field's range is tested as it is.
"""

from __future__ import annotations

import gradio as gr
import pytest

from hub.validate import plain_number
from tests.test_contract import EXAMPLE_IDS, EXAMPLES


# Where an engine deliberately takes more than its tab offers (OpenAI-style callers of /v1 send these), its range is
# written here by hand, as the independent truth its validator is held to: (API, parameter) -> (min, max or None).
ENGINE_WIDER = {
    ("chat", "top_p"): (0, 1),  # above 0
    ("chat", "top_k"): (0, 100_000),
    ("chat", "max_new_tokens"): (1, None),  # more than the model has room for is lowered, with a note
    ("chat", "repetition_penalty"): (0, 3),  # above 0
}


def _bounded(client, ex) -> list[tuple[str, object]]:
    """(parameter name, component) of each bounded number input of the example's API, in the API's order."""
    fn = next(f for f in client.blocks.fns.values() if f.api_name == ex.api_name)
    inputs = [c for c in fn.inputs if not isinstance(c, gr.State)]
    assert len(inputs) == len(ex.args), f"{ex.api_name}: the example names {list(ex.args)}"
    return [(name, c) for name, c in zip(ex.args, inputs)
            if isinstance(c, (gr.Slider, gr.Number)) and c.minimum is not None and c.maximum is not None]


def _step(c) -> float:
    step = c.step if isinstance(c, gr.Slider) else (1 if c.precision == 0 else (c.step or 0.01))
    return step


def _refusal(client, args, api: str) -> str:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as e:
        client.predict(*args, api_name=api)
    return str(e.value)


def _outcome(client, args, api: str) -> str | None:
    """None when the call is served, else the refusal's text."""
    from gradio_client.exceptions import AppError

    try:
        client.predict(*args, api_name=api)
    except AppError as e:
        return str(e)
    return None


# A bound served with the example's other values, except where those make the tiny random model's work large for a
# reason the bound does not test. Segment everything at 128 points per side: with random weights all 16,384 points'
# masks pass the example's 0 thresholds, and each of their 49,152 full-size masks was encoded and painted (100 s of a
# CI run); at an IoU threshold of 1 every point still runs through the model and the filter.
AT_MAX_WITH = {("segment_everything", "points_per_side"): {"iou_threshold": 1.0}}


@pytest.mark.parametrize(("demo", "ex"), EXAMPLES, ids=EXAMPLE_IDS)
def test_each_field_serves_its_bounds_and_refuses_one_step_beyond(tiny_hub, demo, ex, monkeypatch):
    import hub.blocks
    from hub.samples import fill, make_samples
    from gradio_client import handle_file

    fields = _bounded(tiny_hub, ex)
    if not fields:
        pytest.skip(f"{ex.api_name} has no bounded number field")
    paths = make_samples(tiny_hub.tmp / "media")

    def args(**over):
        return fill(ex.values(**over), paths, handle_file)

    for name, c in fields:
        lo, hi, step = c.minimum, c.maximum, _step(c)
        tiny_hub.predict(*args(**{name: lo}), api_name=f"/{ex.api_name}")  # served, not refused
        at_max = {**AT_MAX_WITH.get((ex.api_name, name), {}), name: hi}
        tiny_hub.predict(*args(**at_max), api_name=f"/{ex.api_name}")
        for bad in (lo - step, hi + step):
            said = _refusal(tiny_hub, args(**{name: bad}), f"/{ex.api_name}")
            assert f"is {plain_number(bad)}, which is out of range" in said, (name, said)
            assert f"from {plain_number(lo)} to {plain_number(hi)}" in said, (name, said)
            assert said.count("out of range") == 1 and "Error" not in said, said  # once, no class name

    # the engine's own check, without the tab's or gradio's: the same values are refused there too, with the
    # validator's sentence naming the value and the range's far end
    monkeypatch.setattr(hub.blocks, "check_sliders", lambda blocks, values: None)
    for kind in (gr.Slider, gr.Number):
        monkeypatch.setattr(kind, "preprocess", lambda self, payload: payload)
    for name, c in fields:
        lo, hi = ENGINE_WIDER.get((ex.api_name, name), (c.minimum, c.maximum))
        step = _step(c)
        for bad, end in ((lo - step, hi if hi is not None else lo), (hi + step if hi is not None else None, hi)):
            if bad is None:
                continue
            said = _refusal(tiny_hub, args(**{name: bad}), f"/{ex.api_name}")
            assert f"is {plain_number(bad)}, which is out of range" in said, (name, bad, said)
            assert plain_number(end) in said.split("out of range")[1], (name, bad, said)


def _choices(client, ex) -> list[tuple[str, object]]:
    """(parameter name, component) of each radio or single-choice dropdown input of the example's API."""
    from hub.blocks import _fixed_choices

    fn = next(f for f in client.blocks.fns.values() if f.api_name == ex.api_name)
    inputs = [c for c in fn.inputs if not isinstance(c, gr.State)]
    return [(name, c) for name, c in zip(ex.args, inputs) if _fixed_choices(c)]


@pytest.mark.parametrize(("demo", "ex"), EXAMPLES, ids=EXAMPLE_IDS)
def test_each_choice_field_refuses_a_value_outside_its_choices_in_one_sentence(tiny_hub, demo, ex):
    """Gradio's own refusal of a radio value was "Value: 'vae' (type: <class 'str'>) is not in the list of
    choices": a Python class name. Every radio and dropdown of every API now answers with the validator's sentence
    naming the field and its choices, and serves each of its choices."""
    from hub.samples import fill, make_samples
    from gradio_client import handle_file

    fields = _choices(tiny_hub, ex)
    if not fields:
        pytest.skip(f"{ex.api_name} has no choice field")
    paths = make_samples(tiny_hub.tmp / "media")
    for name, c in fields:
        values = [v for _, v in c.choices]
        said = _refusal(tiny_hub, fill(ex.values(**{name: "not-a-choice"}), paths, handle_file), f"/{ex.api_name}")
        assert "'not-a-choice' is not one of the choices; use one of: " in said, (name, said)
        assert values[0] in said and "class" not in said and "Error" not in said, said
        # every choice is accepted by the field; a model may still refuse one it cannot run (Stable Diffusion's
        # FlowMatch Euler is Z-Image's scheduler), with its own sentence: at least one choice must be served
        served = []
        for value in reversed(values):
            said = _outcome(tiny_hub, fill(ex.values(**{name: value}), paths, handle_file), f"/{ex.api_name}")
            if said is None:
                served.append(value)
                break
            assert "is not one of the choices" not in said and "class" not in said, (name, value, said)
        assert served, f"{ex.api_name}: no choice of {name} was served"
