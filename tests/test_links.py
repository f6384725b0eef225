"""Tabs that work together (hub.links): a published part gets a working send button; a missing, dropped or absent
target tab leaves the button hidden and wires nothing; in the hub, "Send to SD tab" and SD's Describe show only
with the tabs they need, and the Speech-to-notes tab gives its place to the Whisper tab's Notes. The send
functions' values are checked against the files they came from (the browser test clicks them:
tests/test_browser_links.py)."""

from __future__ import annotations

from dataclasses import replace

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from hub.errors import UserError
from hub.links import Links


def _hub_of_two(target_publishes: bool = True, send_to: str = "b.prompt", fn=None):
    """Tab "a" sends to tab "b" (built after it, as Edit by object is built after SD... and vice versa)."""
    with gr.Blocks() as blocks:
        with gr.Tabs() as tabs:
            links = Links(tabs)
            with gr.Tab("A", id="a") as tab_a:
                links.tab("a", tab_a)
                text = gr.Textbox("a cat on a sofa")
                button = gr.Button("Send")
                send = links.send("a", button, fn or (lambda t: {"b.prompt": t}), [text], (send_to,))
            with gr.Tab("B", id="b") as tab_b:
                links.tab("b", tab_b)
                prompt = gr.Textbox(label="Prompt")
                if target_publishes:
                    links.publish("b", "prompt", prompt)
        links.finish()
    return blocks, links, send, button, tabs, prompt


def _events_of(blocks, button) -> list:
    return [fn for fn in blocks.fns.values() if any(t[0] == button._id for t in fn.targets)]


def test_a_published_part_gets_a_send_that_fills_it_and_switches_to_its_tab():
    blocks, links, send, button, tabs, prompt = _hub_of_two()
    assert send.wired and button.visible
    (event,) = _events_of(blocks, button)
    assert [o._id for o in event.outputs] == [tabs._id, prompt._id]
    assert event.api_visibility == "private"
    switch, value = event.fn("a cat on a sofa")
    assert switch == gr.update(selected="b") and value == "a cat on a sofa"


def test_a_target_that_was_not_published_leaves_the_button_hidden_and_unwired():
    blocks, _, send, button, _, _ = _hub_of_two(target_publishes=False)
    assert not send.wired and not button.visible and not _events_of(blocks, button)
    blocks, _, send, button, _, _ = _hub_of_two(send_to="stable_diffusion.prompt")  # a tab this hub lacks
    assert not send.wired and not button.visible and not _events_of(blocks, button)


def test_a_tab_that_failed_to_build_offers_nothing_and_a_tab_alone_sends_nowhere():
    with gr.Blocks():
        with gr.Tabs() as tabs:
            links = Links(tabs)
            with gr.Tab("A", id="a") as tab_a:
                links.tab("a", tab_a)
                button = gr.Button("Send")
                send = links.send("a", button, lambda: {}, [], ("b.prompt",))
            with gr.Tab("B", id="b") as tab_b:
                links.tab("b", tab_b)
                links.publish("b", "prompt", gr.Textbox())
                links.drop("b")  # hub/app.py, when b's ui() raised
        links.finish()
    assert not send.wired and not button.visible
    with gr.Blocks():
        alone = Links()  # a DemoContext outside the hub shell
        alone.publish("b", "prompt", gr.Textbox())
        button = gr.Button("Send")
        send = alone.send("a", button, lambda: {}, [], ("b.prompt",))
        alone.finish()
    assert not send.wired and not button.visible


def test_a_send_that_cannot_go_says_one_sentence():
    def refuse(text):
        raise UserError("Describe the picture first; then send its prompt to the SD tab.")
    blocks, _, _, button, _, _ = _hub_of_two(fn=refuse)
    (event,) = _events_of(blocks, button)
    with pytest.raises(gr.Error) as e:
        event.fn("")
    assert e.value.message == "Describe the picture first; then send its prompt to the SD tab."


def _app(settings, demos):
    from hub.app import create_app

    return create_app(replace(settings, models={d: "tiny-random" for d in demos}), demos)


def _button(blocks, label):
    found = [b for b in blocks.blocks.values() if isinstance(b, gr.Button) and b.value == label]
    return found[0] if found else None


def _tab(blocks, demo):
    return next(b for b in blocks.blocks.values() if isinstance(b, gr.Tab) and b.id == demo)


def test_in_the_hub_sends_and_describe_show_only_with_the_tabs_they_need(settings):
    without_sd = _app(settings, ("edit_object", "vision"))
    assert not _button(without_sd, "Send to SD tab: inpaint with this mask").visible
    assert _button(without_sd, "Describe this image") is None  # SD's Describe lives in the SD tab
    with_sd = _app(settings, ("stable_diffusion", "edit_object", "vision"))
    assert _button(with_sd, "Send to SD tab: inpaint with this mask").visible
    assert _events_of(with_sd, _button(with_sd, "Send to SD tab as the prompt"))  # wired; shown for "SD prompt"
    assert _button(with_sd, "Describe this image") is not None
    sd_alone = _app(settings, ("stable_diffusion",))
    assert _button(sd_alone, "Describe this image") is None  # no vision demo: no Describe


