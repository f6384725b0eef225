"""hub.auth: the one login check for HTTP routes outside gradio (OpenAI API, ...), the same users as the page."""

from __future__ import annotations

import base64
from dataclasses import replace
from types import SimpleNamespace as NS

from hub.auth import authorized


def request(headers=None, cookies=None):
    return NS(headers=headers or {}, cookies=cookies or {})


def test_routes_are_open_without_hub_login(settings):
    assert authorized(settings, request())


def test_bearer_basic_and_gradio_login_cookie(settings):
    s = replace(settings, auth=(("alice", "pw:with:colons"), ("bob", "x")))
    basic = base64.b64encode(b"alice:pw:with:colons").decode()
    assert authorized(s, request({"authorization": "Bearer alice:pw:with:colons"}))
    assert authorized(s, request({"authorization": f"Basic {basic}"}))
    assert authorized(s, request({"authorization": "bearer bob:x"}))
    for bad in ("Bearer alice:wrong", "Bearer alice", "Bearer :", "Basic !!notbase64", "Token alice:pw", "",
                f"Basic {base64.b64encode(b'mallory:x').decode()}"):
        assert not authorized(s, request({"authorization": bad})), bad
    app = NS(tokens={"tok123": "alice"})
    assert authorized(s, request(cookies={"access-token-unsecure": "tok123"}), app)
    assert not authorized(s, request(cookies={"access-token": "forged"}), app)
    assert not authorized(s, request(cookies={"access-token": "tok123"}), None)


def test_api_keys_open_the_routes_and_close_them_to_everyone_else(settings):
    s = replace(settings, api_keys=("sk-local-1",))
    assert authorized(s, request({"authorization": "Bearer sk-local-1"}))
    assert not authorized(s, request({"authorization": "Bearer sk-local-2"}))
    assert not authorized(s, request())  # keys set: never open, even without hub users
    both = replace(s, auth=(("alice", "pw"),))
    assert authorized(both, request({"authorization": "Bearer alice:pw"}))
    assert authorized(both, request({"authorization": "Bearer sk-local-1"}))


def test_the_user_a_request_names_is_what_the_login_throttle_counts(settings):
    from hub.auth import claimed_user

    basic = base64.b64encode(b"alice:pw:with:colons").decode()
    assert claimed_user(request({"authorization": f"Basic {basic}"})) == "alice"
    assert claimed_user(request({"authorization": "Bearer bob:guess"})) == "bob"
    for anonymous in ("Bearer sk-some-key", "Basic !!notbase64", "Token carol:x", ""):
        assert claimed_user(request({"authorization": anonymous})) == "", anonymous  # keys: the address alone
