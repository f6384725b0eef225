"""The Models tab: what is loaded where, Unload buttons, and the system panel (torch, GPU, cache)."""

from __future__ import annotations

import importlib.metadata
import platform

from hub.memory import loaded_torch

from hub.models import ModelManager
from hub.settings import Settings
from hub.weights import folder_bytes

COLUMNS = ["demo", "model", "state", "device", "dtype", "MB", "in use", "idle s", "unload in", "load s", "note"]
# Shares of the table's width (it fits a 1440 px window, the note, where a failed load says why, the widest); the
# cells wrap
WIDTHS = ["9%", "14%", "6%", "8%", "10%", "5%", "5%", "5%", "6%", "5%", "27%"]


def status_rows(manager: ModelManager) -> list[list]:
    return [[r["demo"], r["display"], r["state"], r["device"], r["dtype"], round(r["bytes"] / 1e6, 1), r["in_use"],
             r["idle_s"], _unload_in(r), r["load_s"], r["note"]] for r in manager.status()]


def memory_note(manager, choice, kind: str) -> str:
    """A sentence for the model picker, said before any click: whether `choice` fits the memory the manager may give
    models on `kind` now (its budget: the configured one, else free memory minus a margin), or "" when unknown (a
    GPU before torch is imported, a Ray backend, a model of unknown size)."""
    own = getattr(choice, "cpu_dtype" if kind == "cpu" else "dtype", None)  # the dtype the model asks for there
    need = choice.bytes_at(own or ("float32" if kind == "cpu" else "float16"))
    budget_of = getattr(manager, "_budget", None)
    if not need or budget_of is None:
        return ""
    try:
        budget = budget_of(kind)
    except Exception:  # a note that cannot be worked out is left out, never a failed page
        return ""
    if budget is None:
        return ""
    where = "in memory" if kind == "cpu" else f"on the {kind.upper()}"
    if need > budget:
        return (f"⚠️ **It will not fit {where}**: it needs about {_gb(need)} and this machine has about "
                f"{_gb(max(budget, 0))} for models; pick a smaller model.")
    return f"It fits {where} (about {_gb(need)} of the {_gb(budget)} this machine has for models)."


def _gb(nbytes: int) -> str:
    return f"{nbytes / 1e9:.1f} GB" if nbytes >= 1e8 else f"{max(1, round(nbytes / 1e6))} MB"


def loaded_demos(manager: ModelManager) -> list[str]:
    """Demos with a model loaded now (not loading, not failed), in the manager's order."""
    return list(dict.fromkeys(r["demo"] for r in manager.status() if r["state"] not in ("loading", "failed")))


def _unload_in(row: dict) -> str:
    """When an idle model unloads (keep-alive): 'pinned', 'in use', 'never' or seconds left."""
    if row.get("pinned"):
        return "pinned"
    if row["in_use"]:
        return "in use"
    left = row.get("unload_in_s")
    return "never" if left is None else f"{left:.0f} s"


def system_info(manager: ModelManager, settings: Settings, operator: bool | None = None) -> str:
    """Markdown: versions, device choice, GPU memory, cache folder and size. Imports no torch itself.

    Library versions and the cache folder's path are for the operator (hub.auth.is_operator; default: only on a
    hub no one else can reach); visitors see neither, the operator also sees them in the log and `demohub list`."""
    if operator is None:
        operator = not settings.share and settings.host in ("127.0.0.1", "localhost", "::1")
    torch = loaded_torch()
    replicas = manager.replicas()  # None in-process
    lines = _versions(torch, remote=replicas is not None) if operator else []
    if torch is not None:
        if torch.cuda.is_available():
            free, total = torch.cuda.mem_get_info()
            lines.append(f"- VRAM used {(total - free) / 2**30:.2f} GiB, free {free / 2**30:.2f} GiB of {total / 2**30:.1f} GiB")
        p = manager.placement()
        lines.append(f"- Default placement: {p.device}, {p.dtype}" + (f" ({p.reason})" if p.reason else ""))
        if p.device == "cpu" and manager.placement(cpu_prefers="bfloat16").dtype == "bfloat16":
            lines.append("- This CPU computes bf16 natively: models that gain from it (Stable Diffusion, CLIP) run "
                         "in bfloat16")
    lines.append(f"- Requested device: {settings.device}, dtype: {settings.dtype}, weights: {settings.weights}"
                 + (", offline" if settings.offline else ""))
    keep = "never" if settings.keep_alive < 0 else f"{settings.keep_alive:g} s"
    lines.append(f"- Keep-alive: idle models unload after {keep}"
                 + (f"; pinned: {', '.join(settings.pinned)}" if settings.pinned else ""))
    budget = settings.vram_budget
    lines.append(f"- VRAM budget: {f'{budget / 2**30:.2f} GiB' if budget else 'free memory minus a margin'}")
    for kind in ("cuda", "cpu"):
        used = manager.resident_bytes(kind)
        if used:
            lines.append(f"- Models resident on {kind}: {used / 1e6:.0f} MB")
    where = f"`{settings.cache_dir.resolve()}` " if operator else ""
    lines.append(f"- Cache folder: {where}({folder_bytes(settings.cache_dir) / 1e6:.0f} MB)")
    if replicas is not None:
        lines += cluster_lines(replicas)
    return "\n".join(lines)


