"""The chat tab's API as a client uses it: streamed answers, history per session (two visitors), Cancel mid-answer
(held by a gate so it lands mid-answer on any machine) and the validators' sentences."""

from __future__ import annotations

import time

import pytest

from tests import WAIT_S
from tests.browser import gated_chat
from tests.test_llm_chat import _hub_engine, _wait_idle


def test_chat_api_streams_keeps_per_session_history_and_stops(serve):
    from gradio_client import Client

    a = serve(("llm_chat",), models={"llm_chat": "tiny-random"})
    args = ("tiny-random", "You are terse.", 0.7, 0.9, 50)
    job = a.submit("first question", *args, 30, 1.0, api_name="/chat")
    outputs = [o for o in job]
    answer, details = job.result()
    assert len(outputs) >= 2 and "30 tokens" in answer and "tokens/s" in answer
    assert details["new_tokens"] == 30 and details["warning"].startswith("random weights")
    engine = _hub_engine(a)
    a.predict("second question", *args, 5, 1.0, api_name="/chat")
    assert "first question" in engine.last_run["prompt"] and "second question" in engine.last_run["prompt"]
    assert "tokens/s" not in engine.last_run["prompt"]

    b = Client(a.src, verbose=False)  # another visitor: a new session with its own history
    b.predict("other visitor", *args, 5, 1.0, api_name="/chat")
    assert "other visitor" in engine.last_run["prompt"] and "first question" not in engine.last_run["prompt"]

    # a gate holds the answer after a few tokens until Cancel was pressed: the tiny model would otherwise write all
    # 500 tokens before a busy machine delivers the Cancel (the test is about Stop, not about speed). It holds
    # whichever decoder runs (OpenVINO GenAI on a CPU by default).
    with gated_chat(engine, after=5) as gate:
        job = a.submit("a long one", *args, 500, 1.0, api_name="/chat")
        end = time.monotonic() + WAIT_S  # generous caps: the conditions are the assertion, not the machine's speed
        while not job.outputs() and time.monotonic() < end:
            time.sleep(0.02)
        job.cancel()
        while not job.done() and time.monotonic() < end:  # the Cancel has reached the hub
            time.sleep(0.05)
        gate.set()
        while "a long one" not in engine.last_run.get("prompt", "") and time.monotonic() < end:
            time.sleep(0.05)
    assert _wait_idle(engine, 120) and a.blocks.hub_manager.status()[0]["in_use"] == 0  # the run is over: read it
    assert engine.last_run["ended_early"] and engine.last_run["new_tokens"] < 500, engine.last_run

    with pytest.raises(Exception, match="Temperature is -1, which is out of range; use a number from 0 to 2"):
        a.predict("hi", "tiny-random", "", -1.0, 0.9, 50, 5, 1.0, api_name="/chat")
    with pytest.raises(Exception, match="Type a message"):
        a.predict("", *args, 5, 1.0, api_name="/chat")
    assert "tokens/s" in a.predict("still serving", *args, 5, 1.0, api_name="/chat")[0]
