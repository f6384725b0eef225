"""The multipart body of a `/v1` upload route, read no further than the hub's upload cap.

Gradio's `max_file_size` covers only gradio's own routes, and starlette's form parser reads a whole body (to disk)
before a route sees any part of it, so a route that checks its parts afterwards has already read 1 GiB. `capped_form`
refuses the request from its Content-Length before reading, and otherwise stops reading as soon as the body streams
past the cap: one helper for every `/v1` route that takes files (audio transcriptions, image edits).
"""

from __future__ import annotations

from hub.api import ApiError, form_body

FORM_SLACK = 1 << 20  # the form's other fields and multipart framing, on top of the files themselves


async def capped_form(request, cap: int, *, files: int = 1, advice: str = "", param: str = "file"):
    """The form of `request`, or ApiError 413 once the body is over `files` x `cap` bytes plus `FORM_SLACK`.

    cap: the hub's upload cap in bytes (per file); files: how many files the route takes at most; advice: said
    after the cap (what to send instead); param: the form field the 413 names."""
    from starlette.requests import Request

    limit = files * cap + FORM_SLACK
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large(int(length), cap, advice, param, files=files)
    seen, over = 0, False

    async def receive():
        nonlocal seen, over
        message = await request.receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            over = True
            raise ValueError("over the upload cap")  # the parser stops; its error becomes ApiError 400, replaced here
        return message

    try:
        return await form_body(Request(request.scope, receive))
    except ApiError:
        if over:
            raise too_large(seen, cap, advice, param, at_least=True, files=files) from None
        raise


def too_large(size: int, cap: int, advice: str = "", param: str = "file", *, at_least: bool = False,
              files: int = 1) -> ApiError:
    """413: the upload's size and the hub's cap, with what to do."""
    each = " each" if files > 1 else ""
    return ApiError(413, f"The upload is {'over ' if at_least else ''}{size / 2**20:.1f} MiB; this hub takes files "
                         f"of at most {cap // 2**20} MiB{each} (the operator can raise DEMOHUB_MAX_UPLOAD_MB)."
                         + (f" {advice}" if advice else ""), param=param)
