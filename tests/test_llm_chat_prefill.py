"""LLM chat: reading a long prompt is bounded and stoppable (issue 33, item 11).

One 12-60 KB message used to fill the 8192-token CPU context; the prompt was read in one forward pass that Stop
could not end, and the next request waited minutes. Now: a per-request prompt cap (`max_prompt_tokens`) refuses an
over-long message with a sentence before the model reads any of it, the transformers paths read the prompt in chunks
with the stop flag checked between them, the CPU decoders check it before their one call, and a CPU's context
defaults to `cpu_context`. The stop tests use a counting hook on the model's forward pass, never timing."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from types import SimpleNamespace

import pytest

import demos.llm_chat as llm_chat
from demos.llm_chat import engine as L
from demos.llm_chat import prompt as P
from demos.llm_chat.messages import build_messages
from hub.errors import UserError
from hub.models import ModelManager
from hub.options import defaults, parse
from tests import TRANSFORMERS_CHAT, WAIT_S
from tests.test_llm_chat import torch_engine  # noqa: F401  (the tiny model on transformers)

LONG = "Summarize this: " + "the lighthouse keeper climbed the stairs again " * 60  # a few hundred tokens


def _counting(monkeypatch, model, stop_after: int | None = None, stop: threading.Event | None = None) -> list:
    """Counts the model's forward passes (their token counts); sets `stop` during pass number `stop_after`."""
    calls: list[int] = []
    real = model.forward

    def forward(*args, **kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        calls.append(int(ids.shape[1]))
        if stop_after is not None and len(calls) == stop_after:
            stop.set()
        return real(*args, **kwargs)

    monkeypatch.setattr(model, "forward", forward)
    return calls


def test_a_stop_while_the_prompt_is_read_ends_it_before_the_prompt_is_done(torch_engine, monkeypatch):
    monkeypatch.setattr(L, "PREFILL_CHUNK", 16)
    msgs = build_messages("", [], LONG)
    params = L.check_params(temperature=0, max_new_tokens=8)
    n = len(L.prepare(torch_engine, msgs, params).input_ids)
    assert n > 20 * 16, "the prompt must take many chunks for this test to mean anything"
    stop = threading.Event()
    calls = _counting(monkeypatch, torch_engine.model, stop_after=2, stop=stop)
    final = L.chat(torch_engine, msgs, params, stop)
    assert calls == [16, 16], "the prompt kept being read after Stop"
    assert final.finish_reason == "cancelled" and final.new_tokens == 0 and final.text == ""
    assert torch_engine.lock.acquire(timeout=WAIT_S)  # the model is free for the next request
    torch_engine.lock.release()


def test_chunked_reading_gives_the_answer_of_one_pass(torch_engine, monkeypatch):
    """The truth is plain `generate` over the whole prompt (chunking off): greedy tokens are the same."""
    msgs = build_messages("", [], LONG)
    params = L.check_params(temperature=0, repetition_penalty=1.0, max_new_tokens=12, min_new_tokens=12)
    monkeypatch.setattr(L, "PREFILL_CHUNK", 10**6)
    whole = L.chat(torch_engine, msgs, params)
    monkeypatch.setattr(L, "PREFILL_CHUNK", 16)
    calls = _counting(monkeypatch, torch_engine.model)
    chunked = L.chat(torch_engine, msgs, params)
    assert calls.count(16) >= 20, calls  # it was read in chunks
    assert chunked.text == whole.text and chunked.new_tokens == whole.new_tokens == 12


def test_a_message_over_the_prompt_cap_is_refused_before_the_model_reads_it(torch_engine, monkeypatch):
    engine = dataclasses.replace(torch_engine, max_prompt_tokens=64)
    calls = _counting(monkeypatch, engine.model)
    with pytest.raises(UserError, match=r"too long \(\d+ tokens with the system prompt\); .* at most 64 tokens of "
                                         r"prompt per request.* Shorten it"):
        L.chat(engine, build_messages("", [], "lighthouse " * 60), L.check_params(max_new_tokens=8))
    read = []
    real = P._count
    monkeypatch.setattr(P, "_count", lambda eng, text: (read.append(len(text)), real(eng, text))[1])
    with pytest.raises(UserError, match=r"too long \(2000 characters\); .* at most 64 tokens"):
        L.chat(engine, build_messages("", [], "x" * 2000), L.check_params(max_new_tokens=8))
    assert calls == [] and read == []  # a paste far over the cap costs neither a forward pass nor the tokenizer
    # a short message is answered; an old turn that does not fit the cap is left out with a note
    history = [{"role": "user", "content": LONG}, {"role": "assistant", "content": "It is long."}]
    final = L.chat(engine, build_messages("", history, "hi"), L.check_params(max_new_tokens=4))
    assert final.prompt_tokens <= 64 and any("limit of 64 prompt tokens" in n for n in final.notes), final.notes


def test_the_cuda_graph_decoder_reads_the_prompt_in_chunks_and_stops(torch_engine, monkeypatch):
    """The CUDA path's own prefill (run on CPU, the compiled step replaced by the eager one): Stop ends it within a
    chunk, and an unstopped run still answers."""
    import torch

    from demos.llm_chat.fast import GraphDecoder

    monkeypatch.setattr(torch, "compile", lambda fn, **kw: fn)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a, **k: None)
    dec = GraphDecoder(torch_engine, max_len=1024)
    try:
        assert dec.ready.wait(WAIT_S) and dec.error == "", dec.error
        torch_engine.fast = dec
        monkeypatch.setattr(L, "PREFILL_CHUNK", 16)
        msgs = build_messages("", [], LONG)
        params = L.check_params(temperature=0, max_new_tokens=8)
        stop = threading.Event()
        calls = _counting(monkeypatch, torch_engine.model, stop_after=2, stop=stop)
        stopped = L.chat(torch_engine, msgs, params, stop)
        assert calls == [16, 16] and stopped.fast_path and stopped.finish_reason == "cancelled"
        assert stopped.new_tokens == 0
        calls.clear()
        answered = L.chat(torch_engine, msgs, params)
        assert answered.fast_path and answered.new_tokens >= 1 and calls.count(16) >= 20
    finally:
        torch_engine.fast = None
        dec.close()


