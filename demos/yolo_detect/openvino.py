"""The CPU fast path: the detection network run by OpenVINO (optional: `pip install demohub[openvino]`).

OpenVINO's PyTorch frontend converts the loaded (fused) network once per checkpoint and OpenVINO
version, as Ultralytics' own `export(format="openvino", dynamic=True)` does (any batch and size, fp32), into the
cache folder; later loads compile the saved model without converting again. An end-to-end (NMS-free) head such
as YOLO26's is converted with its top-k step inside the graph (300 candidates, as Ultralytics' export). It runs in f32 (OpenVINO would pick bf16
on CPUs that have it) and takes the same letterboxed batches as the torch path; pre- and post-processing (letterbox,
NMS, box scaling) stay Ultralytics' own, so the boxes are those of `predict` (tested on the real YOLO11n).
torch stays the GPU path. Imports openvino only when this path is used.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import threading
import time
from pathlib import Path

from hub.atomic import replacing_folder
from hub.openvino import available as openvino_available
from hub.openvino import telemetry_off

log = logging.getLogger("demohub")


def available() -> bool:
    return openvino_available()


def checkpoint_key(weights) -> str:
    """What identifies the network's weights: the pinned or computed sha256 of the checkpoint, or the random
    architecture's config (random weights are built from seed 0)."""
    choice = weights.choice
    if weights.is_random:
        return f"random-{choice.options.get('config') or choice.id}"
    if choice.sha256:
        return choice.sha256[:16]
    path = Path(weights.path)
    if path.is_dir():
        path = next(iter(sorted(path.glob("*.pt"))), path)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


class OpenVinoNet:
    """Callable like the torch network on a letterboxed (B, 3, H, W) float batch: the raw predictions (B, 4+C, N),
    or for an end-to-end head its top rows (B, 300, 6), for inputs with at least 300 anchor points."""

    def __init__(self, net, folder: Path):
        telemetry_off()
        import openvino as ov

        self.version = ov.__version__.split("-")[0]
        # an end-to-end head converts with its top-k step in the graph: a different network from the NMS one
        self.end2end = bool(getattr(net, "end2end", False))
        head = "-e2e" if self.end2end else ""
        self.net, self.xml = net, Path(folder) / f"openvino-{self.version}{head}" / "model.xml"
        self.core = ov.Core()
        self.model = None
        self.lock = threading.Lock()

    def compiled(self):
        """The compiled model: converted and saved the first time, read from the cache after."""
        with self.lock:
            if self.model is None:
                if not self.xml.is_file():
                    self._convert()
                # f32: on CPUs with bf16 OpenVINO runs bf16 by default, which moved boxes (IoU 0.94 on bus.jpg)
                self.model = self.core.compile_model(str(self.xml), "CPU", {"PERFORMANCE_HINT": "LATENCY",
                                                                            "INFERENCE_PRECISION_HINT": "f32"})
            return self.model

    def _convert(self) -> None:
        """Ultralytics' OpenVINO export with dynamic shapes: the head in export mode (one output tensor, anchors
        computed in the graph for any input size), traced after two dry runs, saved as fp32 IR."""
        import openvino as ov
        import torch

        start = time.perf_counter()
        folder = self.xml.parent
        example = torch.zeros(1, 3, 640, 640)
        net = copy.deepcopy(self.net).float().to(memory_format=torch.contiguous_format)
        for m in net.modules():
            if hasattr(m, "export") and hasattr(m, "format"):
                m.export, m.format, m.dynamic = True, "openvino", True
        if self.end2end:  # the graph keeps this many candidates whatever the request asks (engine.E2E_TOP_K)
            from .engine import E2E_TOP_K

            net.model[-1].max_det = E2E_TOP_K
        from tqdm.auto import tqdm

        with tqdm(total=1, desc=f"Converting YOLO to OpenVINO {self.version} (once)") as bar, \
                torch.inference_mode(False), torch.no_grad(), replacing_folder(folder) as tmp:
            for _ in range(2):
                net(example)
            model = ov.convert_model(net, example_input=example, input=[(-1, 3, -1, -1)])
            ov.save_model(model, str(tmp / "model.xml"), compress_to_fp16=False)
            bar.update(1)
        log.info("YOLO: converted to OpenVINO %s in %.1f s.", self.version, time.perf_counter() - start)

    def __call__(self, x):
        import numpy as np
        import torch

        out = self.compiled()(np.ascontiguousarray(x.float().cpu().numpy()))[0]
        return torch.from_numpy(np.asarray(out))
