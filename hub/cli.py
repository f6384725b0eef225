"""`demohub serve | list | fetch | unload | bench`."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from hub.errors import SettingsError, UserError
from hub.settings import BACKENDS, DEVICES, DTYPES, WEIGHTS, Settings


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="demohub", description="A local hub for pretrained-model demos.")
    sub = p.add_subparsers(dest="command")
    s = sub.add_parser("serve", help="start the web UI (default)")
    s.add_argument("--host"), s.add_argument("--port", type=int)
    s.add_argument("--share", action="store_true", default=None, help="public Gradio link (needs --auth)")
    s.add_argument("--auth", action="append", metavar="USER:PASS", help="repeatable; or DEMOHUB_AUTH='u:p,u2:p2'")
    s.add_argument("--auth-file", metavar="FILE", help="one USER:PASSWORD per line")
    s.add_argument("--insecure-share", action="store_true", default=None, help="allow --share without auth")
    s.add_argument("--device", choices=DEVICES), s.add_argument("--dtype", choices=DTYPES)
    s.add_argument("--weights", choices=WEIGHTS, help="random = architecture-true random weights, no download")
    s.add_argument("--vram-budget", metavar="SIZE", help="e.g. 8GB; default: free GPU memory minus a margin")
    s.add_argument("--demos", metavar="A,B", help="only these demos")
    s.add_argument("--cache-dir"), s.add_argument("--offline", action="store_true", default=None)
    s.add_argument("--max-upload-mb", type=int), s.add_argument("--queue-size", type=int)
    s.add_argument("--keep-alive", metavar="TIME", help="unload idle models after TIME (1800, 30m, 2h; 0 = after each "
                   "request, -1 = never); default 30m")
    s.add_argument("--pinned", metavar="A,B", help="demos whose models stay loaded")
    s.add_argument("--allow-any-model", action="store_true", default=None,
                   help="requests may name any HF repo id or local path (a hub only this machine reaches)")
    s.add_argument("--compile", action="store_true", default=None,
                   help="torch.compile GPU fast paths where a demo offers them (warm-up at load)")
    s.add_argument("--backend", choices=BACKENDS, help="where engines run: local (this process, default) or ray "
                   "(a Ray Serve deployment per demo; pip install 'demohub[ray]')")
    s.add_argument("--ray-address", metavar="ADDRESS", help="Ray cluster to join (default: RAY_ADDRESS, a "
                   "`ray start --head` on this machine, else a new local Ray)")
    s.add_argument("--ray-config", metavar="FILE", help="per-demo replicas/GPUs/autoscaling, TOML or YAML")
    ls = sub.add_parser("list", help="demos, their models, cached or not, size on disk")
    ls.add_argument("--cache-dir")
    f = sub.add_parser("fetch", help="download weights into the cache for offline use")
    f.add_argument("demo", help="a demo name or 'all'")
    f.add_argument("--model", help="a model id (default: every listed model of the demo)")
    f.add_argument("--cache-dir")
    u = sub.add_parser("unload", help="unload a demo's model in a running hub")
    u.add_argument("demo", help="a demo name or 'all'")
    u.add_argument("--url", default="http://127.0.0.1:7860")
    b = sub.add_parser("bench", help="run benchmarks: hub path vs the naive library call")
    b.add_argument("cases", nargs="*", help="case-name prefixes (default: all)")
    b.add_argument("--repeat", type=int, default=5), b.add_argument("--out", default="bench/results")
    b.add_argument("--list", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    cmd = args.command or "serve"
    try:
        if cmd == "serve":
            return _serve(args)
        if cmd == "list":
            return _list(Settings.load(cache_dir=args.cache_dir))
        if cmd == "fetch":
            return _fetch(Settings.load(cache_dir=args.cache_dir), args.demo, args.model)
        if cmd == "unload":
            return _unload(args.url, args.demo)
        if cmd == "bench":
            from bench.harness import main as bench_main

            return bench_main(args.cases, repeat=args.repeat, out=args.out, list_only=args.list)
    except (SettingsError, UserError) as e:
        print(f"demohub: {e}", file=sys.stderr)
        return 2
    return 0


def _serve(args) -> int:
    flags = {k: getattr(args, k, None) for k in ("host", "port", "share", "auth", "auth_file", "insecure_share",
                                                "device", "dtype", "weights", "vram_budget", "demos", "cache_dir",
                                                "offline", "max_upload_mb", "queue_size", "compile", "keep_alive",
                                                "pinned", "allow_any_model", "backend", "ray_address",
                                                "ray_config")}
    settings = Settings.load(**flags)
    settings.check_launch()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from hub.app import create_app, launch

    launch(create_app(settings), settings)
    return 0


def _list(settings: Settings) -> int:
    from hub.registry import load_demos
    from hub.weights import is_cached

    for h in load_demos():
        if h.demo is None:
            print(f"{h.name}: unavailable ({h.error})")
            continue
        print(f"{h.name} — {h.spec.title}")
        for m in h.spec.models:
            cached, size = is_cached(h.spec, m, settings)
            default = [k for k, v in h.spec.default_model.items() if v == m.id]
            print(f"  {m.id:<55} {m.source:<7} {'cached' if cached else 'not cached':<10} {size / 1e6:9.1f} MB"
                  f"  ~{m.approx_bytes / 1e6:.0f} MB loaded  {m.license}" + (f"  default on {','.join(default)}" if default else ""))
    return 0


def _fetch(settings: Settings, demo: str, model: str | None) -> int:
    """Download weights now (ignores --offline): hf snapshots, and native files through the demo's `fetch`."""
    from dataclasses import replace

    from hub.contract import resolve as resolve_ref
    from hub.registry import load_demos
    from hub.weights import choice_for, resolve

    settings = replace(settings, offline=False, weights="hf")
    handles = load_demos(None if demo == "all" else (demo,))
    failures = 0
    for h in handles:
        if h.demo is None:
            print(f"{h.name}: cannot fetch, the demo failed to import: {h.error}", file=sys.stderr)
            failures += 1
            continue
        parts = {c.id: c for c in h.spec.components}  # pinned weights the models use (SD's tiny decoder)
        picked = [parts.get(model) or choice_for(h.spec, model)] if model else \
            [m for m in h.spec.models if m.source in ("hf", "native")]
        # a component made for some models only (options["with_models"]: SD 1.5's LCM-LoRA) comes with those
        choices = picked + [c for c in h.spec.components if c not in picked and (
            not model or not c.options.get("with_models") or picked[0].id in c.options["with_models"])]
        for c in choices:
            print(f"{h.name}: fetching {c.id} ...", flush=True)
            try:
                w = resolve(h.spec, c, settings)
                if w.source == "native" and h.demo.fetch is not None:
                    resolve_ref(h.demo.fetch)(w)
                print(f"{h.name}: {c.id} ready in {w.path}")
            except UserError as e:
                print(f"{h.name}: {e}", file=sys.stderr)
                failures += 1
    return 1 if failures else 0


def _unload(url: str, demo: str) -> int:
    from gradio_client import Client

    client = Client(url, verbose=False)
    print((client.predict(api_name="/unload_all") if demo == "all" else client.predict(demo, api_name="/unload_model"))[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
