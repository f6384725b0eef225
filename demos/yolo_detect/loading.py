"""Loading YOLO: official weights (native, downloaded into the cache), a local .pt or the architecture with random
weights, into the engine's `Detector`; on a CPU the network then runs through OpenVINO (openvino.py). The load's
stages (import, read, build, convert) are marked for the Models tab and the cold-start bench (hub.loadtimes)."""

from __future__ import annotations

import logging
from pathlib import Path

from hub import loadtimes
from hub.errors import UserError, WeightsUnavailable
from hub.spec import ModelChoice
from hub.ultralytics_env import import_ultralytics

from .spec import COCO_NAMES, SPEC

log = logging.getLogger("demohub")


def _weight_file(choice: ModelChoice) -> str:
    if choice.files:
        return choice.files[0]
    return choice.id if choice.id.endswith(".pt") else f"{choice.id}.pt"


def fetch(weights) -> Path:
    """Download a native model (an official Ultralytics release asset) into `weights.path`
    (`<cache>/native/yolo_detect/`), checking its pinned hash."""
    from hub.weights import download_error, verify_file

    import_ultralytics(weights.cache_dir)
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES, attempt_download_asset

    name = _weight_file(weights.choice)
    if name not in GITHUB_ASSETS_NAMES:
        raise UserError(f"{weights.choice.id!r} is not an Ultralytics model name; use yolo11n, yolo11s, yolo11m, "
                        "yolov8n (or another official name), or the path to your own .pt file.")
    target = Path(weights.path) / name
    if not target.exists():
        try:
            attempt_download_asset(str(target))  # an absolute path: the library downloads exactly there
        except Exception as e:
            raise download_error(SPEC, weights.choice, target.parent, e) from None
        if not target.exists():
            raise WeightsUnavailable(f"Downloading {name} produced no file; check the connection and "
                                     f"run `demohub fetch {SPEC.name}` again.")
    verify_file(target, weights.choice.sha256, SPEC.name)
    return target


def load(weights, device: str, dtype: str, options=None):
    """Build the engine: official weights (native), a local .pt (path) or the architecture with random weights.

    options: the demo's parsed options (`cuda_graphs`, `video_batch`, `max_video_frames`); None takes the declared
    defaults."""
    from hub.options import defaults

    from . import DEMO

    from .engine import Detector

    options = options if options is not None else defaults(DEMO)
    with loadtimes.stage("import"):
        import_ultralytics(weights.cache_dir)
        from ultralytics import YOLO

    if weights.is_random:
        with loadtimes.stage("build"):
            yolo = _random_yolo(YOLO, weights.choice)
    elif weights.source == "native":
        path = fetch(weights)
        loadtimes.read_files([path])
        with loadtimes.stage("build"):
            yolo = YOLO(str(path), task="detect")
    else:
        yolo = _local_yolo(YOLO, Path(weights.path))
    if yolo.task != "detect":
        raise UserError(f"{weights.choice.display} is a YOLO {yolo.task} model; this tab runs detection models "
                        "(yolo11n.pt, yolov8s.pt, ...). Pick a detection checkpoint.")
    with loadtimes.stage("build"):
        det = Detector(yolo, device, dtype, cuda_graphs=options.cuda_graphs, video_batch=options.video_batch or None)
    det.max_video_frames = options.max_video_frames
    if device == "cpu" and options.openvino:
        from . import openvino

        if openvino.available():
            folder = Path(weights.cache_dir) / "native" / "yolo_detect" / "openvino" / openvino.checkpoint_key(weights)
            try:
                net = openvino.OpenVinoNet(det.net, folder)
                # OpenVINO's own cache of the compiled model beside the IR: later loads import it instead of
                # compiling (0.7-1.4 s -> 0.15-0.4 s on 2 vCPUs); it checks the model and version itself
                net.core.set_property({"CACHE_DIR": str(net.xml.parent.with_name(net.xml.parent.name + "-compiled"))})
                with loadtimes.stage("convert"):
                    net.compiled()  # converted (once) and compiled now, not in a request
                det.openvino, det.weights_format = net, f"float32 (OpenVINO {net.version})"
            except Exception as e:  # a network OpenVINO cannot convert: torch still runs it
                log.warning("OpenVINO could not take %s (%s: %s); it runs on torch.", weights.choice.display,
                            type(e).__name__, str(e)[:300])
    return det


def _random_yolo(YOLO, choice: ModelChoice):
    config = choice.options.get("config") or f"{Path(_weight_file(choice)).stem}.yaml"
    try:
        yolo = YOLO(config, task="detect", verbose=False)
    except FileNotFoundError:
        raise UserError(f"No architecture config {config!r} ships with ultralytics; pick a listed model.") from None
    if len(yolo.model.names) == len(COCO_NAMES):  # same head as the real COCO models: give it their labels
        yolo.model.names = dict(enumerate(COCO_NAMES))
    return yolo


def _local_yolo(YOLO, path: Path):
    if path.is_dir():
        found = sorted(path.glob("*.pt"))
        if len(found) != 1:
            raise UserError(f"The folder {path.name} should hold exactly one .pt YOLO checkpoint "
                            f"(found {len(found)}).")
        path = found[0]
    if path.suffix != ".pt":
        raise UserError(f"{path.name} is not a PyTorch .pt checkpoint; give the path to a YOLO .pt file.")
    loadtimes.read_files([path])
    try:
        with loadtimes.stage("build"):
            return YOLO(str(path))
    except Exception as e:
        raise UserError(f"{path.name} is not a YOLO checkpoint that ultralytics can load "
                        f"({type(e).__name__}: {str(e)[:200]}).") from e
