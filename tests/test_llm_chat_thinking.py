"""Thinking models (Qwen3, SmolLM3): the switch changes the prompt, the reasoning is split from the answer while it
streams (tags arriving in parts included), it stays out of the history, and both APIs return it apart. The random
Qwen3 runs on OpenVINO GenAI here (the CPU default path), exported from its random build."""

from __future__ import annotations

import json
import threading
import time

import pytest

import demos.llm_chat as llm_chat
from demos.llm_chat import engine as L
from demos.llm_chat.messages import build_messages
from demos.llm_chat.openai import parse_openai_request
from demos.llm_chat.thinking import Split, split
from hub.errors import UserError
from hub.models import ModelManager
from tests import WAIT_S

REASONING, ANSWER = "Let me count: two and two.", "Four."
SCRIPT = f"<think>\n{REASONING}\n</think>\n\n{ANSWER}"


def _feed(pieces: list[str], opened: bool = False):
    """Every state of the split while `pieces` arrive one by one."""
    text, states = "", []
    for p in pieces:
        text += p
        states.append(split(text, opened))
    return states


@pytest.mark.parametrize("pieces", [
    ["<thi", "nk>\nLet me", " count: two", " and two.</th", "ink>\n\nFo", "ur."],
    ["<", "think", ">", "Let me count: two and two.", "<", "/", "think", ">", "Four."],
    ["<think>Let me count: two and two.</think>Four."],
])
def test_the_reasoning_is_split_from_the_answer_and_a_tag_in_parts_never_shows(pieces):
    states = _feed(pieces)
    for s in states:
        assert "<" not in s.answer and "<" not in s.thinking, s  # no half tag on either side, at any point
        assert REASONING.startswith(s.thinking)
    final = states[-1]
    assert (final.thinking, final.answer, final.thinking_done) == (REASONING, ANSWER, True)
    closed = ["</think>" in "".join(pieces[:i + 1]) for i in range(len(pieces))]
    assert [s.thinking_done for s in states] == closed  # "thinking" until the whole closing tag has arrived


def test_text_without_thinking_and_a_block_the_prompt_opened():
    assert split("Hello there").answer == "Hello there" and split("Hello there").thinking == ""
    states = _feed(["<", "b>bold</b> text"])  # an answer that starts with another tag: held one piece, then shown
    assert states[0].answer == "" and states[-1].answer == "<b>bold</b> text"
    assert split("<think>\n\n</think>\n\nHi") == Split("", "Hi", True)  # the empty block of Qwen3 with thinking off
    opened = _feed(["planning", " more</thi", "nk>The answer"], opened=True)
    assert [s.thinking for s in opened] == ["planning", "planning more", "planning more"]
    assert opened[-1].answer == "The answer" and not opened[0].thinking_done


@pytest.fixture(scope="module")
def qwen3(tmp_path_factory):
    from hub.settings import Settings

    s = Settings.load({}, cache_dir=str(tmp_path_factory.mktemp("cache")), offline=True, device="cpu")
    manager = ModelManager(s, {"llm_chat": (llm_chat.SPEC, llm_chat.DEMO.loader(), llm_chat.DEMO.work)})
    with manager.use("llm_chat", "tiny-random-qwen3") as lease:
        yield lease.engine


class Scripted:
    """Stands in for engine.fast: 'generates' `text` token by token through the engine's streamer, as a trained
    thinking model would (random weights never write <think>)."""

    def __init__(self, tokenizer, text: str):
        self.ids = tokenizer(text, add_special_tokens=False)["input_ids"]

    def usable(self, total_len: int) -> bool:
        return True

    def close(self) -> None:
        pass

    def submit(self, ids, params, max_new, streamer, run) -> None:
        import torch

        def work():
            streamer.put(ids.cpu())
            for token in self.ids[:max_new]:
                run.t_first = run.t_first or time.perf_counter()
                run.new_tokens += 1
                streamer.put(torch.tensor([token]))
                if run.stop.is_set():
                    break
            run.hit_eos = run.new_tokens < max_new
            streamer.end()
            run.finished.set()

        threading.Thread(target=work, daemon=True).start()


