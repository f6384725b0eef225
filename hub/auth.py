"""Hub login for HTTP routes outside gradio's own (the OpenAI-compatible `/v1` API, `/metrics`).

With hub users (`--auth` / `DEMOHUB_AUTH`) or API keys (`DEMOHUB_API_KEYS`) set, such a route needs one of:
`Authorization: Bearer <API key>` (what OpenAI clients send as their api_key), `Bearer USER:PASSWORD` or HTTP Basic
of a hub user, or the login cookie the web page got from gradio's own /login. With neither set, the routes are open
as the UI is (a hub only this machine can reach, by default).
"""

from __future__ import annotations

import base64
import hmac

from hub.settings import Settings


def credentials_ok(settings: Settings, user: str, password: str) -> bool:
    """Constant-time check of one USER:PASSWORD against the hub's login list."""
    ok = False
    for u, p in settings.auth:
        ok |= hmac.compare_digest(u.encode(), user.encode()) & hmac.compare_digest(p.encode(), password.encode())
    return ok


def key_ok(settings: Settings, key: str) -> bool:
    """Constant-time check of an API key."""
    ok = False
    for k in settings.api_keys:
        ok |= hmac.compare_digest(k.encode(), key.encode())
    return ok


def authorized(settings: Settings, request, app=None) -> bool:
    """True when hub login is off, or `request` (a starlette Request) carries valid hub credentials."""
    if not settings.auth and not settings.api_keys:
        return True
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            value = base64.b64decode(value, validate=True).decode()
        except ValueError:
            return False
    if scheme.lower() == "bearer" and key_ok(settings, value.strip()):
        return True
    if scheme.lower() in ("basic", "bearer"):
        user, sep, password = value.strip().partition(":")
        return bool(sep) and credentials_ok(settings, user, password)
    return _gradio_session(request, app)


def _gradio_session(request, app) -> bool:
    """A browser that logged in through gradio's page carries its access-token cookie; gradio knows the token."""
    tokens = getattr(app, "tokens", None) if app is not None else None
    if not tokens:
        return False
    for name, value in request.cookies.items():
        if name.startswith("access-token") and value in tokens:
            return True
    return False


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def is_operator(settings: Settings, request) -> bool:
    """Whether the person behind `request` (a gr.Request or starlette Request) may do operator actions (unload
    models, see library versions and server paths): a hub user listed in DEMOHUB_OPERATORS, or, except behind a
    share link (its tunnel arrives from loopback too), whoever connects from this machine (the `demohub` CLI, the
    operator's own browser). A hub without login that only this machine can reach is all operator."""
    user = getattr(request, "username", None)
    if user and user in settings.operators:
        return True
    if settings.share:
        return False
    client = getattr(request, "client", None)
    host = getattr(client, "host", None) or (client[0] if isinstance(client, (tuple, list)) and client else None)
    return host in LOOPBACK or host == "::ffff:127.0.0.1"
