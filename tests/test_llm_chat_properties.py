"""Property-based tests (hypothesis) for the llm_chat validators: a value that keeps its invariant, or a UserError sentence."""

from __future__ import annotations

import json

from hypothesis import assume, example, given, strategies as st
from tests.properties import DEEP_JSON, FAST, HUGE_INT, QUICK, one_bad, outcome, overflows, small_ints


from demos.llm_chat import engine as llm  # noqa: E402
from demos.llm_chat.messages import build_messages  # noqa: E402
from demos.llm_chat.openai import parse_openai_request  # noqa: E402


# ---- llm_chat ----------------------------------------------------------------------------------------------------


def check_gen_params(g: llm.GenParams) -> None:
    assert 0 <= g.temperature <= 2 and 0 < g.top_p <= 1 and 0 < g.repetition_penalty <= 3
    assert isinstance(g.top_k, int) and 0 <= g.top_k <= 100_000
    assert isinstance(g.max_new_tokens, int) and g.max_new_tokens >= 1
    assert g.seed is None or (isinstance(g.seed, int) and 0 <= g.seed < 2**63)
    assert len(g.stop) <= 4 and all(isinstance(s, str) and s for s in g.stop)


stops = st.one_of(st.none(), st.text(max_size=5), st.lists(st.one_of(st.text(max_size=4), small_ints, st.none()),
                                                           max_size=6))


LLM_VALID = {"temperature": st.one_of(st.none(), st.floats(0, 2)),
             "top_p": st.one_of(st.none(), st.floats(0, 1, exclude_min=True)),
             "top_k": st.one_of(st.none(), st.integers(0, 100_000), st.just(40.0)),
             "max_new_tokens": st.one_of(st.none(), st.integers(1, 10**6), st.just(64.0)),
             "repetition_penalty": st.one_of(st.none(), st.floats(0, 3, exclude_min=True)),
             "seed": st.one_of(st.none(), st.integers(0, 2**63 - 1))}


@FAST
@given(kw=one_bad(LLM_VALID), stop=stops)
def test_llm_check_params_in_range(kw, stop):
    temperature, top_p, top_k, max_new_tokens, repetition_penalty, seed = (kw[k] for k in (
        "temperature", "top_p", "top_k", "max_new_tokens", "repetition_penalty", "seed"))
    assume(not any(map(overflows, (temperature, top_p, top_k, max_new_tokens, repetition_penalty, seed))))
    ok, g = outcome(llm.check_params, temperature, top_p, top_k, max_new_tokens, repetition_penalty, seed, stop)
    if ok:
        check_gen_params(g)


text_part = st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=10)})
content = st.one_of(st.text(max_size=20), text_part, st.lists(st.one_of(text_part, st.fixed_dictionaries(
    {"type": st.just("image_url"), "image_url": st.just({"url": "x"})})), max_size=3), st.none(), small_ints)
role = st.sampled_from(["system", "developer", "user", "assistant", "tool", "", "USER"])
message = st.one_of(st.fixed_dictionaries({"role": role, "content": content}), st.text(max_size=3), st.none())
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-10**15, 10**15), st.floats(allow_nan=False),
                        st.text(max_size=6))
json_value = st.recursive(json_scalar, lambda c: st.one_of(st.lists(c, max_size=3),
                                                           st.dictionaries(st.text(max_size=4), c, max_size=3)),
                          max_leaves=6)
request = st.fixed_dictionaries(
    {"messages": st.one_of(st.lists(message, max_size=4), json_value)},
    optional={"model": json_scalar, "temperature": json_scalar, "top_p": json_scalar, "top_k": json_scalar,
              "max_tokens": json_scalar, "max_completion_tokens": json_scalar, "repetition_penalty": json_scalar,
              "seed": json_scalar, "n": json_scalar, "stream": json_value,
              "stop": st.one_of(st.none(), st.text(max_size=4), st.lists(st.text(max_size=3), max_size=6)),
              "stream_options": st.one_of(st.none(), json_scalar, st.dictionaries(st.sampled_from(["include_usage", "x"]),
                                                                      json_scalar, max_size=2))})


good_messages = st.tuples(
    st.lists(st.fixed_dictionaries({"role": st.sampled_from(["system", "developer", "user", "assistant"]),
                                    "content": st.one_of(st.text(max_size=10), text_part)}), max_size=3),
    st.fixed_dictionaries({"role": st.just("user"), "content": st.one_of(
        st.text(min_size=1, max_size=10), st.lists(text_part, min_size=1, max_size=2))})).map(lambda t: t[0] + [t[1]])
