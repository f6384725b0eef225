"""CLIP's GPU fast paths: open_clip's eval transform run on a uint8 tensor on the GPU, and the image encoder
recorded as CUDA graphs for small batches. torch/torchvision are imported only when used."""

from __future__ import annotations

GRAPH_BATCHES = (1, 2, 4, 8)  # CUDA-graph buckets for small image batches; larger batches run eagerly


def tensor_transforms(preprocess) -> list | None:
    """open_clip's eval transform as steps that run on a uint8 CHW tensor (on any device): its Resize, CenterCrop
    and Normalize objects themselves, with ToTensor's (MaybeToTensor's) scaling to [0, 1] in between. None if the
    transform holds a step that only works on PIL images (that model keeps the PIL path)."""
    from torchvision import transforms as T

    steps = []
    for t in getattr(preprocess, "transforms", [None]):
        if isinstance(t, (T.Resize, T.CenterCrop, T.Normalize)):
            steps.append(t)
        elif isinstance(t, T.ToTensor):
            steps.append("to_float")
        elif getattr(t, "__name__", "") == "_convert_to_rgb" or getattr(t, "mode", None) == "RGB":
            continue  # open_clip's RGB conversion (a function, or MaybeConvertMode): images reach here as RGB
        else:
            return None
    return steps


def apply_tensor_transforms(steps: list, image, device: str):
    """One RGB PIL image through `tensor_transforms` steps on `device`: (3, H, W) float32, normalised."""
    import numpy as np
    import torch

    x = torch.from_numpy(np.array(image, dtype=np.uint8)).to(device, non_blocking=True).permute(2, 0, 1)
    for t in steps:  # Resize/CenterCrop act on uint8 (rounded after resizing, as PIL does), then scale
        x = x.float().div_(255) if t == "to_float" else t(x)
    return x


class GraphedEncoder:
    """`model.encode_image` recorded once per batch bucket as a CUDA graph; inputs are padded to the bucket."""

    def __init__(self, model, batches, shape, dtype, device):
        import torch

        from hub.cuda_graph import StaticGraph

        self.graphs, pool = {}, None
        for b in sorted(batches, reverse=True):  # largest first, sharing one memory pool
            g = StaticGraph(lambda x: model.encode_image(x, normalize=True),
                            torch.zeros((b, *shape), dtype=dtype, device=device), pool=pool)
            pool = g.pool
            self.graphs[b] = g
        self.buckets = sorted(self.graphs)

    @property
    def nbytes(self) -> int:
        return sum(g.nbytes for g in self.graphs.values())

    def __call__(self, x):
        """Embeddings of `x` from the smallest bucket that holds it; None when the batch is larger than every one."""
        n = x.shape[0]
        b = next((b for b in self.buckets if b >= n), None)
        if b is None:
            return None
        if n < b:  # pad with zeros to the bucket
            import torch

            x = torch.cat([x, x.new_zeros((b - n, *x.shape[1:]))])
        return self.graphs[b](x)[:n]
