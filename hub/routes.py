"""The hub's own HTTP routes beside the demos' ones: `GET /v1/models` (every demo's models) and `GET /metrics`.

Both need hub login when the hub has users or API keys (hub/auth.py), like every `/v1` route, and wrong credentials
count in the login throttle (hub/guard.py) as on the login page.
"""

from __future__ import annotations

from hub.guard import login_refusal


def hub_routes(blocks, settings):
    """A fastapi.APIRouter with /v1/models and /metrics for the app `blocks` (hub.app.create_app)."""
    from fastapi import APIRouter, Request
    from fastapi.responses import Response

    from hub.api import error, same_origin
    from hub.context import DemoContext

    router = APIRouter()
    contexts = [DemoContext(blocks.hub_manager, settings, h.spec, blocks.hub_options.get(h.name))
                for h in blocks.hub_demos if h.demo is not None]

    def refused(request, what: str):
        """None when the request may go on, else its 403 (another website), 429 or 401 answer (hub.guard)."""
        if not same_origin(request, settings):
            return error(403, "This hub does not take API requests from other websites; call it from your own "
                              "code, or the operator can allow the site with DEMOHUB_ALLOWED_ORIGINS.",
                         "permission_error")
        answer = login_refusal(settings, request, getattr(blocks, "hub_app", None))
        if answer is None:
            return None
        status, headers, text = answer
        if status == 429:
            return error(status, text, "rate_limit_error", headers=headers)
        return error(status, f"Log in{what}: send Authorization: Bearer with an API key of this hub "
                             "(DEMOHUB_API_KEYS) or USER:PASSWORD of a hub user.", "authentication_error")

    async def models(request: Request):
        if (answer := refused(request, "")) is not None:
            return answer
        data = []
        for ctx in contexts:
            default = ctx.default_model()
            for label, model_id in ctx.model_choices():
                data.append({"id": model_id, "object": "model", "created": 0, "owned_by": "demohub",
                             "demo": ctx.name, "name": label, "default": model_id == default})
        return {"object": "list", "data": data}

    async def metrics(request: Request):
        if (answer := refused(request, " to read the metrics")) is not None:
            return answer
        body, content_type = blocks.hub_metrics.render()
        return Response(body, media_type=content_type)

    for endpoint in (models, metrics):  # annotations are strings here (PEP 563): give FastAPI the real class
        endpoint.__annotations__["request"] = Request
    router.add_api_route("/v1/models", models, methods=["GET"])
    router.add_api_route("/metrics", metrics, methods=["GET"])
    return router
