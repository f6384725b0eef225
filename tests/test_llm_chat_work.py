"""LLM chat's work methods (engine.WORK): typed requests, deltas then the answer with usage, a stop within a
token, and every request and item crossing a process boundary."""

from __future__ import annotations

import time

import pytest

from demos.llm_chat import engine as L
from demos.llm_chat.messages import build_messages
from hub.errors import UserError
from tests.test_llm_chat import _wait_idle, engine  # noqa: F401  (the module's tiny engine fixture)


def _lease(engine):
    """What the hub hands a work method: the loaded engine, the model's public name and the record."""
    from types import SimpleNamespace

    return SimpleNamespace(engine=engine, weights=SimpleNamespace(record=lambda: {"model": "tiny-random"}),
                           record=lambda **params: {"model": "tiny-random", **params})


def test_every_request_and_item_of_the_work_survives_a_process_boundary():
    from demos.llm_chat.types import ChatDelta, ChatDone, ChatRequest, Chunk, GenParams
    from hub.work import roundtrip

    req = ChatRequest(tuple(build_messages("Be brief.", [], "Hi")), L.check_params(stop=["END"], seed=3),
                      time.time(), loading=True)
    answer = Chunk("Hello", 3, 12, 0.5, 0.2, True, "stop", ["a note"], False, "I greet.", True)
    for obj in (req, GenParams(), ChatDelta("He", "I gr", False), answer,
                ChatDone(answer, "tiny-random", {"model": "tiny-random", "new_tokens": 3}, 1.25)):
        assert roundtrip(obj) == obj


def test_the_chat_method_streams_deltas_then_the_answer_with_usage(engine):
    from demos.llm_chat.types import ChatDelta, ChatDone, ChatRequest
    from hub.work import Job

    msgs = tuple(build_messages("", [], "Tell me a story"))
    req = ChatRequest(msgs, L.check_params(seed=5, max_new_tokens=20), time.time() - 2.0, loading=True)
    items = list(L.generate(_lease(engine), req, Job()))
    deltas, done = items[:-1], items[-1]
    assert len(deltas) >= 2 and all(isinstance(d, ChatDelta) for d in deltas) and isinstance(done, ChatDone)
    assert "".join(d.content for d in deltas) == done.answer.text and done.answer.text
    assert (done.completion_tokens, done.finish_reason, done.model) == (20, "length", "tiny-random")
    assert done.prompt_tokens > 5 and done.answer.first_token_s >= done.loading_s >= 2.0
    assert done.record["new_tokens"] == 20 and done.record["loading_s"] == done.loading_s
    assert done.record["thinking"] is False and done.record["tokens_per_s"] > 0 and "text" not in done.record
    whole = L.complete(_lease(engine), ChatRequest(msgs, req.params), Job())  # the non-streaming /v1 answer
    assert whole.answer.text == done.answer.text and whole.loading_s is None and "loading_s" not in whole.record


def test_the_chat_method_ends_at_the_next_token_once_its_job_is_stopped(engine):
    from demos.llm_chat.types import ChatDone, ChatRequest
    from hub.work import Job

    job = Job()
    req = ChatRequest(tuple(build_messages("", [], "Go on")), L.check_params(max_new_tokens=500))
    items = L.generate(_lease(engine), req, job)
    next(items)
    job.stop.set()  # what closing the stream does (Stop, a closed page, a client that hung up)
    assert not any(isinstance(i, ChatDone) for i in items)
    assert _wait_idle(engine, 30) and engine.last_run["ended_early"] and engine.last_run["new_tokens"] < 500
    with pytest.raises(UserError, match="last message must be the user's"):
        next(L.generate(_lease(engine), ChatRequest(({"role": "assistant", "content": "hi"},)), Job()))
