"""Record a fixed-shape GPU call once as a CUDA graph and replay it (torch imported only when used).

Eager PyTorch at batch 1 is bound by kernel launches on the CPU; replaying a recorded graph launches the whole
call at once (../shared/GPU.md measured one SD UNet step 6x faster). Inputs must keep their shape and dtype.
"""

from __future__ import annotations

import threading


class StaticGraph:
    """`fn(x)` recorded with `example` (a fresh tensor, kept as the static input); calls copy into it and replay.

    Warm-up runs on a side stream first (as torch.cuda.graphs requires, and so cuDNN/cuBLAS pick their kernels);
    `pool` shares memory with other graphs of the same model. Replays are serialised (the buffers are shared).
    `nbytes`: GPU memory the recording kept (its pool and buffers), for the model manager's accounting.
    """

    def __init__(self, fn, example, pool=None, warmup: int = 3):
        import torch

        torch.cuda.empty_cache()  # so the difference below is what the recording keeps, not freed cache
        before = torch.cuda.memory_reserved()
        self.x = example
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.no_grad():
            for _ in range(warmup):
                fn(self.x)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.no_grad(), torch.cuda.graph(self.graph, pool=pool):
            self.y = fn(self.x)
        self.pool = self.graph.pool()
        torch.cuda.empty_cache()
        self.nbytes = max(0, torch.cuda.memory_reserved() - before)
        self._lock = threading.Lock()

    def __call__(self, x):
        with self._lock:
            self.x.copy_(x)
            self.graph.replay()
            return self.y.clone()
