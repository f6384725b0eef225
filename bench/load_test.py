"""Load test: N concurrent gradio_client sessions across every tab for T seconds, tiny random weights on CPU.

Each session has its own client (own session hash) and its own image size, so a SAM mask of another session's
image would show up as a size mismatch. Every request must complete or get Gradio's "queue is full" message.
After one warm-up request per tab (every model loaded) and a first request from every session at once (the first
burst of concurrency), resident memory of the server process is read after the 50th and the 500th request: new requests
wait until every request so far is answered, so the server is idle when it is read.

Run: `python -m bench.load_test --sessions 50 --seconds 60` (starts the hub in its own process on loopback).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from PIL import Image

QUEUE_FULL = "queue is full"


def make_media(folder: Path, session: int) -> dict:
    """Media whose image size is unique to the session (hub.samples, as the demos' examples use)."""
    from hub.samples import make_samples

    paths = make_samples(folder, seed=session)
    return {**paths, "size": Image.open(paths["image"]).size}


SKIP = {"detect_video", "segment_everything", "read_parameters"}  # long or model-free: not what this test measures


def requests_for(media: dict):
    """(api_name, args, check) per demo example (hub.contract.Example); check(result) raises AssertionError on a
    wrong or leaked answer."""
    from gradio_client import handle_file

    from hub.registry import load_demos
    from hub.samples import fill

    w, h = media["size"]

    def sam_check(result):
        masks = [r for r in result if isinstance(r, str) and r.endswith(".png")]
        assert masks and all(Image.open(m).size == (w, h) for m in masks[:1]), \
            "SAM returned a mask of another session's image"

    return [(f"/{ex.api_name}", fill(ex.values(), media, handle_file), sam_check if ex.api_name == "segment" else None)
            for d in load_demos() for ex in d.demo.examples if ex.api_name not in SKIP]


@dataclass
class Stats:
    outcomes: Counter = field(default_factory=Counter)
    errors: list = field(default_factory=list)
    latencies: dict = field(default_factory=dict)
    rss_mb: dict = field(default_factory=dict)
    parts_mb: dict = field(default_factory=dict)
    completed: int = 0
    started: int = 0
    inflight: int = 0
    paused: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        self.cond = threading.Condition(self.lock)


def _rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def _memory_parts_mb(pid: int) -> dict:
    """Resident memory split as the kernel counts it: anonymous (heap, tensors) vs file-backed (library code)."""
    parts = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("RssAnon:", "RssFile:")):
                parts[line.split(":")[0]] = round(int(line.split()[1]) / 1024, 1)
    except OSError:  # not Linux
        pass
    return parts


def run_load(url: str, sessions: int = 50, seconds: float = 60, media_dir: Path | None = None,
             rss_marks=(50, 500), min_requests: int = 0, max_seconds: float = 600, server_pid: int | None = None) -> dict:
    """Run for `seconds`, then on until `min_requests` have completed (at most `max_seconds` in all)."""
    from gradio_client import Client

    media_dir = Path(media_dir or tempfile.mkdtemp(prefix="demohub-load-"))
    stats = Stats()
    # Warm-up, not counted: one request per tab loads every model, so the memory marks compare a warm server
    # with itself (model loading is not a leak).
    # A busy machine answers 50 sessions' first connections slowly: the client waits (a hung server is caught by
    # the run's own limits), never giving up after httpx's default 5 s.
    patient = {"timeout": max_seconds}
    warm = Client(url, verbose=False, httpx_kwargs=patient)
    for api, args, _ in requests_for(make_media(media_dir, 999)):
        warm.predict(*args, api_name=api)
    # Then every session connects and sends its first request at once, also not counted: the server's first burst
    # of concurrency sets up what it keeps for good (worker threads and their per-thread buffers, 50 sessions' state).
    clock: dict = {}  # the run (and its time limits) starts when the warm-up burst is over, before any session goes on
    ready = threading.Barrier(sessions + 1, action=lambda: clock.setdefault("start", time.monotonic()))
    marks = sorted(rss_marks)

    def more() -> bool:
        elapsed = time.monotonic() - clock.setdefault("start", time.monotonic())
        return elapsed < seconds or (stats.completed < min_requests and elapsed < max_seconds)

    def session(i: int):
        reqs = requests_for(make_media(media_dir, i))
        api, args, _ = reqs[i % len(reqs)]
        client = None
        try:
            client = Client(url, verbose=False, httpx_kwargs=patient)
            client.predict(*args, api_name=api)
        except Exception as e:  # noqa: BLE001 - a failed warm-up request counts like any other
            outcome = "queue_full" if QUEUE_FULL in str(e).lower() else "error"
            with stats.lock:
                stats.outcomes[(api, outcome)] += 1
                if outcome == "error":
                    stats.errors.append(f"warm-up {api}: {type(e).__name__}: {str(e)[:300]}")
        finally:
            try:
                ready.wait(timeout=max_seconds)
            except threading.BrokenBarrierError:
                pass
        if client is None:
            return
        k = i + 1
        while more():
            api, args, check = reqs[k % len(reqs)]
            k += 1
            _timed_request(client, api, args, check, stats, marks, server_pid)

    threads = [threading.Thread(target=session, args=(i,), daemon=True) for i in range(sessions)]
    for t in threads:
        t.start()
    try:
        ready.wait(timeout=max_seconds)
    except threading.BrokenBarrierError:
        stats.errors.append("warm-up: not every session finished its first request in time")
    start = clock.setdefault("start", time.monotonic())
    for t in threads:
        t.join(timeout=max(seconds, max_seconds) + 300)
    return _report(stats, sessions, start, threads)


