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
    scheme, value = _credentials(request)
    if scheme == "bearer" and key_ok(settings, value):
        return True
    if scheme in ("basic", "bearer"):
        user, sep, password = value.partition(":")
        return bool(sep) and credentials_ok(settings, user, password)
    if scheme == "invalid":
        return False
    return _gradio_session(request, app)


def claimed_user(request) -> str:
    """The user name `request`'s Authorization header names (Basic, or Bearer USER:PASSWORD); '' for an API key or
    none: what the login throttle counts failures under, with the address."""
    scheme, value = _credentials(request)
    user, sep, _ = value.partition(":")
    return user if scheme in ("basic", "bearer") and sep else ""


def _credentials(request) -> tuple[str, str]:
    """(scheme in lower case, value) of the Authorization header; Basic decoded; ('', '') without one."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme == "basic":
        try:
            value = base64.b64decode(value, validate=True).decode()
        except ValueError:
            return "invalid", ""
    return scheme, value


def _gradio_session(request, app) -> bool:
    """A browser that logged in through gradio's page carries its access-token cookie; gradio knows the token."""
    tokens = getattr(app, "tokens", None) if app is not None else None
    if not tokens:
        return False
    for name, value in request.cookies.items():
        if name.startswith("access-token") and value in tokens:
            return True
    return False


def is_operator(settings: Settings, request) -> bool:
    """Whether the person behind `request` (a gr.Request or starlette Request) may do operator actions (unload
    models, see library versions and server paths): a hub user listed in DEMOHUB_OPERATORS, or, except behind a
    share link (its tunnel arrives from loopback too), whoever connects from this machine (the `demohub` CLI, the
    operator's own browser). A hub without login that only this machine can reach is all operator.

    "From this machine" is a loopback connection that names a loopback Host (a page that rebinds its own name to
    127.0.0.1 names its own) and carries no forwarding header (a proxy on this machine forwards other people, trusted
    or not: through a proxy only DEMOHUB_OPERATORS users are operators)."""
    from hub.hosts import LOOPBACK_NAMES, forwarded, hostname, is_loopback

    user = getattr(request, "username", None)
    if user and user in settings.operators:
        return True
    if settings.share:
        return False
    client = getattr(request, "client", None)
    host = getattr(client, "host", None) or (client[0] if isinstance(client, (tuple, list)) and client else None)
    headers = getattr(request, "headers", None) or {}
    named = headers.get("host")
    return (is_loopback(host) and not forwarded(request)
            and (named is None or hostname(named) in LOOPBACK_NAMES))
