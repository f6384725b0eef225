"""SAM 2.1: the hub's path vs the naive transformers calls, same weights, same image / clip, same clicks.

- sam2-click-<arch>: one click on an image already seen. naive = what a simple demo does per click with transformers:
  `Sam2Processor(images, points)` + `Sam2Model(pixel_values, ...)` (the Hiera encoder every click) +
  `post_process_masks`. hub = the tab's path: the embedding from the engine's per-session store, prompt encoder +
  decoder only.
- sam2-embed-<arch>: encoding a new image (naive: `Sam2Model.get_image_embeddings` on the processor's pixels; hub:
  `Sam2Engine.embed`; expect ~1x on the CPU, where both are fp32). Compare with sam_segment/embed-mobile_sam: the
  CPU default stays MobileSAM while this is slower.
- sam2-track-<arch>: tracking one clicked object through a 640x480 clip of 8 frames. naive = transformers' documented
  offline path: `init_video_session(video=<all frames>)` + `propagate_in_video_iterator` (every frame decoded and
  kept as 1024x1024 float tensors first); hub = `track_video` (streamed frame by frame, overlay MP4 + mask PNGs
  written as it goes). unit = clip.
Random weights (speed does not depend on weight values): on the CPU Hiera-T at its real size, on a GPU Hiera-B+ in
bf16 (set SAM2_BENCH_ARCH=hiera_t|hiera_s|hiera_b+|hiera_l to choose).
"""

from __future__ import annotations

import os

from bench.harness import Case

FRAMES = 8


def _arch() -> str:
    import torch

    return os.environ.get("SAM2_BENCH_ARCH") or ("hiera_b+" if torch.cuda.is_available() else "hiera_t")


def _setup(arch: str):
    import tempfile
    from pathlib import Path
    from types import SimpleNamespace

    import numpy as np
    import torch

    from bench.cases_sam_segment import _image
    from demos.sam_segment import engine as sam, sam2
    from hub.samples import _video

    cuda = torch.cuda.is_available()
    weights = SimpleNamespace(source="random", choice=SimpleNamespace(options={"arch": arch}))
    engine = sam2.load(weights, "cuda" if cuda else "cpu", "bfloat16" if cuda else "float32")
    img = _image()
    engine.embedding("bench", sam.prepare_image(img))
    folder = Path(tempfile.mkdtemp(prefix="sam2-bench-"))
    _video(folder / "clip.mp4", np.asarray(img.resize((640, 480))), frames=FRAMES, rate=FRAMES)
    return {"sam": sam, "engine": engine, "img": img, "rgb": np.asarray(img), "folder": folder,
            "clip": str(folder / "clip.mp4"), "point": [[520.0, 400.0]], "label": [1]}


def _naive_click(c):
    import torch

    e = c["engine"]
    inputs = e.image_processor(images=c["rgb"], input_points=[[c["point"]]], input_labels=[[c["label"]]],
                               return_tensors="pt").to(e.device)
    with torch.inference_mode():
        out = e.image_model(pixel_values=inputs["pixel_values"].to(e.torch_dtype),
                            input_points=inputs["input_points"].to(e.torch_dtype),
                            input_labels=inputs["input_labels"], multimask_output=True)
    masks = e.image_processor.post_process_masks(out.pred_masks.float().cpu(), inputs["original_sizes"].cpu())[0]
    return masks[0, int(out.iou_scores[0, 0].argmax())]


def _hub_click(c):
    sam = c["sam"]
    emb, hit = c["engine"].embedding("bench", sam.prepare_image(c["img"]))
    assert hit, "a click must never re-encode the image"
    return sam.segment(c["engine"], emb, c["point"], c["label"]).masks[0]


def _naive_embed(c):
    import torch

    e = c["engine"]
    pixels = e.image_processor(images=c["rgb"], return_tensors="pt")["pixel_values"].to(e.device, e.torch_dtype)
    with torch.inference_mode():
        return e.image_model.get_image_embeddings(pixels)


def _hub_embed(c):
    return c["engine"].embed(c["sam"].prepare_image(c["img"])).features


def _naive_track(c):
    import av
    import torch

    e = c["engine"]
    with av.open(c["clip"]) as f:
        frames = [fr.to_ndarray(format="rgb24") for fr in f.decode(video=0)]
    session = e.video_processor.init_video_session(video=frames, inference_device=e.device, dtype=e.torch_dtype)
    e.video_processor.add_inputs_to_inference_session(session, frame_idx=0, obj_ids=1,
                                                      input_points=[[[[320.0, 240.0]]]], input_labels=[[[1]]])
    masks = []
    with torch.inference_mode():
        e.video_model(inference_session=session, frame_idx=0)
        for out in e.video_model.propagate_in_video_iterator(session):
            masks.append(e.video_processor.post_process_masks([out.pred_masks.float().cpu()],
                                                              original_sizes=[[480, 640]])[0])
    return masks


def _hub_track(c):
    from demos.sam_segment.video import track_video

    *_, result = track_video(c["engine"], c["clip"], c["folder"] / "out", [[320.0, 240.0]], [1], None, FRAMES)
    assert result.frames == FRAMES
    return result


def cases() -> list[Case]:
    arch = _arch()
    memo = {}

    def setup():
        if arch not in memo:
            memo[arch] = _setup(arch)
        return memo[arch]

    def teardown(c):
        import shutil

        shutil.rmtree(c["folder"], ignore_errors=True)
        memo.clear()

    note = f"random weights at SAM 2.1 {arch}'s real size, bus.jpg at 1024x768"
    return [
        Case(f"sam_segment/sam2-click-{arch}", setup, _naive_click, _hub_click, unit="click", repeat=3,
             notes=f"naive: processor + full Sam2Model per click; hub: cached embedding + decoder; {note}",
             goal="CPU: <= 150 ms per click"),
        Case(f"sam_segment/sam2-embed-{arch}", setup, _naive_embed, _hub_embed, unit="image", repeat=3,
             notes=f"naive: get_image_embeddings; hub: Sam2Engine.embed; {note}"),
        Case(f"sam_segment/sam2-track-{arch}", setup, _naive_track, _hub_track, unit="clip", repeat=1, warmup=0,
             notes=f"{FRAMES} frames at 640x480; naive: whole-clip session + propagate; hub: streamed, files "
                   "written; " + note, teardown=teardown),
    ]
