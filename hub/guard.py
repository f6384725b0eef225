"""Guards around gradio's own routes, installed by `hub.app.launch` (issues #21, #33).

- Pages: gradio embeds the whole API description (every endpoint, its parameters and model lists) in every HTML
  page it serves (`/`, `/gradio_api/runs`, ...), to anyone, logged in or not. A visitor who has not logged in gets
  each page without it.
- Wrong passwords and keys: one `Throttle` for every credential check (gradio's /login and /login/, and the hub's
  routes' Bearer keys and USER:PASSWORD), keyed by client address and the user name tried: after `FREE_FAILURES`
  failures within `WINDOW_S` that pair waits (doubling, at most `MAX_WAIT_S`). The address is the connection's, or
  the one a trusted proxy forwarded (hub.hosts); a header a client makes up changes nothing.
- The login cookie: gradio sets it `SameSite=None` (sent with requests other websites make); the hub makes it
  `SameSite=Lax` unless the operator embeds the hub in other sites (`DEMOHUB_EMBED`).
- Uploads: one cap per request (all files together, `max_upload_mb`), checked from Content-Length and while the
  body streams in; files of uploads cut off mid-way (gradio leaves them in its upload folder) are swept once stale.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from pathlib import Path

from hub.auth import authorized, claimed_user
from hub.settings import Settings

log = logging.getLogger("demohub")

FREE_FAILURES = 5
WINDOW_S = 300.0
MAX_WAIT_S = 300.0
MAX_KEYS = 50_000  # (address, user) pairs remembered; beyond it the oldest go first
MAX_LOGIN_BODY = 16 * 1024  # a login form is a user name and a password
STALE_UPLOAD_S = 300.0  # a partial upload file nothing has written to for this long is abandoned


class Throttle:
    """Failed logins per (client address, user name tried); `wait(addr, user)` is how long that pair must wait now
    (0: go ahead). A user name of '' stands for API keys and credentials without a name."""

    def __init__(self, free: int = FREE_FAILURES, window: float = WINDOW_S, max_wait: float = MAX_WAIT_S):
        self.free, self.window, self.max_wait = free, window, max_wait
        self._fails: dict[tuple[str, str], deque] = {}
        self._lock = threading.Lock()

    def wait(self, addr: str, user: str = "", now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            fails = self._recent(_key(addr, user), now)
            if len(fails) < self.free:
                return 0.0
            delay = min(self.max_wait, 2.0 ** (len(fails) - self.free))
            return max(0.0, fails[-1] + delay - now)

    def failed(self, addr: str, user: str = "", now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            key = _key(addr, user)
            self._fails.setdefault(key, deque()).append(now)
            while len(self._fails) > MAX_KEYS:
                self._fails.pop(next(iter(self._fails)))

    def succeeded(self, addr: str, user: str = "") -> None:
        with self._lock:
            self._fails.pop(_key(addr, user), None)

    def _recent(self, key: tuple[str, str], now: float) -> deque:
        fails = self._fails.get(key, deque())
        while fails and now - fails[0] > self.window:
            fails.popleft()
        if not fails:
            self._fails.pop(key, None)
        return fails


def _key(addr: str, user: str) -> tuple[str, str]:
    return addr, (user or "").strip()[:128]


def client_addr(scope_or_request) -> str:
    """The client's address: the connection's, or the one a trusted proxy forwarded (hub.hosts rewrote it)."""
    client = scope_or_request.get("client") if isinstance(scope_or_request, dict) else scope_or_request.client
    return client[0] if client else "unknown"


def throttle_of(app) -> Throttle | None:
    return getattr(getattr(app, "state", None), "hub_throttle", None)


def too_many(wait: float) -> tuple[int, dict, str]:
    seconds = max(1, round(wait))
    return 429, {"Retry-After": str(seconds)}, (f"Too many failed logins from your address; try again in "
                                                f"{seconds} s.")


LOG_IN = ("Log in: send Authorization: Bearer with an API key of this hub (DEMOHUB_API_KEYS) or USER:PASSWORD of a "
          "hub user.")


def login_refusal(settings: Settings, request, app) -> tuple[int, dict, str] | None:
    """The one credential check of the hub's own routes (`/v1/*`, `/metrics`): None when `request` may go on (hub
    login off, or valid credentials); else (status, headers, sentence): 429 while its address and the user it names
    wait out earlier failures (the right password included), 401 for missing or wrong credentials (counted)."""
    if not settings.auth and not settings.api_keys:
        return None
    throttle, addr, user = throttle_of(app), client_addr(request), claimed_user(request)
    if throttle is not None and (wait := throttle.wait(addr, user)):
        log.warning("Credentials from %s refused for %.0f s after repeated failures", addr, wait)
        return too_many(wait)
    if authorized(settings, request, app):
        return None
    if throttle is not None and request.headers.get("authorization"):
        throttle.failed(addr, user)
    return 401, {}, LOG_IN


def install(app, settings: Settings) -> None:
    """Put the guards in front of the running `app` (gradio's FastAPI app): one ASGI layer around its middleware
    stack, so they hold whatever FastAPI version routes the requests."""
    app.state.hub_throttle = Throttle()
    pages = _pages_without_api_info(settings, app) if settings.auth else None
    login = _throttled_login(app.state.hub_throttle, settings)
    upload = _capped_upload(settings.max_upload_mb * 1024 * 1024, app)
    inner = app.middleware_stack or app.build_middleware_stack()

    async def guarded(scope, receive, send):
        if scope["type"] == "http":
            path, method = scope.get("path", ""), scope.get("method", "")
            if path.rstrip("/") == "/login" and method == "POST":
                return await login(inner, scope, receive, send)
            if path in ("/upload", "/gradio_api/upload") and method == "POST":
                return await upload(inner, scope, receive, send)
            if method in ("GET", "HEAD") and pages is not None:
                return await pages(inner, scope, receive, send)
        return await inner(scope, receive, send)

    app.middleware_stack = guarded


def _pages_without_api_info(settings: Settings, app):
    """Every HTML page (gradio serves the API description in `/`, `/gradio_api/runs`, each page of a multi-page app)
    without the API description, for a visitor who has not logged in; other answers pass untouched."""
    from starlette.requests import Request

    async def guarded(inner, scope, receive, send):
        if authorized(settings, Request(scope), app):
            return await inner(scope, receive, send)
        start, chunks = {}, []

        async def capture(message):
            if message["type"] == "http.response.start":
                if not _is_html(message):
                    start["passed"] = True
                    return await send(message)
                start.update(message)
            elif message["type"] == "http.response.body" and start.get("passed"):
                return await send(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            else:
                return await send(message)

        await inner(scope, receive, capture)
        if start.get("passed") or not start:
            return
        body = strip_api_info(_decoded(b"".join(chunks), _header(start, b"content-encoding")))
        headers = [(k, v) for k, v in start.get("headers", [])
                   if k.lower() not in (b"content-length", b"content-encoding")]
        await send({**start, "headers": headers + [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body if scope.get("method") != "HEAD" else b""})
    return guarded


def _header(message, name: bytes) -> str:
    return next((v.decode("latin-1").strip().lower() for k, v in message.get("headers", []) if k.lower() == name), "")


def _is_html(message) -> bool:
    return _header(message, b"content-type").startswith("text/html")


def _decoded(body: bytes, encoding: str) -> bytes:
    """The page as gradio's compression layer sent it (br or gzip, whatever the client asked for), decoded."""
    if encoding == "br":
        import brotli

        return brotli.decompress(body)
    if encoding == "gzip":
        import gzip

        return gzip.decompress(body)
    return body


MARK = b"gradio_api_info = "


def strip_api_info(html: bytes) -> bytes:
    """The page with `gradio_api_info = {...}` replaced by an empty description."""
    at = html.find(MARK)
    if at < 0:
        return html
    text = html[at + len(MARK):].decode("utf-8", errors="replace")
    try:
        _, end = json.JSONDecoder().raw_decode(text)
    except ValueError:
        return html
    rest = text[end:].encode("utf-8")
    return html[:at + len(MARK)] + b'{"named_endpoints": {}, "unnamed_endpoints": {}}' + rest


def _throttled_login(throttle: Throttle, settings: Settings):
    """gradio's /login (and /login/): refused while the (address, user) pair waits; the cookie it sets made
    SameSite=Lax unless the hub is embedded."""
    from starlette.responses import PlainTextResponse

    async def guarded(inner, scope, receive, send):
        body = await _read_capped(receive, MAX_LOGIN_BODY)
        if body is None:
            return await PlainTextResponse("A login form is a user name and a password; this one is too large.",
                                           413)(scope, receive, send)
        addr, user = client_addr(scope), await _form_user(scope, body)
        if wait := throttle.wait(addr, user):
            status, headers, text = too_many(wait)
            log.warning("Login from %s refused for %.0f s after repeated wrong passwords", addr, wait)
            return await PlainTextResponse(text, status, headers=headers)(scope, receive, send)
        status, sent = {}, [False]

        async def replay():
            if not sent[0]:
                sent[0] = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def watch(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                if not settings.embed:
                    message = {**message, "headers": [(k, _lax(v) if k.lower() == b"set-cookie" else v)
                                                      for k, v in message.get("headers", [])]}
            await send(message)

        await inner(scope, replay, watch)
        if status.get("code", 500) >= 400:
            throttle.failed(addr, user)
        else:
            throttle.succeeded(addr, user)
    return guarded


def _lax(cookie: bytes) -> bytes:
    """A Set-Cookie value with SameSite=None made SameSite=Lax: not sent with other websites' requests."""
    parts = [p.strip() for p in cookie.split(b";")]
    parts = [b"SameSite=Lax" if p.lower() == b"samesite=none" else p for p in parts]
    return b"; ".join(parts)


async def _read_capped(receive, cap: int) -> bytes | None:
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return body
        body += message.get("body", b"")
        if len(body) > cap:
            return None
        if not message.get("more_body", False):
            return body


async def _form_user(scope, body: bytes) -> str:
    """The user name of a login form (urlencoded or multipart, as gradio's page sends it); '' if none."""
    from starlette.requests import Request

    async def once():
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(dict(scope), once).form(max_files=0, max_fields=20)
        user = form.get("username")
        return user.strip() if isinstance(user, str) else ""
    except Exception:  # a malformed form: gradio answers it; the address is throttled all the same
        return ""


def _capped_upload(cap: int, app):
    """Gradio's upload route with one cap per request. Over the cap, or cut off by the client, the body stream
    raises gradio's own MultiPartException, so its parser deletes the files it had started (and answers 413/400)."""
    from gradio.route_utils import MultiPartException
    from starlette.responses import PlainTextResponse

    async def guarded(inner, scope, receive, send):
        sweep_partial_uploads(getattr(app, "uploaded_file_dir", None))
        said = (f"The upload is over this hub's maximum allowed size of {cap / 2**20:g} MB per request (all files "
                "together); send smaller or fewer files.")
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > cap:
            return await PlainTextResponse(said, 413)(scope, receive, send)
        seen, ended = [0], [False]

        async def counted():
            message = await receive()
            if message["type"] == "http.disconnect" and not ended[0]:
                raise MultiPartException("The upload was cut off before it ended.")
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                ended[0] = not message.get("more_body", False)
                if seen[0] > cap:
                    raise MultiPartException(said)
            return message

        await inner(scope, counted, send)
    return guarded


def sweep_partial_uploads(folder, stale_s: float = STALE_UPLOAD_S) -> int:
    """Remove gradio's temporary upload files (top level of its upload folder) nothing has written to for
    `stale_s` seconds: a finished upload is moved into a hashed sub-folder at once, so these are cut-off uploads."""
    if not folder:
        return 0
    removed, now = 0, time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for e in entries:
        try:
            if e.is_file(follow_symlinks=False) and e.name.startswith("tmp") and now - e.stat().st_mtime > stale_s:
                Path(e.path).unlink()
                removed += 1
        except OSError:
            continue
    if removed:
        log.info("Removed %d abandoned partial upload(s)", removed)
    return removed