good_request = one_bad({"messages": good_messages, "temperature": st.floats(0, 2), "top_p": st.floats(0.01, 1),
                        "max_tokens": st.integers(1, 4096), "seed": st.integers(0, 2**40), "n": st.just(1),
                        "stream": st.booleans(), "model": st.one_of(st.none(), st.text(max_size=8)),
                        "stream_options": st.one_of(st.none(), st.just({"include_usage": True}))},
                       st.one_of(json_scalar.filter(lambda v: not overflows(v)), st.lists(json_scalar, max_size=2)))


@FAST
@given(body=st.one_of(good_request.map(lambda r: json.dumps(r).encode()), request.map(lambda r: json.dumps(r).encode()), json_value.map(lambda v: json.dumps(v).encode()),
                      st.binary(max_size=12), st.text(max_size=12).map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_llm_parse_openai_request(body):
    ok, r = outcome(parse_openai_request, body)
    if ok:
        model, msgs, params, stream, include_usage = r
        assert model is None or isinstance(model, str)
        assert msgs and all(m["role"] in ("system", "user", "assistant") and isinstance(m["content"], str)
                            for m in msgs)
        assert msgs[-1]["role"] == "user" and msgs[-1]["content"].strip()
        assert all(m["role"] != "system" for m in msgs[1:]), "one system message, first"
        assert stream in (True, False) and include_usage in (True, False)
        check_gen_params(params)


history_item = st.one_of(st.fixed_dictionaries({"role": role, "content": content},
                                               optional={"metadata": st.one_of(st.none(), st.fixed_dictionaries(
                                                   {"title": st.text(max_size=3)}))}),
                         st.text(max_size=3), st.none())


@FAST
@given(system=st.one_of(st.none(), st.text(max_size=20)), history=st.one_of(st.none(), st.lists(history_item, max_size=4)),
       msg=st.one_of(st.text(max_size=30), st.binary(max_size=10), st.none(), small_ints,
                     st.sampled_from(["\ud800", "a\x00b", "\x00", "  ", "\u200b"])))
def test_llm_build_messages_plain_text_for_the_tokenizer(system, history, msg):
    ok, msgs = outcome(build_messages, system, history, msg)
    if ok:
        assert msgs[-1]["role"] == "user" and msgs[-1]["content"].strip()
        for m in msgs:
            assert isinstance(m["content"], str) and "\x00" not in m["content"]
            m["content"].encode("utf-8")  # no lone surrogates left
            assert m["role"] in ("system", "user", "assistant")


@QUICK
@example(body=b'{"messages": [{"role": "user", "content": "hi"}], "top_k": 1' + b"0" * 400 + b"}")
@given(body=st.sampled_from(["temperature", "top_p", "top_k", "max_tokens", "seed"]).map(
    lambda k: json.dumps({"messages": [{"role": "user", "content": "hi"}], k: HUGE_INT}).encode()))
def test_llm_openai_ints_beyond_float_range(body):
    outcome(parse_openai_request, body)


@QUICK
@example(opts="x")
@given(opts=st.one_of(st.text(min_size=1, max_size=3), st.just(True), st.integers(1, 9), st.just([1])))
def test_llm_openai_stream_options_not_an_object(opts):
    outcome(parse_openai_request,
            json.dumps({"messages": [{"role": "user", "content": "hi"}], "stream_options": opts}).encode())


@QUICK
@example(body=json.dumps({"messages": [{"role": "system", "content": {"type": "text", "text": 5}},
                                       {"role": "user", "content": "hi"}]}).encode())
@given(body=st.sampled_from([
    json.dumps({"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}).encode(),
    json.dumps({"messages": [{"role": "system", "content": {"type": "text", "text": [1]}},
                             {"role": "user", "content": "hi"}]}).encode()]))
def test_llm_openai_non_string_text_part(body):
    outcome(parse_openai_request, body)


@QUICK
@example(stop=5)
@given(stop=st.one_of(st.integers(0, 9), st.floats(0.5, 9), st.just(True)))
def test_llm_stop_not_a_list(stop):
    outcome(parse_openai_request,
            json.dumps({"messages": [{"role": "user", "content": "hi"}], "stop": stop}).encode())


@QUICK
@example(body=DEEP_JSON.encode())
@given(body=st.integers(min_value=50_000, max_value=200_000).map(lambda n: b"[" * n))
def test_llm_openai_deeply_nested_body(body):
    outcome(parse_openai_request, body)


@QUICK
@example(meta="x")
@given(meta=st.one_of(st.text(min_size=1, max_size=3), st.integers(1, 9), st.just([1])))
def test_llm_history_metadata_not_a_dict(meta):
    outcome(build_messages, None, [{"role": "user", "content": "a", "metadata": meta}], "hi")
