"""Where a bench case's hub side spends its time: wall p50 of both sides, cProfile of the hub side, and on CUDA the
GPU kernel totals from torch.profiler (GPU time far below wall time means the host is the bottleneck).

Run: `python -m bench.profile_case CASE [CASE ...] [--calls 20] [--out FILE]` (full case names, `demohub bench --list`).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import time

from bench.harness import _sync, discover


def _wall_ms(fn, ctx, n: int) -> float:
    times = []
    for _ in range(n):
        _sync()
        t0 = time.perf_counter()
        fn(ctx)
        _sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def profile(case, calls: int, out) -> None:
    ctx = case.setup()
    try:
        for _ in range(max(case.warmup, 3)):
            case.hub(ctx)
        hub, naive = _wall_ms(case.hub, ctx, calls), _wall_ms(case.naive, ctx, min(calls, 5))
        print(f"## {case.name}: hub p50 {hub:.2f} ms, naive p50 {naive:.2f} ms", file=out)
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(calls):
            case.hub(ctx)
            _sync()
        prof.disable()
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(35)
        print("\n".join(line for line in text.getvalue().splitlines() if line.strip()), file=out)
        import torch

        if torch.cuda.is_available():
            from torch.profiler import ProfilerActivity
            from torch.profiler import profile as torch_profile

            with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as p:
                for _ in range(5):
                    case.hub(ctx)
                    _sync()
            print(p.key_averages().table(sort_by="self_device_time_total", row_limit=15, max_name_column_width=60),
                  file=out)
    finally:
        if case.teardown:
            case.teardown(ctx)
    out.flush()


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("cases", nargs="+"), p.add_argument("--calls", type=int, default=20), p.add_argument("--out")
    a = p.parse_args(argv)
    known = {c.name: c for c in discover()}
    missing = [n for n in a.cases if n not in known]
    if missing:
        print(f"Unknown case(s) {missing}; `demohub bench --list` shows them.", file=sys.stderr)
        return 2
    out = open(a.out, "w") if a.out else sys.stdout
    for name in a.cases:
        profile(known[name], a.calls, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
