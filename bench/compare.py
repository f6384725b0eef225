"""Before/after: the same benchmark cases from two checkouts of the project, alternating, on this machine.

    python -m bench.compare /path/to/old-checkout . --rounds 2 --repeat 3 CASE-PREFIX ...

Each round runs `python -m bench.harness` once in each checkout (old first, then new), in its own process, with this
interpreter. The table gives each case's hub-side p50 per checkout (the best of the rounds, the least disturbed
figure on a shared machine) and new/old. JSON and the table go to --out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def run_side(checkout: Path, cases: list[str], repeat: int, out: Path) -> dict[str, float]:
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "bench.harness", *cases, "--repeat", str(repeat), "--out", str(out)],
                   cwd=checkout, check=False)
    report = json.loads(sorted(out.glob("bench-*.json"))[-1].read_text())
    return {r["case"]: r["hub"]["p50_ms"] for r in report["results"] if "hub" in r}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("old"), p.add_argument("new"), p.add_argument("cases", nargs="*")
    p.add_argument("--rounds", type=int, default=2), p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", default="bench/results/compare")
    a = p.parse_intermixed_args(argv)
    out = Path(a.out).resolve() / time.strftime("%Y%m%d-%H%M%S")  # absolute: each side runs in its checkout
    runs: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    for r in range(a.rounds):
        for side in ("old", "new"):
            runs[side].append(run_side(Path(getattr(a, side)).resolve(), a.cases, a.repeat, out / f"{side}-{r}"))
    cases = sorted(set().union(*runs["old"], *runs["new"]))
    best = {side: {c: min(x[c] for x in runs[side] if c in x) for c in cases if any(c in x for x in runs[side])}
            for side in runs}
    rows = ["| case | old hub p50 ms | new hub p50 ms | new/old |", "|---|---|---|---|"]
    for c in cases:
        o, n = best["old"].get(c), best["new"].get(c)
        ratio = f"{n / o:.2f}" if o and n else "n/a"
        rows.append(f"| {c} | {o:.1f} | {n:.1f} | {ratio} |" if o and n else f"| {c} | {o} | {n} | n/a |")
    table = "\n".join(rows)
    cpu = _cpu()
    (out / "compare.json").write_text(json.dumps({"cpu": cpu, "rounds": runs, "best": best}, indent=2))
    (out / "compare.md").write_text(f"CPU: {cpu}\n\n{table}\n")
    print(f"CPU: {cpu}\n\n{table}\nWrote {out}/compare.md")
    return 0


def _cpu() -> str:
    from hub.device import cpu_info

    cpu = cpu_info()
    return f"{cpu['name']} ({', '.join(cpu['flags'])})" if cpu["flags"] else cpu["name"]


if __name__ == "__main__":
    sys.exit(main())
