"""The app shell: one tab per registered demo plus the Models tab, a bounded queue, and `launch`.

Building the app imports gradio and the demo modules, never torch and never a weight.
"""

from __future__ import annotations

import contextlib
import logging
import time
import traceback

from hub import options as demo_options
from hub.context import DemoContext
from hub.links import Links
from hub.contract import resolve
from hub.models import ModelManager
from hub.registry import DEMOS, DemoHandle, load_demos
from hub.settings import Settings

log = logging.getLogger("demohub")

RANDOM_BANNER = ("**Random weights.** This tab runs an architecture-true model with *random* weights "
                 "(`--weights random` or a random model choice): it works end to end, but its outputs are meaningless.")


def create_app(settings: Settings | None = None, demos: tuple[str, ...] | None = None,
               manager: ModelManager | None = None):
    """Build the Blocks. `demos`: demo names (default: settings.demos, else the whole registry)."""
    import gradio as gr

    settings = settings or Settings.load()
    handles = load_demos(demos if demos is not None else settings.demos)
    ok = [h for h in handles if h.demo]
    demo_options.check_names(settings.env, DEMOS + tuple(h.name for h in ok), [h.demo for h in ok])
    opts = {h.name: demo_options.parse(h.demo, settings.env) for h in ok}
    if manager is None and settings.backend == "ray":  # engines in Ray Serve deployments (hub.cluster)
        try:
            from hub.cluster import config as cluster_config
            from hub.cluster.backend import RayManager
        except ImportError as e:
            from hub.errors import SettingsError

            raise SettingsError(f"The Ray backend needs Ray Serve ({e.name} is not installed): "
                                "pip install 'demohub[ray]', or start without --backend ray.") from None

        manager = RayManager(settings, {h.name: h.spec for h in ok}, cluster_config.load(settings.ray_config),
                             settings.ray_address)
    manager = manager or ModelManager(settings, {h.name: (h.spec, h.demo.loader(opts[h.name]), h.demo.work)
                                                 for h in ok})
    from hub.blocks import HubBlocks
    from hub.metrics import Metrics

    holder: dict = {}
    metrics = Metrics(manager, queue_size=lambda: _queue_waiting(holder.get("blocks")))

    with HubBlocks(title="demohub", delete_cache=(1800, 3600)) as blocks:
        gr.Markdown("# demohub\nPretrained-model demos on one GPU. Every tab is also an API: see *Use via API* below.")
        with gr.Tabs(elem_id="hub-tabs") as tabs:
            links = Links(tabs)  # tabs that send to each other (hub.links)
            for h in handles:
                with gr.Tab(h.title, id=h.name) as tab:
                    links.tab(h.name, tab)
                    _render_demo(h, manager, settings, opts.get(h.name), metrics, links)
            with gr.Tab("Models", id="models"):
                from hub import models_tab

                refresh, outputs = models_tab.build(manager, settings, [h.name for h in ok])
        links.finish()  # every tab is built: wire the sends, run the after-build hooks
        blocks.load(refresh, None, outputs, show_progress="hidden", api_visibility="private")
    blocks.queue(max_size=settings.queue_size, default_concurrency_limit=4)
    blocks.hub_manager = manager
    blocks.hub_settings = settings
    blocks.hub_demos = handles
    blocks.hub_options = opts
    blocks.hub_metrics = metrics
    holder["blocks"] = blocks
    return blocks


def _queue_waiting(blocks) -> int:
    queue = getattr(blocks, "_queue", None)
    per_id = getattr(queue, "event_queue_per_concurrency_id", {}) or {}
    return sum(len(q.queue) for q in list(per_id.values()))


def _render_demo(h: DemoHandle, manager: ModelManager, settings: Settings, options, metrics=None,
                 links: Links | None = None) -> None:
    import gradio as gr

    if h.demo is None:
        gr.Markdown(f"**This tab is unavailable: its code failed to import.**\n\n```\n{h.error}\n```\n\n"
                    "Install the demo's libraries (`pip install -e .` in the project folder) and restart. "
                    "The other tabs work.")
        return
    ctx = DemoContext(manager, settings, h.spec, options, metrics, links=links)
    gr.Markdown(h.spec.description)
    try:
        if manager.choice(h.name).source == "random" and not h.demo.extra.get("chain"):  # a chain has no weights
            gr.Markdown(RANDOM_BANNER, elem_classes=["random-banner"])
        with gr.Column():
            resolve(h.demo.ui)(ctx)
    except Exception as e:
        log.error("Building the %s tab failed:\n%s", h.name, traceback.format_exc())
        ctx.links.drop(h.name)  # what it offered other tabs is not there
        gr.Markdown(f"**This tab failed to build:** `{type(e).__name__}: {e}`. The other tabs work.")


