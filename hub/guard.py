"""Guards around gradio's own routes, installed by `hub.app.launch` (issue #21).

- The login page: gradio embeds the whole API description (every endpoint, its parameters and model lists) in the
  HTML it serves to anyone, logged in or not. A visitor who has not logged in gets the page without it.
- Wrong passwords: after `FREE_FAILURES` failed logins from one address within `WINDOW_S`, that address waits
  (doubling, at most `MAX_WAIT_S`) before it may try again, on gradio's /login and on the hub's /v1 routes alike.
- Uploads: one cap per request (all files together, `max_upload_mb`), checked from Content-Length and while the
  body streams in; files of uploads cut off mid-way (gradio leaves them in its upload folder) are swept once stale.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import defaultdict, deque
from pathlib import Path

from hub.auth import authorized
from hub.settings import Settings

log = logging.getLogger("demohub")

FREE_FAILURES = 5
WINDOW_S = 300.0
MAX_WAIT_S = 300.0
STALE_UPLOAD_S = 300.0  # a partial upload file nothing has written to for this long is abandoned


class Throttle:
    """Failed logins per client address; `wait(addr)` is how long that address must wait now (0: go ahead)."""

    def __init__(self, free: int = FREE_FAILURES, window: float = WINDOW_S, max_wait: float = MAX_WAIT_S):
        self.free, self.window, self.max_wait = free, window, max_wait
        self._fails: dict[str, deque] = defaultdict(deque)
        self._lock = threading.Lock()

    def wait(self, addr: str, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            fails = self._recent(addr, now)
            if len(fails) < self.free:
                return 0.0
            delay = min(self.max_wait, 2.0 ** (len(fails) - self.free))
            return max(0.0, fails[-1] + delay - now)

    def failed(self, addr: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._recent(addr, now).append(now)

    def succeeded(self, addr: str) -> None:
        with self._lock:
            self._fails.pop(addr, None)

    def _recent(self, addr: str, now: float) -> deque:
        fails = self._fails[addr]
        while fails and now - fails[0] > self.window:
            fails.popleft()
        return fails


def client_addr(scope_or_request) -> str:
    client = scope_or_request.get("client") if isinstance(scope_or_request, dict) else scope_or_request.client
    return client[0] if client else "unknown"


def throttle_of(app) -> Throttle | None:
    return getattr(getattr(app, "state", None), "hub_throttle", None)


def too_many(wait: float) -> tuple[int, dict, str]:
    seconds = max(1, round(wait))
    return 429, {"Retry-After": str(seconds)}, (f"Too many failed logins from your address; try again in "
                                                f"{seconds} s.")


def install(app, settings: Settings) -> None:
    """Put the guards in front of the running `app` (gradio's FastAPI app): one ASGI layer around its middleware
    stack, so they hold whatever FastAPI version routes the requests."""
    app.state.hub_throttle = Throttle()
    login_page = _login_page(settings, app) if settings.auth else None
    login = _throttled_login(app.state.hub_throttle)
    upload = _capped_upload(settings.max_upload_mb * 1024 * 1024, app)
    inner = app.middleware_stack or app.build_middleware_stack()

    async def guarded(scope, receive, send):
        if scope["type"] == "http":
            path, method = scope.get("path", ""), scope.get("method", "")
            if path == "/" and method in ("GET", "HEAD") and login_page is not None:
                return await login_page(inner, scope, receive, send)
            if path == "/login" and method == "POST":
                return await login(inner, scope, receive, send)
            if path in ("/upload", "/gradio_api/upload") and method == "POST":
                return await upload(inner, scope, receive, send)
        return await inner(scope, receive, send)

    app.middleware_stack = guarded


def _login_page(settings: Settings, app):
    from starlette.requests import Request

    async def guarded(inner, scope, receive, send):
        if authorized(settings, Request(scope), app):
            return await inner(scope, receive, send)
        start, chunks = {}, []

        async def capture(message):
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await inner(scope, receive, capture)
        body = strip_api_info(b"".join(chunks))
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        await send({**start, "headers": headers + [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
    return guarded


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


def _throttled_login(throttle: Throttle):
    from starlette.responses import PlainTextResponse

    async def guarded(inner, scope, receive, send):
        addr = client_addr(scope)
        if wait := throttle.wait(addr):
            status, headers, text = too_many(wait)
            log.warning("Login from %s refused for %.0f s after repeated wrong passwords", addr, wait)
            return await PlainTextResponse(text, status, headers=headers)(scope, receive, send)
        status = {}

        async def watch(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        await inner(scope, receive, watch)
        if status.get("code", 500) >= 400:
            throttle.failed(addr)
        else:
            throttle.succeeded(addr)
    return guarded


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