def test_a_random_qwen3_runs_on_genai_and_the_switch_changes_the_prompt(qwen3):
    assert qwen3.model is None and qwen3.weights_format.startswith("Q8_0 (OpenVINO GenAI")  # exported from Qwen3
    msgs = build_messages("Be brief.", [], "What is 2+2?")
    off = L.prepare(qwen3, msgs, L.check_params(thinking=False))
    on = L.prepare(qwen3, msgs, L.check_params(thinking=True))
    default = L.prepare(qwen3, msgs, L.check_params())
    assert off.prompt.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n") and not off.thinking
    assert on.prompt.endswith("<|im_start|>assistant\n") and on.thinking
    assert default.prompt == off.prompt  # on a CPU the default is off
    final = L.chat(qwen3, msgs, L.check_params(max_new_tokens=6, thinking=True))
    assert final.new_tokens == 6 and final.text and qwen3.last_run["thinking"]


def test_a_model_without_the_switch_says_so_and_keeps_its_prompt(engine_llama):
    msgs = build_messages("", [], "hi")
    asked = L.prepare(engine_llama, msgs, L.check_params(thinking=True))
    assert asked.prompt == L.prepare(engine_llama, msgs, L.check_params()).prompt
    assert any("no thinking switch" in n for n in asked.notes)


@pytest.fixture(scope="module")
def engine_llama(tmp_path_factory):
    from hub.settings import Settings

    s = Settings.load({}, cache_dir=str(tmp_path_factory.mktemp("cache")), offline=True, device="cpu")
    manager = ModelManager(s, {"llm_chat": (llm_chat.SPEC, llm_chat.DEMO.loader(), llm_chat.DEMO.work)})
    with manager.use("llm_chat", "tiny-random") as lease:
        yield lease.engine


def test_earlier_reasoning_is_left_out_of_the_history(qwen3):
    history = [{"role": "user", "content": "What is 2+2?"},
               {"role": "assistant", "content": "I add them.", "metadata": {"title": "💭 Thinking"}},
               {"role": "assistant", "content": "Four.\n\n<sub>⏱ 3 tokens</sub>"},
               {"role": "user", "content": "And 3+3?"},
               {"role": "assistant", "content": "<think>three and three</think>\n\nSix."}]
    msgs = build_messages("", history, "And 4+4?")
    assert [m["content"] for m in msgs if m["role"] == "assistant"] == ["Four.", "Six."]
    prompt = L.prepare(qwen3, msgs, L.check_params(thinking=True)).prompt
    assert "I add them" not in prompt and "three and three" not in prompt and "Six." in prompt


@pytest.mark.parametrize("value", ["maybe", 2, [True]])
def test_bad_thinking_values_are_refused_with_a_sentence(value):
    with pytest.raises(UserError, match=r"^Thinking must be true or false, not .*\.$"):
        L.check_params(thinking=value)
    body = {"messages": [{"role": "user", "content": "hi"}], "enable_thinking": value}
    with pytest.raises(UserError, match=r"^Thinking must be true or false"):
        parse_openai_request(json.dumps(body).encode())
    with pytest.raises(UserError, match="chat_template_kwargs' must be an object"):
        parse_openai_request(json.dumps({**body, "enable_thinking": None, "chat_template_kwargs": [1]}).encode())


def test_openai_body_reads_both_spellings_of_the_switch():
    base = {"messages": [{"role": "user", "content": "hi"}]}
    for extra, want in [({}, None), ({"enable_thinking": True}, True),
                        ({"chat_template_kwargs": {"enable_thinking": False, "other": 1}}, False)]:
        params = parse_openai_request(json.dumps({**base, **extra}).encode())[2]
        assert params.thinking is want