def test_a_target_tab_that_fails_to_build_hides_the_sends_to_it(settings, monkeypatch):
    from demos.stable_diffusion import ui_links

    def broken(vision, c):
        raise RuntimeError("the Describe row could not be built")
    monkeypatch.setattr(ui_links, "describe", broken)  # after SD published its parts
    blocks = _app(settings, ("stable_diffusion", "edit_object", "vision"))
    assert not _button(blocks, "Send to SD tab: inpaint with this mask").visible
    assert not _events_of(blocks, _button(blocks, "Send to SD tab as the prompt"))


def test_the_speech_to_notes_tab_gives_its_place_to_the_whisper_tabs_notes(settings):
    full = _app(settings, ("whisper_asr", "llm_chat", "speech_notes"))
    assert not _tab(full, "speech_notes").visible and _button(full, "Write notes") is not None
    apis = {fn.api_name for fn in full.fns.values() if fn.api_visibility == "public"}
    assert {"summarize_audio", "transcribe"} <= apis  # the API stays
    no_chat = _app(settings, ("whisper_asr", "speech_notes"))  # the Whisper tab cannot write notes: the tab stays
    assert _tab(no_chat, "speech_notes").visible


def test_edit_by_object_sends_the_picture_and_its_mask_to_sds_inpaint(tmp_path):
    from demos.edit_object.flow import REMOVE_PROMPT
    from demos.edit_object.ui import to_sd_inpaint

    photo, result, mask_file = tmp_path / "photo.png", tmp_path / "replaced.png", tmp_path / "mask.png"
    Image.new("RGB", (64, 48), (10, 20, 30)).save(photo)
    Image.new("RGB", (64, 48), (200, 100, 50)).save(result)
    mask = np.zeros((48, 64), np.uint8)
    mask[10:30, 20:40] = 255
    Image.fromarray(mask).save(mask_file)
    files = [str(result), str(mask_file), str(tmp_path / "record.json")]
    out = to_sd_inpaint(str(photo), str(result), files, {"action": "replace"}, "a golden retriever")
    assert np.asarray(out["stable_diffusion.editor"])[0, 0].tolist() == [200, 100, 50]  # the edited picture
    assert np.array_equal(np.asarray(Image.open(out["stable_diffusion.mask"])), mask)  # the object's own mask
    assert out["stable_diffusion.prompt"] == "a golden retriever"
    cut = to_sd_inpaint(str(photo), str(result), files, {"action": "cut out"}, "")
    assert np.asarray(cut["stable_diffusion.editor"])[0, 0].tolist() == [10, 20, 30]  # the photo, not the cut-out
    assert "stable_diffusion.prompt" not in cut  # nothing was painted: SD's prompt stays
    assert to_sd_inpaint(str(photo), str(result), files, {"action": "remove"}, "")["stable_diffusion.prompt"] == \
        REMOVE_PROMPT
    with pytest.raises(UserError, match="^Cut out, replace or remove an object first"):
        to_sd_inpaint(str(photo), None, None, None, "")
    Image.new("RGB", (32, 32)).save(photo)  # another photo since the cut-out
    with pytest.raises(UserError, match="^The photo changed"):
        to_sd_inpaint(str(photo), str(result), files, {"action": "cut out"}, "")


def test_a_send_that_opens_a_mode_clicks_that_modes_tab_after_the_values(settings):
    blocks = _app(settings, ("stable_diffusion", "edit_object"))
    inpaint = next(b for b in blocks.blocks.values() if isinstance(b, gr.Tab) and b.label == "Inpaint")
    assert inpaint.elem_id == "stable-diffusion-inpaint"  # gradio names its button "<elem_id>-button"
    (sent,) = _events_of(blocks, _button(blocks, "Send to SD tab: inpaint with this mask"))
    (click,) = [fn for fn in blocks.fns.values() if fn.trigger_after == sent._id]
    assert click.fn is None and 'getElementById("stable-diffusion-inpaint-button")?.click()' in click.js


def test_describe_picks_the_selected_image_else_the_first():
    from demos.stable_diffusion.ui_links import pick

    images = [("/tmp/a.png", None), ("/tmp/b.png", None)]
    assert pick(images, 1) == "/tmp/b.png" and pick(images, None) == "/tmp/a.png" and pick(images, 5) == "/tmp/a.png"
    with pytest.raises(UserError, match="^Generate an image first"):
        pick(None, None)


def test_the_whisper_tabs_notes_read_the_transcript_the_tab_shows():
    import pandas as pd

    from demos.whisper_asr.ui_notes import NO_TRANSCRIPT, transcript_of

    table = pd.DataFrame([[0.0, 2.5, " Hello there."], [2.5, 4.0, " Bye."]],
                         columns=["start (s)", "end (s)", "text"])
    record = {"model": "tiny.en", "detected_language": "en", "audio_seconds": 4.0, "seconds": 1.25,
              "nested": {"x": 1}}
    t, step = transcript_of(" Hello there. Bye.", table, record)
    assert [(s.start, s.end, s.text) for s in t.segments] == [(0.0, 2.5, " Hello there."), (2.5, 4.0, " Bye.")]
    assert t.language == "en" and t.duration == 4.0
    assert step.demo == "whisper_asr" and step.seconds == 1.25 and step.record["model"] == "tiny.en"
    assert "nested" not in step.record  # only the record's plain values come back from the page
    with pytest.raises(UserError, match=f"^{NO_TRANSCRIPT}$"):
        transcript_of("", pd.DataFrame([], columns=["start (s)", "end (s)", "text"]), {})