def launch(blocks, settings: Settings, **extra):
    """Launch with the settings' host, port, share/auth and upload cap; mount demos' extra routes."""
    settings.check_launch()
    from hub import preload

    manager = getattr(blocks, "hub_manager", None)  # None: Blocks not made by create_app (nothing to preload)
    preloads = [] if manager is None else preload.plan(settings, manager, [h.name for h in blocks.hub_demos if h.demo])
    contexts = api_routers(blocks, settings)
    kwargs = dict(
        server_name=settings.host, server_port=settings.port, share=settings.share,
        auth=list(settings.auth) or None, max_file_size=settings.max_upload_mb * 1024 * 1024,
        show_error=True, footer_links=["api", "settings"],
        # FastAPI's own /openapi.json would describe every route to anyone, without login (gradio's page has its own)
        app_kwargs={"openapi_url": None},
    )
    kwargs.update(extra)
    block = kwargs.pop("prevent_thread_lock", False)
    from hub import guard, hosts

    # X-Forwarded-* count only from DEMOHUB_TRUSTED_PROXIES (hub.hosts); a busy machine does not stop the start
    with hosts.uvicorn_trusts_no_proxy(), patient_self_check():
        app, local_url, share_url = blocks.launch(prevent_thread_lock=True, **kwargs)
    if settings.share and not share_url:
        # gradio prints its own hint and carries on; say plainly what happened and that the hub still serves.
        log.error("Could not create the public share link (no network, or the tunnel could not start). "
                  "The hub keeps running locally at %s.", local_url)
    blocks.hub_app = app  # route auth also accepts the login cookie of gradio's page
    guard.install(app, settings)
    from hub import gradio_media  # gradio's FFmpeg calls read only the upload; its screen-recording route is gone
    gradio_media.install(app)
    hosts.install(app, settings, share_url)  # last, so outermost: Host, Origin and proxies before anything else
    for ctx, router in contexts:
        if ctx is not None:
            ctx.app = app
        _add_routes(app, router)
    blocks.hub_preload = preload.start(manager, preloads)  # background: the page answers meanwhile
    if not block:
        blocks.block_thread()
    return app, local_url, share_url


@contextlib.contextmanager
def patient_self_check(seconds: float = 120.0):
    """While gradio starts: it asks its own new server for the page and gives up at the first 3-second timeout,
    refusing to start ("When localhost is not accessible, a shareable link must be created") when the machine is
    merely busy. Its check keeps asking for `seconds` instead."""
    from gradio import networking

    check = networking.url_ok

    def url_ok(url: str) -> bool:
        deadline = time.monotonic() + seconds
        while not check(url):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.5)
        return True

    networking.url_ok = url_ok
    try:
        yield
    finally:
        networking.url_ok = check


def api_routers(blocks, settings: Settings) -> list[tuple[DemoContext | None, object]]:
    """(context, fastapi.APIRouter) of every demo's own routes (/v1/...) and the hub's (/v1/models, /metrics)."""
    from hub.routes import hub_routes

    routers = []
    for h in blocks.hub_demos:
        if h.demo is not None and h.demo.routes is not None:
            ctx = DemoContext(blocks.hub_manager, settings, h.spec, blocks.hub_options.get(h.name), blocks.hub_metrics)
            routers.append((ctx, resolve(h.demo.routes)(ctx)))
    routers.append((None, hub_routes(blocks, settings)))
    return routers


def _add_routes(app, router) -> None:
    """Add a demo's router before gradio's catch-all routes so its paths win."""
    app.include_router(router)
    new = app.router.routes[-len(router.routes):]
    del app.router.routes[-len(router.routes):]
    app.router.routes[0:0] = new