def _timed_request(client, api: str, args, check, stats: Stats, marks: list, server_pid: int | None) -> None:
    """One counted request; at a memory mark, new requests wait until every answered one is in, then memory is read."""
    with stats.cond:
        while stats.paused:
            stats.cond.wait()
        stats.started += 1
        stats.inflight += 1
        if marks and stats.started == marks[0]:
            stats.paused = True  # the mark's request runs; none starts until memory is read
    t0 = time.perf_counter()
    try:
        result = client.predict(*args, api_name=api)
        if check:
            check(result)
        outcome = "ok"
    except AssertionError as e:
        outcome = "leak"
        stats.errors.append(f"{api}: {e}")
    except Exception as e:  # noqa: BLE001 - classified and counted, never hidden
        text = str(e)
        outcome = "queue_full" if QUEUE_FULL in text.lower() else "error"
        if outcome == "error":
            stats.errors.append(f"{api}: {type(e).__name__}: {text[:300]}")
    with stats.cond:
        stats.outcomes[(api, outcome)] += 1
        stats.latencies.setdefault(api, []).append(time.perf_counter() - t0)
        stats.completed += 1
        stats.inflight -= 1
        if stats.paused and stats.inflight == 0:
            # Every request so far has been answered and the server is idle: read its memory now, so the
            # reading is what it keeps, not what requests in flight happen to hold at that instant.
            time.sleep(1.0)
            mark = marks.pop(0)
            stats.rss_mb[mark] = _rss_mb(server_pid or os.getpid())
            stats.parts_mb[mark] = _memory_parts_mb(server_pid or os.getpid())
            stats.paused = False
            stats.cond.notify_all()


def _report(stats: Stats, sessions: int, start: float, threads: list) -> dict:
    per_api = {}
    for api, lat in stats.latencies.items():
        lat = sorted(lat)
        per_api[api] = {"requests": len(lat), "ok": stats.outcomes[(api, "ok")],
                        "queue_full": stats.outcomes[(api, "queue_full")], "error": stats.outcomes[(api, "error")],
                        "leak": stats.outcomes[(api, "leak")], "p50_s": lat[len(lat) // 2],
                        "p90_s": lat[int(0.9 * (len(lat) - 1))]}
    return {"sessions": sessions, "seconds": round(time.monotonic() - start, 1), "completed": stats.completed,
            "per_api": per_api, "rss_mb": stats.rss_mb, "memory_parts_mb": stats.parts_mb, "errors": stats.errors[:20],
            "hung_sessions": sum(t.is_alive() for t in threads)}


def serve_tiny(port: int, queue_size: int = 64, cache_dir: Path | None = None):
    """Start the whole hub in-process on loopback with tiny random models on CPU. Its models are cached in
    `cache_dir`, else in a temporary folder removed when the process exits."""
    from hub.app import create_app, launch
    from hub.registry import DEMOS
    from hub.settings import Settings

    if cache_dir is None:
        import atexit
        import shutil

        cache_dir = Path(tempfile.mkdtemp(prefix="demohub-load-cache-"))
        atexit.register(shutil.rmtree, cache_dir, ignore_errors=True)
    s = replace(Settings.load({}), port=port, device="cpu", queue_size=queue_size, cache_dir=cache_dir, offline=True,
                models={d: "tiny-random" for d in DEMOS})
    blocks = create_app(s)
    launch(blocks, s, prevent_thread_lock=True, quiet=True)
    return blocks, f"http://127.0.0.1:{port}/"


@contextmanager
def server_process(port: int, queue_size: int = 64, start_s: float = 180):
    """The hub in its own process (so its memory is measured alone); yields (url, pid). It must answer within
    start_s seconds (the tests pass their one wait limit, tests.WAIT_S: a busy machine starts it slowly)."""
    import subprocess
    import sys
    import urllib.request

    env = {"MALLOC_ARENA_MAX": "2", **os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}  # as `run.sh serve` runs it
    cache = Path(tempfile.mkdtemp(prefix="demohub-load-cache-"))  # removed here: a terminated child runs no atexit
    proc = subprocess.Popen([sys.executable, "-m", "bench.load_test", "--serve-only", "--port", str(port),
                             "--queue-size", str(queue_size), "--cache-dir", str(cache)],
                            cwd=Path(__file__).resolve().parents[1], env=env, stdout=sys.stderr)  # the report owns stdout
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + start_s
        while True:
            try:
                urllib.request.urlopen(url, timeout=min(30.0, start_s)).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the hub did not start for the load test")
                time.sleep(0.5)
        yield url, proc.pid
    finally:
        import shutil

        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    import argparse

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    p = argparse.ArgumentParser()
    p.add_argument("--sessions", type=int, default=50), p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--port", type=int, default=7990), p.add_argument("--queue-size", type=int, default=64)
    p.add_argument("--serve-only", action="store_true", help="only run the server (used by server_process)")
    p.add_argument("--cache-dir", help="with --serve-only: where the models are cached (default: a temporary folder)")
    a = p.parse_args()
    if a.serve_only:
        blocks, _ = serve_tiny(a.port, a.queue_size, Path(a.cache_dir) if a.cache_dir else None)
        blocks.block_thread()
    else:
        with server_process(a.port, a.queue_size) as (url, pid):
            print(json.dumps(run_load(url, a.sessions, a.seconds, min_requests=500, server_pid=pid), indent=2))
