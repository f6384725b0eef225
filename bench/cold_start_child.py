"""The fresh process of the cold-start bench (bench/cases_cold_start.py): one hub, one demo, one first click.

`python -m bench.cold_start_child TARGET` builds the app the way `demohub serve` does (settings from the
environment, `create_app` for the target's demo: gradio imported, no torch, no weight), prepares the request, says
"ready" and waits. On "go" it times click -> result through the manager (the engine module's import, the load with
its stages from hub.loadtimes, the work), with the peak RSS from the click on (VmHWM after `clear_refs`), at the load's end and at the result, and
answers one JSON line. "warm" runs the same request again (timed); "quit" ends it. The protocol goes to the original
stdout; anything the libraries print goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from hub.assets import package_file

BUS = package_file("ultralytics", "assets", "bus.jpg")
SPEECH = package_file("gradio", "media_assets", "audio", "cate_blanch.mp3")


# ---- the targets: demo, method, request (built before the click) ---------------------------------------------------


def _yolo():
    from demos.yolo_detect.types import DetectRequest

    return DetectRequest(str(BUS))


def _whisper():
    from demos.whisper_asr.types import Options, TranscribeRequest
    from hub.media.audio import load_audio

    return TranscribeRequest(load_audio(str(SPEECH), max_seconds=30), Options(beam_size=1, language="en"))


def _clip():
    from demos.clip_zero_shot.types import ClassifyRequest

    return ClassifyRequest((str(BUS),), ("a bus", "a cat", "a street"))


def _sam():
    from demos.sam_segment.engine import prepare_image  # what the tab does before the click reaches the model
    from demos.sam_segment.types import SegmentRequest

    return SegmentRequest(prepare_image(str(BUS)), [[400.0, 500.0]], [1])


def _chat():
    from demos.llm_chat.engine import check_params
    from demos.llm_chat.types import ChatRequest

    return ChatRequest(({"role": "user", "content": "What is the capital of France?"},),
                       check_params(temperature=0, max_new_tokens=16))


def _tts():
    from demos.tts.types import SpeakRequest

    return SpeakRequest("Hello, this is the first sentence.", format="wav")


def _vision():
    from demos.vision.types import DescribeRequest, Sampling

    return DescribeRequest((str(BUS),), sampling=Sampling(max_new_tokens=16))


def _sd():
    from demos.stable_diffusion.types import GenerateRequest, Settings

    # SD-Turbo's own settings, also for the folder target (a local folder carries no listed model's settings)
    return GenerateRequest("a red fox in the snow", settings=Settings(seed=1, steps=1, guidance=0.0, width=512,
                                                                      height=512, step_items=False))


def _upscale():
    import tempfile

    from PIL import Image

    from demos.upscale.types import UpscaleRequest

    # a 128 px crop of the bus, 4x: Real-ESRGAN's full network on a CPU takes seconds for it, one tile
    path = Path(tempfile.mkdtemp(prefix="cold-upscale-")) / "crop.png"
    Image.open(BUS).convert("RGB").crop((300, 400, 428, 528)).save(path)
    return UpscaleRequest(str(path), scale=4)


REQUESTS = {"yolo_detect": ("detect", _yolo), "whisper_asr": ("transcribe", _whisper),
            "clip_zero_shot": ("classify", _clip), "sam_segment": ("segment", _sam), "llm_chat": ("chat", _chat),
            "tts": ("speak", _tts), "vision": ("describe", _vision), "stable_diffusion": ("txt2img", _sd),
            "upscale": ("upscale", _upscale)}


# ---- measuring ----------------------------------------------------------------------------------------------------


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux: clear_refs 5); False where the kernel refuses."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _run(manager, demo: str, method: str, request) -> tuple[float | None, int]:
    """Run the request to its end; (seconds to its first item, items)."""
    t0, first, n = time.perf_counter(), None, 0
    for item in manager.stream(demo, method, request):
        if first is None and type(item).__name__ != "Progress":
            first = time.perf_counter() - t0
        n += 1
    return first, n


def cold(manager, demo: str, method: str, request) -> dict:
    """The first click, timed: the engine module's import, the load (with its stages) and the work."""
    peak_reset = _reset_peak()
    rss0 = _status_kb("VmRSS")
    t0 = time.perf_counter()
    manager.work(demo)  # the engine module (what the first click imports before the load)
    t_import = time.perf_counter() - t0
    first, items = _run(manager, demo, method, request)
    total = time.perf_counter() - t0
    choice = manager.choice(demo)
    times = manager._entries[(demo, choice.id)].times  # the bench reads the load's record (hub.loadtimes)
    (row,) = [r for r in manager.status() if r["demo"] == demo]
    load_s = times.seconds
    return {"cold_s": total, "first_item_s": t_import + (first or 0.0), "items": items,
            "stages": {"import (engine module)": t_import, **{f"load: {k}": v for k, v in times.stages.items()},
                       "load: other": times.other(), "work": max(0.0, total - t_import - load_s)},
            "load_s": load_s, "bytes_read": times.bytes_read, "files": sorted(times.files),
            "status": times.status(), "model_bytes": row["bytes"], "dtype": row["dtype"], "model": row["display"],
            "random": choice.source == "random", "rss_before_mb": rss0 / 1024,
            "rss_after_mb": _status_kb("VmRSS") / 1024,
            "peak_rss_mb": _status_kb("VmHWM") / 1024 if peak_reset else None,
            "load_peak_rss_mb": times.peak_rss_kb / 1024 if peak_reset and times.peak_rss_kb else None}


def warm(manager, demo: str, method: str, request) -> dict:
    t0 = time.perf_counter()
    first, _ = _run(manager, demo, method, request)
    return {"warm_s": time.perf_counter() - t0, "warm_first_item_s": first}


def weight_files(manager, demo: str) -> list[str]:
    """The files of the model's weights on disk (none for random weights)."""
    from hub.loadtimes import files_under
    from hub.weights import resolve

    choice = manager.choice(demo)
    if choice.source == "random":
        return []
    weights = resolve(manager.spec(demo), choice, manager.settings)
    return [str(p) for p in files_under(weights.path)] if weights.path else []


def main(demo: str) -> int:
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # library prints go to stderr; stdout carries only the protocol
    import logging

    from hub.app import create_app
    from hub.settings import Settings

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    blocks = create_app(Settings.load(), demos=(demo,))
    manager = blocks.hub_manager
    method, build = REQUESTS[demo]
    request = build()

    def say(obj: dict) -> None:
        proto.write(json.dumps(obj) + "\n")

    say({"ready": True, "files": weight_files(manager, demo), "pid": os.getpid()})
    for line in sys.stdin:
        cmd = line.strip()
        try:
            if cmd == "go":
                say(cold(manager, demo, method, request))
            elif cmd == "warm":
                say(warm(manager, demo, method, request))
            elif cmd == "quit":
                break
        except Exception as e:  # reported to the parent, which records the case as failed
            import traceback

            traceback.print_exc()
            say({"error": f"{type(e).__name__}: {e}"})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
