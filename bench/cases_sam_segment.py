"""SAM: the hub's path vs the naive segment-anything calls, same model weights, same image, same clicks.

- click-<model>: one click on an image already seen. naive = what a simple demo does per click:
  `SamPredictor.set_image` (the encoder) + `predict`. hub = the tab's path: hash the image, find its embedding in
  the engine's per-session store, run only the prompt encoder + mask decoder (never the encoder).
- embed-<model>: encoding a new image. naive = `SamPredictor.set_image` in fp32. hub = `SamEngine.embed`
  (on a GPU the encoder runs in bf16; on the CPU both are fp32, so expect ~1x).
- everything-<model>: "segment everything" on an image already seen. naive = `SamAutomaticMaskGenerator.generate`
  (encodes again); hub = `segment_everything` on the cached embedding (+ making masks disjoint).
Models are random (speed does not depend on weight values, shared/GPU.md): on a GPU, SAM ViT-B at real size in
bf16; on the CPU the tiny model and MobileSAM (the CPU default) at real size. ViT-B on the CPU takes about a minute
per image encoding: set SAM_BENCH_VIT_B_ON_CPU=1 to add it (one repetition).
The image is ultralytics' bus.jpg resized to 1024x768.
"""

from __future__ import annotations

import os

from bench.harness import Case


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _image():
    import importlib.util
    from pathlib import Path

    from PIL import Image

    root = Path(importlib.util.find_spec("ultralytics").submodule_search_locations[0])
    return Image.open(root / "assets" / "bus.jpg").convert("RGB").resize((1024, 768))


def _setup(arch_name: str):
    import numpy as np
    import torch
    from segment_anything import SamPredictor

    from demos.sam_segment import arch, engine as sam, everything

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        naive_model = arch.build(arch_name).to(device)  # fp32, as a user builds it
    hub_model = arch.build(arch_name)
    hub_model.load_state_dict(naive_model.state_dict())  # the same numbers on both sides
    engine = sam.SamEngine(hub_model, device, "bfloat16" if cuda else "float32", arch_name)
    img = _image()
    rgb = np.asarray(img)
    engine.embedding("bench", sam.prepare_image(img))  # the tab encodes on upload / first click
    return {"sam": sam, "everything": everything, "engine": engine, "img": img, "rgb": rgb,
            "predictor": SamPredictor(naive_model), "naive_model": naive_model,
            "point": np.array([[520.0, 400.0]]), "label": np.array([1])}


def _naive_click(c):
    p = c["predictor"]
    p.set_image(c["rgb"])
    masks, scores, _ = p.predict(point_coords=c["point"], point_labels=c["label"], multimask_output=True)
    return masks[scores.argmax()]


def _hub_click(c):
    sam = c["sam"]
    emb, hit = c["engine"].embedding("bench", sam.prepare_image(c["img"]))
    assert hit, "a click must never re-encode the image"
    return sam.segment(c["engine"], emb, c["point"], c["label"]).masks[0]


def _naive_embed(c):
    c["predictor"].set_image(c["rgb"])
    return c["predictor"].features


def _hub_embed(c):
    return c["engine"].embed(c["sam"].prepare_image(c["img"])).features


def _naive_everything(c, pps):
    from segment_anything import SamAutomaticMaskGenerator

    return SamAutomaticMaskGenerator(c["naive_model"], points_per_side=pps).generate(c["rgb"])


def _hub_everything(c, pps):
    sam = c["sam"]
    pic = sam.prepare_image(c["img"])
    emb, _ = c["engine"].embedding("bench", pic)
    return c["everything"].segment_everything(c["engine"], emb, pic, points_per_side=pps)


def _cases_for(arch: str, label: str, repeat: int | None, everything_pps: int | None, warmup: int = 1) -> list[Case]:
    memo = {}

    def setup():  # one model build per architecture, shared by its cases
        if arch not in memo:
            memo[arch] = _setup(arch)
        return memo[arch]

    note = "random weights, bus.jpg at 1024x768"
    cases = [
        Case(f"sam_segment/click-{label}", setup, _naive_click, _hub_click, unit="click", repeat=repeat,
             warmup=warmup, notes=f"naive: set_image+predict per click; hub: cached embedding + decoder; {note}",
             goal="GPU vit_b: <= 3 ms per click; CPU default: <= 100 ms"),
        Case(f"sam_segment/embed-{label}", setup, _naive_embed, _hub_embed, unit="image", repeat=repeat,
             warmup=warmup, notes=f"naive fp32 set_image; hub encoder bf16 on GPU, fp32 on CPU; {note}",
             goal="GPU vit_b: <= 12 ms; CPU default: <= 5 s"),
    ]
    if everything_pps:
        cases.append(Case(f"sam_segment/everything-{label}", setup, lambda c: _naive_everything(c, everything_pps),
                          lambda c: _hub_everything(c, everything_pps), unit="image", repeat=repeat, warmup=warmup,
                          notes=f"points_per_side={everything_pps}; hub reuses the embedding; {note}",
                          teardown=lambda c: memo.clear()))
    else:
        cases[-1].teardown = lambda c: memo.clear()
    return cases


def cases() -> list[Case]:
    if _cuda():
        return _cases_for("vit_b", "vit_b", None, 32)
    out = _cases_for("tiny", "tiny", None, 16) + _cases_for("vit_t", "mobile_sam", 3, None)
    if os.environ.get("SAM_BENCH_VIT_B_ON_CPU") == "1":
        out += _cases_for("vit_b", "vit_b", 1, None, warmup=0)
    return out