def cluster_lines(replicas: dict) -> list[str]:
    """The Ray backend: per demo, its replicas (where, what is loaded, requests running) and the queue."""
    lines = ["", "**Ray Serve deployments**", ""]
    for demo, d in replicas.items():
        target = f" of {d['target']}" if d.get("target") is not None else ""
        lines.append(f"- **{demo}**: {d['running']}{target} replica(s) running, {d['queued']} request(s) waiting "
                     "for a replica")
        for r in sorted(d["replicas"], key=lambda r: r["pid"]):
            loaded = ", ".join(f"{x['display']} ({x['state']}, {x['dtype']})" for x in r["rows"]) or "nothing loaded"
            lines.append(f"  - {r['label']}: {loaded}; {r['ongoing']} request(s) running")
    return lines


def _versions(torch, remote: bool = False) -> list[str]:
    from hub.device import cpu_info

    cpu = cpu_info()
    lines = [f"- Python {platform.python_version()}, gradio {_version('gradio')}",
             f"- CPU: {cpu['name']}" + (f" ({', '.join(cpu['flags'])})" if cpu["flags"] else "")]
    if remote:
        lines.append(f"- torch {_version('torch')} runs in the Ray Serve replicas below (this front end never imports it)")
    elif torch is None:
        lines.append(f"- torch {_version('torch')} (not imported yet: it loads with the first model)")
    else:
        cuda = torch.cuda.is_available()
        lines.append(f"- torch {torch.__version__}, CUDA {torch.version.cuda or 'none'}, "
                     f"GPU: {torch.cuda.get_device_name(0) if cuda else 'none'}")
    return lines


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def build(manager: ModelManager, settings: Settings, demo_names: list[str]) -> None:
    """Render the tab's components inside the current Blocks. Unloading is an operator action (hub.auth): visitors
    do not see its controls and the API refuses them."""
    import gradio as gr

    from hub.auth import is_operator

    gr.Markdown("Models load on first use and stay until idle past their keep-alive (*unload in*), evicted to make "
                "room, or unloaded here. Pinned demos stay loaded.")
    table = gr.Dataframe(headers=COLUMNS, interactive=False, label="Models", wrap=True, column_widths=WIDTHS)
    with gr.Row() as controls:
        # no default until the page loads: then the first demo with a model loaded (Unload would do nothing else)
        which = gr.Dropdown(demo_names, value=None, label="Demo")
        unload_btn = gr.Button("Unload", variant="secondary", size="sm")
        unload_all_btn = gr.Button("Unload all", variant="stop", size="sm")
    refresh_btn = gr.Button("Refresh", size="sm")
    message = gr.Markdown()
    system = gr.Markdown()

    def operator_only(request: gr.Request) -> None:
        if not is_operator(settings, request):
            raise gr.Error("Only the hub's operator can unload models (a user listed in DEMOHUB_OPERATORS, or "
                           "from the machine the hub runs on).", print_exception=False)

    def refresh(request: gr.Request):
        return status_rows(manager), system_info(manager, settings, is_operator(settings, request))

    def unload(demo: str, request: gr.Request):
        from hub.errors import UserError

        operator_only(request)
        if not demo:
            raise gr.Error("Pick a demo to unload.", print_exception=False)
        try:
            said = manager.unload(demo)
        except UserError as e:
            raise gr.Error(str(e), print_exception=False) from None
        return said, *refresh(request)

    def unload_all(request: gr.Request):
        operator_only(request)
        return manager.unload_all() or "Nothing was loaded.", *refresh(request)

    def page_load(request: gr.Request):
        loaded = [d for d in loaded_demos(manager) if d in demo_names]
        return (*refresh(request), gr.update(visible=is_operator(settings, request)),
                loaded[0] if loaded else None)

    for fn in (operator_only, refresh, unload, unload_all, page_load):  # string annotations (PEP 563): the class
        fn.__annotations__["request"] = gr.Request
    unload_btn.click(unload, which, [message, table, system], api_name="unload_model")
    unload_all_btn.click(unload_all, None, [message, table, system], api_name="unload_all")
    refresh_btn.click(refresh, None, [table, system], api_name="model_status")
    gr.Timer(5).tick(refresh, None, [table, system], show_progress="hidden", api_visibility="private")
    return page_load, [table, system, controls, which]
