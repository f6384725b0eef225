"""The GPU fast paths: the forward pass replayed from CUDA graphs, and the letterbox done on the device.

Both are used only on CUDA (see `Detector`); the CPU path is `LetterBox` + the eager model in engine.py.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .spec import MAX_GRAPHS


class GraphCache:
    """CUDA graphs of one model's forward pass, one per input shape, least recently used dropped past `MAX_GRAPHS`.

    Not thread-safe on its own: the Detector runs the forward pass under its lock (graphs share static buffers)."""

    def __init__(self, net, device, torch_dtype, eager):
        self.net, self.device, self.torch_dtype, self._eager = net, device, torch_dtype, eager
        self._graphs: OrderedDict[tuple, dict] = OrderedDict()

    def clear(self) -> None:
        self._graphs.clear()

    def __contains__(self, shape: tuple) -> bool:
        return shape in self._graphs

    def replay(self, x):
        """The model's output for `x` (a copy: the graph's output buffer is reused by the next replay)."""
        import torch

        g = self.get(tuple(x.shape))
        with torch.cuda.device(self.device):
            g["input"].copy_(x)
            g["graph"].replay()
            return g["output"].clone()

    def get(self, shape: tuple) -> dict:
        """The graph for `shape`, captured now if it is new (three eager warm-up passes first)."""
        import torch

        if shape in self._graphs:
            self._graphs.move_to_end(shape)
            return self._graphs[shape]
        with torch.inference_mode(), torch.cuda.device(self.device):  # graphs capture on the current device
            static = torch.zeros(shape, device=self.device, dtype=self.torch_dtype)
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for _ in range(3):  # cuDNN picks its kernels, the head builds its anchors for this shape
                    self._eager(static)
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                out = self._eager(static)
        head = self.net.model[-1]
        # The graph reads the anchors tensor that existed at capture; the head replaces (not updates) it when the
        # shape changes, so keep this one alive for as long as the graph lives.
        entry = {"graph": graph, "input": static, "output": out,
                 "keep": (getattr(head, "anchors", None), getattr(head, "strides", None))}
        self._graphs[shape] = entry
        while len(self._graphs) > MAX_GRAPHS:
            self._graphs.popitem(last=False)
        return entry


def letterbox_on_device(engine, images: list[np.ndarray], imgsz: int):
    """The letterbox of `LetterBox(auto=False)` done on the GPU: upload uint8, resize, pad with 114 gray.

    The input is always imgsz x imgsz and a video batch is padded to the engine's batch size, so CUDA graphs see
    only a few shapes."""
    import torch
    import torch.nn.functional as F

    n = len(images)
    rows = engine.video_batch if 1 < n <= engine.video_batch and engine.use_graphs else n
    x = torch.full((rows, 3, imgsz, imgsz), 114 / 255, device=engine.device, dtype=engine.torch_dtype)
    groups: dict[tuple, list[int]] = {}
    for i, im in enumerate(images):
        groups.setdefault(im.shape, []).append(i)
    for (h, w, _), idx in groups.items():
        src = torch.from_numpy(np.stack([images[i] for i in idx])).to(engine.device, non_blocking=True)
        src = src.permute(0, 3, 1, 2).to(engine.torch_dtype).div_(255)
        r = min(imgsz / h, imgsz / w)
        nh, nw = max(round(h * r), 1), max(round(w * r), 1)
        if (nh, nw) != (h, w):
            src = F.interpolate(src, size=(nh, nw), mode="bilinear", align_corners=False)
        top, left = round((imgsz - nh) / 2 - 0.1), round((imgsz - nw) / 2 - 0.1)
        x[idx, :, top:top + nh, left:left + nw] = src
    return x
