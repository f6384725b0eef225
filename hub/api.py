"""The shared layer of the OpenAI-compatible `/v1` routes: login, errors in OpenAI's shape, the model field,
request bodies, and the one way a route calls a model.

A demo's `openai.py` declares its routes with `add_route`, which checks hub login (401), turns `ApiError` /
`UserError` / `WeightsUnavailable` into OpenAI-style JSON errors (4xx/503) with a sentence, logs anything else as a
bug (500 with a sentence, no class names), and counts the request in the hub's metrics. Work goes through
`await call(ctx, method, request, model, http)` or `ctx.stream(method, request, model)` (iterated with `async for`),
so the allow-list, leases, out-of-memory recovery and the stop on disconnect are the UI's (hub.streams).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Awaitable, Callable

from hub.errors import UserError, WeightsUnavailable

log = logging.getLogger("demohub")

MAX_JSON_BYTES = 8 * 2**20  # a /v1 JSON body; files go through multipart, capped by the hub's upload cap


class ApiError(Exception):
    """An answer for the client: HTTP status, a sentence, and OpenAI's error type/param/code."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = status, message, kind, param, code
        self.headers = headers

    def response(self):
        return error(self.status, self.message, self.kind, self.param, self.code, self.headers)


def error(status: int, message: str, kind: str = "invalid_request_error", param: str | None = None,
          code: str | None = None, headers: dict | None = None):
    """`{"error": {"message", "type", "param", "code"}}` with `status`, as OpenAI's API answers."""
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}},
                        status_code=status, headers=headers)


class Admission:
    """The /v1 queue of one demo: at most `ctx.concurrency` requests at work (the same number as the tab's events,
    from the backend: replicas x ongoing on Ray), the others wait without holding a server thread, and beyond
    `queue_size` waiting ones a request gets 429 with Retry-After, so API traffic never starves the page."""

    def __init__(self, limit: int, backlog: int, title: str):
        self.limit, self.backlog, self.title = limit, backlog, title
        self.waiting = 0
        self._sem = None

    async def acquire(self) -> Callable[[], None]:
        """Wait for a slot; returns its release (call it once the work, or its stream, is over)."""
        import anyio

        if self._sem is None:
            self._sem = anyio.Semaphore(self.limit)
        try:
            self._sem.acquire_nowait()  # a free slot: no waiting, nothing counted
            return self._releaser()
        except anyio.WouldBlock:
            pass
        if self.waiting >= self.backlog:
            raise ApiError(429, f"{self.title} has {self.waiting} requests waiting already; try again in a few "
                                "seconds.", "rate_limit_error", code="queue_full", headers={"Retry-After": "5"})
        self.waiting += 1
        try:
            await self._sem.acquire()
        finally:
            self.waiting -= 1
        return self._releaser()

    def _releaser(self) -> Callable[[], None]:
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._sem.release()
        return release


def admission(ctx) -> Admission:
    """The demo's one Admission (made on first use, kept on its context), sized by `ctx.concurrency`."""
    adm = getattr(ctx, "_admission", None)
    if adm is None:
        adm = ctx._admission = Admission(ctx.concurrency, ctx.settings.queue_size, ctx.spec.title)
    return adm


def model_id(ctx, model) -> str | None:
    """The `model` field: '', 'default' or 'demohub' mean the demo's default; anything this hub does not offer the
    caller is a 404 `model_not_found` before anything loads (the UI's allow-list, hub/context.py)."""
    if model is not None and not isinstance(model, str):
        raise ApiError(400, "'model' must be a string: one of the ids GET /v1/models lists.", param="model")
    if not model or model in ("default", "demohub"):
        return None
    try:
        ctx.choice(model)
    except UserError as e:
        raise ApiError(404, str(e), param="model", code="model_not_found") from None
    return model


async def call(ctx, method: str, request, model: str | None, http=None):
    """The result of `ctx.call(method, request, model)` once the demo's /v1 queue (`admission`) lets it in, awaited
    without holding a server thread. `http`: the route's Request; a client that hangs up stops the work at its next
    step (token, window, denoising step) and frees the model (hub.streams)."""
    release = await admission(ctx).acquire()
    try:
        work = ctx.stream(method, request, model)
        return await result_until_gone(work, http)
    finally:
        release()


async def started_stream(ctx, method: str, request, model: str | None, api: str):
    """(work, first item, release) of a streamed /v1 answer: the demo's /v1 queue admits it (`release` frees the
    slot: call it when the stream is over), then the model loads and the first item comes before the response starts,
    so a load failure or a refused request still gets its status code (raised here, the slot freed)."""
    release = await admission(ctx).acquire()
    work = None
    try:
        work = ctx.stream(method, request, model, api=api)
        first = await anext(work, None)
    except BaseException:
        if work is not None:
            work.close()
        release()
        raise
    return work, first, release


async def result_until_gone(work, http=None):
    """The one result of a running `ctx.stream(...)`; closed (its `stop` set) when `http`'s client disconnects."""
    import asyncio

    from hub.streams import Stopped

    async def watch():
        while not await http.is_disconnected():
            await asyncio.sleep(0.25)
        work.close()

    watcher = asyncio.ensure_future(watch()) if http is not None else None  # not a task group: it wraps ApiErrors
    try:
        async for value in work:
            async for _ in work:  # a plain method has one item; this reads its end (the lease released)
                pass
            return value
        raise Stopped()
    finally:
        if watcher is not None:
            watcher.cancel()
        work.close()


