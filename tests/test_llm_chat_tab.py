"""The LLM chat tab through gradio_client: its API's parameters (names, labels, descriptions, optional ones), the
loading line and the first-token time of a first answer, the empty-message checks. The browser side is in
tests/test_browser_llm_chat.py."""

from __future__ import annotations

import time

import pytest

PARAMETERS = ["message", "model", "system_prompt", "temperature", "top_p", "top_k", "max_new_tokens",
              "repetition_penalty", "thinking"]


@pytest.fixture(scope="module")
def chat_hub(tmp_path_factory):
    """A hub with only the chat, on its tiny random model, not loaded yet."""
    from dataclasses import replace

    from gradio_client import Client

    from hub.app import create_app, launch
    from hub.settings import Settings
    from tests.conftest import free_port

    s = Settings.load({}, cache_dir=str(tmp_path_factory.mktemp("cache")), offline=True, device="cpu",
                      port=free_port())
    s = replace(s, models={"llm_chat": "tiny-random"})
    blocks = create_app(s, ("llm_chat",))
    launch(blocks, s, prevent_thread_lock=True, quiet=True)
    client = Client(f"http://127.0.0.1:{s.port}/", verbose=False)
    client.blocks = blocks
    yield client
    blocks.close()


def test_the_first_answer_says_the_model_is_loading_and_times_the_first_token_from_the_send(chat_hub):
    """Issue 16 point 2: a first answer waited behind "*Loading…*" with no size, and its footer said "first token
    0.17 s" after a 35 s load. Now the first item names the model and its size, and the first token counts from the
    send, the load included, with the load's share said."""
    assert not chat_hub.blocks.hub_manager.is_loaded("llm_chat", "tiny-random")
    job = chat_hub.submit("Hello", max_new_tokens=6, api_name="/chat")
    outputs = list(job)
    answer, details = job.result()
    assert outputs[0][0].startswith("Loading tiny random Llama (tests) (1 MB): the first request waits for it"), outputs[0]
    assert "6 tokens" in answer and "of it loading the model)" in answer, answer
    assert details["first_token_s"] >= details["loading_s"] > 0, details
    start = time.perf_counter()
    again, details = chat_hub.predict("Hello again", max_new_tokens=6, api_name="/chat")  # loaded: no loading line
    took = time.perf_counter() - start  # the whole call as the client saw it: the first token came within it
    assert "loading" not in again.lower() and "loading_s" not in details and 0 < details["first_token_s"] <= took


def test_the_chat_api_names_and_describes_its_parameters(chat_hub):
    """Issue 16 point 8: the message was an unnamed Textbox on the API page, the model `model_id` and the system
    prompt `system`. Plain names, every one labelled and described; all but the message optional."""
    info = chat_hub.view_api(return_format="dict", print_info=False)["named_endpoints"]["/chat"]
    params = info["parameters"]
    assert [p["parameter_name"] for p in params] == PARAMETERS
    assert [p["label"] for p in params] == ["Message", "Model", "System prompt", "Temperature", "Top-p", "Top-k",
                                            "Max new tokens", "Repetition penalty", "Thinking"]
    assert [p["parameter_has_default"] for p in params] == [False] + [True] * 8
    assert info["description"].startswith("Chat with a small instruction-tuned model")

    from gradio import utils

    fn = next(f for f in chat_hub.blocks.fns.values() if f.api_name == "chat")
    _, described, _ = utils.get_function_description(fn.fn)  # the docstring's Args, what gradio reads
    assert set(PARAMETERS) <= set(described) and all(len(described[p]) > 15 for p in PARAMETERS)
    answer, details = chat_hub.predict(message="Hi", model="tiny-random", system_prompt="Be brief.", temperature=0,
                                       max_new_tokens=3, api_name="/chat")
    assert "3 tokens" in answer and details["temperature"] == 0


def test_an_empty_message_is_one_sentence_in_the_tab_and_through_the_api(chat_hub, monkeypatch):
    """The tab's submit validator and its toast, and the API's refusal, say the same sentence; the tab's is an info
    notice, not an error (issue #36 point 10: nothing went wrong)."""
    import gradio as gr

    from demos.llm_chat.ui import refuse_empty, say_if_empty

    said = []
    monkeypatch.setattr(gr, "Info", said.append)
    for blank in ("", "   ", "\n\t ", None):
        assert refuse_empty(blank) == gr.validate(False, "Type a message first.")
        assert say_if_empty(blank) is None and said.pop() == "Type a message first."
    assert refuse_empty(" hi ")["is_valid"] and say_if_empty(" hi ") is None and not said
    for blank in ("", "   "):
        with pytest.raises(Exception, match="Type a message first."):
            chat_hub.predict(blank, api_name="/chat")


def test_the_tab_takes_its_concurrency_from_the_backend(settings, monkeypatch):
    """The chat's events run as many answers at once as the backend says (ctx.concurrency: replicas on Ray), not the
    spec's own number."""
    import gradio as gr

    import demos.llm_chat as llm_chat
    from demos.llm_chat.ui import build
    from hub.context import DemoContext
    from hub.models import ModelManager

    manager = ModelManager(settings, {"llm_chat": (llm_chat.SPEC, llm_chat.DEMO.loader(), llm_chat.DEMO.work)})
    monkeypatch.setattr(manager, "concurrency", lambda demo: 3)
    with gr.Blocks() as blocks:
        build(DemoContext(manager, settings, llm_chat.SPEC))
    fn = next(f for f in blocks.fns.values() if f.api_name == "chat")
    assert fn.concurrency_limit == 3 != llm_chat.SPEC.gpu_concurrency
