"""The hub's own HTTP routes beside the demos' ones: `GET /v1/models` (every demo's models) and `GET /metrics`.

Both need hub login when the hub has users or API keys (hub/auth.py), like every `/v1` route.
"""

from __future__ import annotations

from hub.auth import authorized


def hub_routes(blocks, settings):
    """A fastapi.APIRouter with /v1/models and /metrics for the app `blocks` (hub.app.create_app)."""
    from fastapi import APIRouter, Request
    from fastapi.responses import Response

    from hub.api import error, same_origin
    from hub.context import DemoContext

    router = APIRouter()
    contexts = [DemoContext(blocks.hub_manager, settings, h.spec, blocks.hub_options.get(h.name))
                for h in blocks.hub_demos if h.demo is not None]

    def allowed(request) -> bool:
        return same_origin(request, settings) and authorized(settings, request, getattr(blocks, "hub_app", None))

    async def models(request: Request):
        if not allowed(request):
            return error(401, "Log in: send Authorization: Bearer with an API key of this hub (DEMOHUB_API_KEYS) or "
                              "USER:PASSWORD of a hub user.", "authentication_error")
        data = []
        for ctx in contexts:
            default = ctx.default_model()
            for label, model_id in ctx.model_choices():
                data.append({"id": model_id, "object": "model", "created": 0, "owned_by": "demohub",
                             "demo": ctx.name, "name": label, "default": model_id == default})
        return {"object": "list", "data": data}

    async def metrics(request: Request):
        if not allowed(request):
            return error(401, "Log in to read the metrics: send Authorization: Bearer with an API key of this hub "
                              "(DEMOHUB_API_KEYS) or USER:PASSWORD of a hub user.", "authentication_error")
        body, content_type = blocks.hub_metrics.render()
        return Response(body, media_type=content_type)

    for endpoint in (models, metrics):  # annotations are strings here (PEP 563): give FastAPI the real class
        endpoint.__annotations__["request"] = Request
    router.add_api_route("/v1/models", models, methods=["GET"])
    router.add_api_route("/metrics", metrics, methods=["GET"])
    return router
