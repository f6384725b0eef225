"""Benchmark harness: the hub's path vs the naive library call, same inputs, same process.

A case file is `bench/cases_<name>.py` with `cases() -> list[Case]`. Each case's `setup()` builds models and
inputs once (timed as load time) and returns a context; `naive(ctx)` and `hub(ctx)` each do the same work.
Both sides get warm-up calls, then `repeat` timed calls each, alternating (CUDA synchronized around each). Results: p50/p90 ms,
items/s, peak memory, the ratio naive/hub; written as JSON and a markdown table.

Run: `demohub bench [case-prefix ...] [--repeat N]`, or `python -m bench.harness`.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import platform
import resource
import statistics
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from hub.memory import loaded_torch


@dataclass
class Case:
    name: str
    setup: Callable[[], object]
    naive: Callable[[object], object]
    hub: Callable[[object], object]
    items: int = 1  # items per call (images, tokens, seconds of audio...) for throughput
    unit: str = "item"
    warmup: int = 1
    repeat: int | None = None  # overrides the command's --repeat (slow cases)
    teardown: Callable[[object], None] | None = None
    notes: str = ""
    goal: str = ""
    metrics: Callable[[object], dict] | None = None  # extra figures read from the context after timing


@dataclass
class Side:
    times_s: list[float] = field(default_factory=list)
    peak_mem_mb: float | None = None

    def summary(self, items: int) -> dict:
        t = sorted(self.times_s)
        p50 = statistics.median(t)
        p90 = t[min(len(t) - 1, int(round(0.9 * (len(t) - 1))))]
        return {"p50_ms": p50 * 1e3, "p90_ms": p90 * 1e3, "items_per_s": items / p50 if p50 else None,
                "runs": len(t), "peak_mem_mb": self.peak_mem_mb}


def _sync() -> None:
    torch = loaded_torch()
    if torch is not None and torch.cuda.is_available():
        torch.cuda.synchronize()


def _reset_peak() -> None:
    torch = loaded_torch()
    if torch is not None and torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def _peak_mb() -> float:
    torch = loaded_torch()
    if torch is not None and torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS (Linux: KiB)


def _timed(fn, ctx) -> float:
    _sync()
    t0 = time.perf_counter()
    fn(ctx)
    _sync()
    return time.perf_counter() - t0


def time_sides(naive, hub, ctx, warmup: int, repeat: int) -> tuple[Side, Side]:
    """Warm up both sides, then alternate naive and hub calls so that load drifts hit both equally.

    Peak memory is read per side on CUDA (reset before each side's calls); on CPU it is the process's peak RSS.
    """
    for _ in range(warmup):
        naive(ctx)
        hub(ctx)
    sides = (Side(), Side())
    peaks = [0.0, 0.0]
    for _ in range(repeat):
        for i, fn in enumerate((naive, hub)):
            _reset_peak()
            sides[i].times_s.append(_timed(fn, ctx))
            peaks[i] = max(peaks[i], _peak_mb())
    for side, peak in zip(sides, peaks):
        side.peak_mem_mb = peak
    return sides


def run_case(case: Case, repeat: int = 5) -> dict:
    t0 = time.perf_counter()
    ctx = case.setup()
    load_s = time.perf_counter() - t0
    try:
        reps = case.repeat or repeat
        naive_side, hub_side = time_sides(case.naive, case.hub, ctx, case.warmup, reps)
        naive, hub = naive_side.summary(case.items), hub_side.summary(case.items)
        extra = case.metrics(ctx) if case.metrics else {}
    finally:
        if case.teardown:
            case.teardown(ctx)
    return {"case": case.name, "load_s": load_s, "items": case.items, "unit": case.unit, "naive": naive, "hub": hub,
            "speedup": naive["p50_ms"] / hub["p50_ms"] if hub["p50_ms"] else None, "notes": case.notes,
            "goal": case.goal, **({"metrics": extra} if extra else {})}


def discover() -> list[Case]:
    import bench

    cases = []
    for mod in sorted(pkgutil.iter_modules(bench.__path__), key=lambda m: m.name):
        if mod.name.startswith("cases_"):
            cases.extend(importlib.import_module(f"bench.{mod.name}").cases())
    return cases


def environment() -> dict:
    from hub.device import cpu_info

    cpu = cpu_info()
    env = {"python": platform.python_version(), "machine": platform.machine(), "cpu": cpu["name"],
           "cpu_flags": cpu["flags"], "cpus": __import__("os").cpu_count()}
    torch = loaded_torch()
    if torch is not None:
        env["torch"] = torch.__version__
        env["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return env


def markdown(results: list[dict]) -> str:
    rows = ["| case | naive p50 ms | hub p50 ms | speedup | hub p90 ms | hub items/s | load s | notes |",
            "|---|---|---|---|---|---|---|---|"]
    for r in results:
        if "error" in r:
            rows.append(f"| {r['case']} | error: {r['error']} | | | | | | |")
            continue
        n, h = r["naive"], r["hub"]
        extra = "".join(f"; {k} {v}" for k, v in r.get("metrics", {}).items())
        rows.append(f"| {r['case']} | {n['p50_ms']:.2f} | {h['p50_ms']:.2f} | {r['speedup']:.2f}x | {h['p90_ms']:.2f} "
                    f"| {h['items_per_s']:.1f} {r['unit']}/s | {r['load_s']:.2f} | {r['notes']}{extra} |")
    return "\n".join(rows)


def main(prefixes: list[str] | None = None, repeat: int = 5, out: str = "bench/results", list_only: bool = False) -> int:
    cases = [c for c in discover() if not prefixes or any(c.name.startswith(p) for p in prefixes)]
    if list_only:
        print("\n".join(c.name for c in cases))
        return 0
    if not cases:
        print(f"No benchmark case matches {prefixes}; `demohub bench --list` shows them.", file=sys.stderr)
        return 2
    results = []
    for c in cases:
        print(f"== {c.name}", flush=True)
        try:
            results.append(run_case(c, repeat))
        except Exception as e:  # one broken case must not hide the others' numbers; it is reported, not dropped
            traceback.print_exc()
            results.append({"case": c.name, "error": f"{type(e).__name__}: {e}"})
        print(markdown(results[-1:]), flush=True)
    report = {"when": time.strftime("%Y-%m-%dT%H:%M:%S"), "env": environment(), "results": results}
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out_dir / f"bench-{stamp}.json").write_text(json.dumps(report, indent=2))
    (out_dir / f"bench-{stamp}.md").write_text(markdown(results) + "\n")
    print(f"\n{json.dumps(report['env'])}\n{markdown(results)}\nWrote {out_dir}/bench-{stamp}.json")
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("cases", nargs="*"), p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--out", default="bench/results"), p.add_argument("--list", action="store_true")
    a = p.parse_args()
    sys.exit(main(a.cases, a.repeat, a.out, a.list))