@pytest.mark.parametrize("path", ["ct2", "ov_genai"])
def test_a_cpu_decoder_does_not_start_a_stopped_request(path):
    """CTranslate2 and OpenVINO GenAI read a prompt in one call that cannot be interrupted: a stop that came first is
    honoured (the prompt is not read at all)."""
    from transformers import TextIteratorStreamer

    pytest.importorskip({"ct2": "ctranslate2", "ov_genai": "openvino_genai"}[path])
    from demos.llm_chat.ct2 import CT2Decoder
    from demos.llm_chat.ov_genai import GenAIDecoder

    started = []
    tok = SimpleNamespace(decode=lambda ids, **k: "")
    engine = SimpleNamespace(tokenizer=tok, eos_ids=(0,), ignore_eos=False, vocab_limit=None)
    if path == "ct2":
        generator = SimpleNamespace(generate_tokens=lambda *a, **k: started.append(1) or iter(()))
        dec = CT2Decoder(generator, engine, None, 1)
    else:
        dec = GenAIDecoder(SimpleNamespace(generate=lambda *a, **k: started.append(1)), engine)
    stop = threading.Event()
    stop.set()
    run = L.Run(stop)
    streamer = TextIteratorStreamer(tok, skip_prompt=True)
    dec._decode(SimpleNamespace(cpu=lambda: None), L.GenParams(), 8, streamer, run)
    assert started == [] and run.finished.is_set() and run.new_tokens == 0 and "".join(streamer) == ""


def test_a_cpu_reads_a_bounded_context_by_default():
    opts = defaults(llm_chat.DEMO)
    config = SimpleNamespace(max_position_embeddings=8192)
    assert L.context_for(config, "cpu", opts) == opts.cpu_context < 8192
    assert L.context_for(config, "cuda:0", opts) == 8192 == opts.context
    assert opts.max_prompt_tokens == 0  # off unless the operator sets it: only the context limits the prompt
    raised = parse(llm_chat.DEMO, {"DEMOHUB_LLM_CHAT_CPU_CONTEXT": "16384", "DEMOHUB_LLM_CHAT_MAX_PROMPT_TOKENS": "900"})
    assert L.context_for(config, "cpu", raised) == 8192 and raised.max_prompt_tokens == 900


def _route_client(settings, options: dict):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from demos.llm_chat.openai import routes
    from hub.context import DemoContext

    s = dataclasses.replace(settings, models={"llm_chat": "tiny-random"})
    loader = llm_chat.DEMO.loader(parse(llm_chat.DEMO, options))
    ctx = DemoContext(ModelManager(s, {"llm_chat": (llm_chat.SPEC, loader, llm_chat.DEMO.work)}), s, llm_chat.SPEC)
    app = FastAPI()
    app.include_router(routes(ctx))
    return TestClient(app)


def test_the_openai_route_refuses_an_over_cap_prompt_with_a_400(settings, monkeypatch):
    from demos.llm_chat import openai as O

    on_loop = []
    real = O.parse_openai_request

    def parse_request(body):
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:  # no event loop in this thread: a worker thread
            on_loop.append(False)
        return real(body)

    monkeypatch.setattr(O, "parse_openai_request", parse_request)
    client = _route_client(settings, {"DEMOHUB_LLM_CHAT_MAX_PROMPT_TOKENS": "64", **TRANSFORMERS_CHAT})
    for stream in (False, True):
        body = {"messages": [{"role": "user", "content": LONG}], "max_tokens": 4, "stream": stream}
        r = client.post("/v1/chat/completions", content=json.dumps(body), headers={"Content-Type": "application/json"})
        assert r.status_code == 400, r.text
        assert "at most 64 tokens of prompt" in r.json()["error"]["message"]
    r = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
    assert r.status_code == 200 and r.json()["usage"]["prompt_tokens"] <= 64, r.text
    assert on_loop == [False, False, False], "the request body was parsed on the event loop"
