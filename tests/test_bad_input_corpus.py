"""Issue 10's corpus: every malformed input ends as a sentence (gr.Error / HTTP 4xx), and the tab keeps working."""

from __future__ import annotations

import json
import logging
import re
import urllib.error
import urllib.request

import pytest

from tests import WAIT_S
from tests.bad_inputs import corpus, make_files, valid as valid_requests



@pytest.fixture(scope="module")
def hub(tiny_hub):
    from gradio_client import handle_file

    files = make_files(tiny_hub.tmp / "files")
    yield tiny_hub, files, (lambda name: handle_file(files[name]))


_IDS = [item[0] for item in corpus(lambda name: name)]


def test_the_corpus_is_large_and_covers_every_tab():
    assert len(_IDS) >= 60 and len(set(_IDS)) == len(_IDS)
    assert {i.split("-")[0] for i in _IDS} >= {"sd", "asr", "det", "vid", "clip", "sam", "chat"}


def is_sentence(message: str) -> bool:
    words = re.findall(r"[A-Za-z']+", message)
    return len(words) >= 4 and "Traceback" not in message and not re.match(r"^\w+Error\b", message)


def uncaught(stderr: str) -> list[str]:
    """Exceptions that ended a traceback on the server, other than gr.Error (which gradio prints for its own checks)."""
    # pytest closes captured streams between tests; a server thread's log handler then reports "--- Logging
    # error ---" (ValueError: I/O operation on closed file). That is the test harness, not the server.
    stderr = re.sub(r"--- Logging error ---.*?Arguments: .*?\n", "", stderr, flags=re.S)
    ends = re.findall(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)\b)", stderr, flags=re.M)
    return [e for e in ends if e not in ("gradio.exceptions.Error", "gradio.exceptions.InvalidPathError")]


@pytest.mark.parametrize("case_id", _IDS)
def test_bad_input_gets_a_sentence_and_the_tab_keeps_working(hub, case_id, caplog, capfd):
    client, files, F = hub
    (item,) = [c for c in corpus(F) if c[0] == case_id]
    _, api, args, expect = item
    caplog.set_level(logging.ERROR)
    if expect == "error":
        with pytest.raises(Exception) as e:
            client.predict(*args, api_name=api)
        message = str(e.value)
        assert is_sentence(message), f"{case_id}: not a sentence: {message!r}"
    else:
        client.predict(*args, api_name=api)
    assert "Unexpected error" not in caplog.text, caplog.text[-3000:]
    crashes = uncaught(capfd.readouterr().err)
    assert not crashes, f"{case_id}: the server raised {crashes}"
    client.predict(*valid_requests(F)[api], api_name=api)  # the next valid request succeeds


OPENAI_BAD = [
    ("not-json", b"{this is not json", 400),
    ("no-messages", json.dumps({"model": "tiny-random"}).encode(), 400),
    ("messages-not-list", json.dumps({"messages": "hi"}).encode(), 400),
    ("empty-messages", json.dumps({"messages": []}).encode(), 400),
    ("bad-role", json.dumps({"messages": [{"role": "wizard", "content": "hi"}]}).encode(), 400),
    ("content-not-string", json.dumps({"messages": [{"role": "user", "content": {"x": 1}}]}).encode(), 400),
    ("temperature-text", json.dumps({"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}).encode(), 400),
    ("max-tokens-negative", json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": -5}).encode(), 400),
    ("unknown-model", json.dumps({"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]}).encode(), 400),
]


@pytest.mark.parametrize("case_id,body,status", OPENAI_BAD, ids=[c[0] for c in OPENAI_BAD])
def test_openai_endpoint_answers_bad_requests_with_4xx_and_a_sentence(hub, case_id, body, status):
    client, _, _ = hub
    url = client.src.rstrip("/") + "/v1/chat/completions"
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=WAIT_S)
    assert 400 <= e.value.code < 500
    payload = json.loads(e.value.read())
    message = payload["error"]["message"] if isinstance(payload.get("error"), dict) else str(payload)
    assert is_sentence(message), message
    ok = urllib.request.Request(url, data=json.dumps({"model": "tiny-random", "max_tokens": 4,
                                                      "messages": [{"role": "user", "content": "hi"}]}).encode(),
                                headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(ok, timeout=WAIT_S) as r:
        assert r.status == 200 and json.loads(r.read())["choices"][0]["message"]["role"] == "assistant"