async def json_bytes(request, max_bytes: int = MAX_JSON_BYTES) -> bytes:
    """The raw body of a JSON request: Content-Type application/json (415 otherwise) and at most `max_bytes` (413)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        # A web page can send text/plain to any address without asking first (no CORS preflight); JSON it cannot.
        raise ApiError(415, "Send the body as JSON with the header Content-Type: application/json.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(413, _too_big(int(declared), max_bytes))
    body = bytearray()  # grows in place: no copy of the whole body per chunk
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise ApiError(413, _too_big(len(body), max_bytes))
    return bytes(body)


def _too_big(size: int, max_bytes: int) -> str:
    return (f"The request body is {size / 2**20:.1f} MiB or more; the most this hub reads is "
            f"{max_bytes / 2**20:.0f} MiB.")


async def json_body(request, schema, max_bytes: int = MAX_JSON_BYTES):
    """The body parsed into the pydantic `schema`; ApiError 400/413/415 with a sentence when it is not usable.
    The parsing runs in a worker thread: a client's text is never parsed on the event loop."""
    import anyio

    body = await json_bytes(request, max_bytes)
    return await anyio.to_thread.run_sync(_parse_json, body, schema)


def _parse_json(body: bytes, schema):
    from pydantic import ValidationError

    try:
        raw = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(400, "The request body is not valid UTF-8; send JSON encoded as UTF-8.") from None
    except RecursionError:
        raise ApiError(400, "The request body is nested too deeply; send a flat JSON object.") from None
    except ValueError as e:
        raise ApiError(400, f"The request body is not valid JSON ({e}).") from None
    if not isinstance(raw, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    try:
        return schema.model_validate(raw)
    except ValidationError as e:
        raise ApiError(400, sentence(e), param=_param(e)) from None


async def form_body(request, max_files: int = 4):
    """A multipart form (file uploads); the hub's upload cap applies to each file (gradio's limit setting)."""
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        raise ApiError(400, "Send this request as multipart/form-data (a file upload), as the OpenAI SDK does.")
    try:
        return await request.form(max_files=max_files, max_fields=50)
    except Exception as e:  # starlette's MultiPartException and malformed bodies: the client's to fix
        raise ApiError(400, f"The upload could not be read ({str(e)[:120]}); send a multipart/form-data body.") \
            from None


def sentence(e) -> str:
    """The first problem of a pydantic ValidationError as a sentence: a check's own UserError sentence, else one
    naming the field."""
    first = e.errors()[0]
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, UserError):
        return str(cause)
    loc = ".".join(str(p) for p in first["loc"]) or "the body"
    if first.get("type") == "missing":
        return f"'{loc}' is required."
    return f"'{loc}' is not valid: {first['msg']}."


def _param(e) -> str | None:
    loc = e.errors()[0]["loc"]
    return str(loc[0]) if loc else None


def same_origin(request, settings) -> bool:
    """False for a browser request sent by another website (its `Origin` is neither the hub's own address nor one
    the operator allowed; `null` included). Programs (curl, SDKs) send no Origin and pass. The guard in front of
    every route (hub.hosts) refuses these already; this keeps the routes safe on their own."""
    from hub.hosts import origin_ok

    origin = request.headers.get("origin")
    return origin is None or origin_ok(origin, request.headers.get("host"), settings)


def _login(request, ctx):
    """None when the request may go on; else the 401 (wrong or no credentials) or 429 (too many failures from this
    address and user: hub.guard's one throttle, shared with gradio's login page) answer."""
    from hub.guard import login_refusal

    refused = login_refusal(ctx.settings, request, getattr(ctx, "app", None))
    if refused is None:
        return None
    status, headers, text = refused
    return error(status, text, "rate_limit_error" if status == 429 else "authentication_error", headers=headers)


def add_route(router, ctx, path: str, method: str = "POST", api: str | None = None):
    """Decorator: register `async handler(request) -> response` at `path` with login, error mapping and metrics."""
    from fastapi import Request

    def register(handler: Callable[..., Awaitable]):
        name = api or path.rsplit("/", 1)[-1]

        async def endpoint(request: Request):
            if not same_origin(request, ctx.settings):
                return error(403, "This hub does not take API requests from other websites; call it from your own "
                                  "code, or the operator can allow the site with DEMOHUB_ALLOWED_ORIGINS.",
                             "permission_error")
            if (refused := _login(request, ctx)) is not None:
                return refused
            from hub.metrics import IN_ROUTE

            start, outcome, token = time.perf_counter(), "ok", IN_ROUTE.set(True)
            try:
                response = await handler(request)
                status = getattr(response, "status_code", 200)  # a route may answer an error without raising
                outcome = "ok" if status < 400 else "user_error" if status < 500 else "error"
                return response
            except ApiError as e:
                outcome = "user_error" if e.status < 500 else "error"
                return e.response()
            except WeightsUnavailable as e:
                outcome = "error"
                return error(503, str(e), "model_unavailable")
            except UserError as e:
                outcome = "user_error"
                return error(400, str(e))
            except Exception:
                outcome = "error"
                log.exception("Unexpected error in %s %s", method, path)
                return error(500, f"{ctx.spec.title} failed unexpectedly. This is a bug in demohub: the details are "
                                  "in the server log. Other requests are not affected.", "server_error")
            finally:
                IN_ROUTE.reset(token)
                metrics = getattr(ctx, "metrics", None)
                if metrics is not None:
                    metrics.request(ctx.name, name, outcome, time.perf_counter() - start)

        endpoint.__name__ = f"{ctx.name}_{name}"
        endpoint.__annotations__["request"] = Request  # annotations are strings here (PEP 563): the real class
        router.add_api_route(path, endpoint, methods=[method])
        return handler

    return register