def test_the_stream_shows_the_reasoning_apart_and_stop_sequences_cut_only_the_answer(qwen3, monkeypatch):
    monkeypatch.setattr(qwen3, "fast", Scripted(qwen3.tokenizer, SCRIPT))
    msgs = build_messages("", [], "What is 2+2?")
    chunks = list(L.stream_chat(qwen3, msgs, L.check_params(max_new_tokens=200, thinking=True)))
    assert all(not c.text for c in chunks if not c.thinking_done) and any(not c.thinking_done for c in chunks)
    assert (chunks[-1].thinking, chunks[-1].text, chunks[-1].finish_reason) == (REASONING, ANSWER, "stop")
    cut = L.chat(qwen3, msgs, L.check_params(max_new_tokens=200, thinking=True, stop=["two"]))
    assert cut.thinking == REASONING and cut.text == ANSWER  # "two" is only in the reasoning
    short = L.chat(qwen3, msgs, L.check_params(max_new_tokens=5, thinking=True))
    assert short.text == "" and any("still thinking" in n for n in short.notes)


def test_tab_api_and_openai_route_return_the_reasoning_apart(serve, monkeypatch):
    import httpx

    client = serve(("llm_chat",), models={"llm_chat": "tiny-random-qwen3"})
    args = dict(model="tiny-random-qwen3", system_prompt="", temperature=0, max_new_tokens=6, api_name="/chat")
    plain, details = client.predict(message="hi", **args)  # the random model itself, through the tab's API
    assert isinstance(plain, str) and "6 tokens" in plain and details["thinking"] is False
    with client.blocks.hub_manager.use("llm_chat", "tiny-random-qwen3") as lease:
        engine = lease.engine
    monkeypatch.setattr(engine, "fast", Scripted(engine.tokenizer, SCRIPT))
    thought, said = client.predict(message="What is 2+2?", **{**args, "max_new_tokens": 200}, thinking=True)[0]
    assert thought["metadata"]["title"] == "💭 Thinking" and thought["content"] == REASONING
    assert said["content"].startswith(ANSWER + "\n\n<sub>⏱")
    client.predict(message="And 3+3?", **args, thinking=True)  # the next turn: the answer, not the reasoning
    assert ANSWER in engine.last_run["prompt"] and "two and two" not in engine.last_run["prompt"]

    url = client.src.rstrip("/") + "/v1/chat/completions"
    body = {"model": "tiny-random-qwen3", "max_tokens": 200, "enable_thinking": True,
            "messages": [{"role": "user", "content": "What is 2+2?"}]}
    message = httpx.post(url, json=body, timeout=WAIT_S).json()["choices"][0]["message"]
    assert (message["reasoning_content"], message["content"]) == (REASONING, ANSWER)
    with httpx.stream("POST", url, json={**body, "stream": True}, timeout=WAIT_S) as r:
        chunks = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: {")]
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert "".join(d.get("reasoning_content", "") for d in deltas) == REASONING
    assert "".join(d.get("content", "") for d in deltas) == ANSWER
    first_answer = next(i for i, d in enumerate(deltas) if d.get("content"))
    assert not any(d.get("reasoning_content") for d in deltas[first_answer:])  # reasoning first, then the answer


@pytest.mark.parametrize("model_id, kind, params", [("Qwen/Qwen3-0.6B", "Qwen3ForCausalLM", 596_049_920),
                                                    ("Qwen/Qwen3-1.7B", "Qwen3ForCausalLM", 1_720_574_976),
                                                    ("HuggingFaceTB/SmolLM3-3B", "SmolLM3ForCausalLM", 3_075_098_624)])
def test_random_builds_are_the_real_architectures_and_the_listed_sizes_are_theirs(model_id, kind, params):
    """Built on the meta device (no memory): the class, the parameter count the Models tab's size comes from, the
    thinking switch of the random build's template, and SmolLM3's layers without RoPE (every fourth)."""
    import torch
    from transformers import AutoModelForCausalLM

    from demos.llm_chat.configs import model_config
    from demos.llm_chat.thinking import has_switch

    choice = llm_chat.SPEC.choice(model_id)
    config, tok = model_config(choice.options["config"])
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    assert type(model).__name__ == kind and sum(p.numel() for p in model.parameters()) == params
    assert abs(choice.bytes_at("bfloat16") - 2 * params) < 0.02 * 2 * params and choice.license == "Apache-2.0"
    assert choice.options["thinking"] and has_switch(tok) and len(choice.revision) == 40
    if kind == "SmolLM3ForCausalLM":
        assert [i for i, rope in enumerate(config.no_rope_layers) if not rope] == list(range(3, 36, 4))
