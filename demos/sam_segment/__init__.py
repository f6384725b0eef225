"""Segment Anything: click to segment, with the image embedding computed once per image and reused per click.

Models: Meta's SAM ViT-B / ViT-L / ViT-H checkpoints and MobileSAM (a TinyViT image encoder with SAM's prompt
encoder and mask decoder; the CPU default because it embeds an image in seconds instead of a minute).
All of them run through segment-anything's own modules and `ResizeLongestSide` transform.

How a click is served: the image encoder runs once per (session, model, image content) and its output is kept in
a small bounded per-session store inside the loaded engine (keyed by the gradio session the request carries); each
click only runs the prompt encoder and the mask decoder on that cached embedding, with per-request state.
`SamPredictor` is stateful (set_image, then predict) and not safe to share between requests, so no predictor is
shared.

Files: `types.py` (the work methods' requests and results), `engine.py` (load, the engine, segment, the work
methods), `prompts.py` (click prompts and their checks), `arch.py` (architectures, MobileSAM's TinyViT, SDPA
attention), `everything.py` (segment everything), `store.py` (the embedding store), `sam2.py` and `video.py`
(SAM 2.1, video tracking), `formats.py` (mask PNG, cut-out, thumbnails, drawn prompts), `ui.py` and `ui_video.py`
(the tab). This file imports neither torch nor gradio.
"""

from hub.contract import Demo, Example, Sample
from hub.spec import DemoSpec, ModelChoice

_FB = "https://dl.fbaipublicfiles.com/segment_anything/"
# MobileSAM's own checkpoint at a pinned commit (the same file ultralytics serves as its `mobile_sam.pt` asset).
_MOBILE_SAM_URL = ("https://github.com/ChaoningZhang/MobileSAM/raw/f706ad9c4eb7f219c00d9050e46328518ffb65d2/"
                   "weights/mobile_sam.pt")

_SAM2_FILES = ("config.json", "model.safetensors", "*.json")  # transformers' files only, not the .pt checkpoints

# approx_bytes are the float32 checkpoints; on a GPU the image encoder (nearly all of it) runs in fp16/bf16.
SPEC = DemoSpec(
    name="sam_segment",
    title="Segment Anything",
    description=("Click on the image to segment an object: positive points add, negative points remove, two corner "
                 "clicks make a box. The image is encoded once; every click after that takes a fraction of a second. "
                 "*Segment everything* finds all objects."),
    models=(
        ModelChoice("mobile_sam", "native", label="MobileSAM (fast on CPU)", files=("mobile_sam.pt",),
                    sha256="6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f",
                    approx_bytes=45_000_000, license="Apache-2.0", size_dtype="float32",
                    options={"arch": "vit_t", "url": _MOBILE_SAM_URL}, dtype="float16"),
        ModelChoice("vit_b", "native", label="SAM ViT-B", files=("sam_vit_b_01ec64.pth",),
                    sha256="ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
                    approx_bytes=375_000_000, license="Apache-2.0", size_dtype="float32",
                    options={"arch": "vit_b", "url": _FB + "sam_vit_b_01ec64.pth"}, dtype="bfloat16"),
        ModelChoice("vit_l", "native", label="SAM ViT-L", files=("sam_vit_l_0b3195.pth",),
                    sha256="3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
                    approx_bytes=1_250_000_000, license="Apache-2.0", size_dtype="float32",
                    options={"arch": "vit_l", "url": _FB + "sam_vit_l_0b3195.pth"}, dtype="bfloat16"),
        ModelChoice("vit_h", "native", label="SAM ViT-H (best, slowest)", files=("sam_vit_h_4b8939.pth",),
                    sha256="a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
                    approx_bytes=2_565_000_000, license="Apache-2.0", size_dtype="float32",
                    options={"arch": "vit_h", "url": _FB + "sam_vit_h_4b8939.pth"}, dtype="bfloat16"),
        # SAM 2.1 (Hiera image encoder + a memory for video tracking) through transformers' Sam2 classes. Pinned
        # commits carry the transformers files (config.json, model.safetensors, processor configs).
        ModelChoice("facebook/sam2.1-hiera-tiny", "hf", label="SAM 2.1 Hiera-T (images + video)",
                    revision="de431c4043854a71d8101e17995dfe596bf101a5", files=_SAM2_FILES,
                    approx_bytes=156_000_000, license="Apache-2.0", size_dtype="float32",
                    options={"family": "sam2", "arch": "hiera_t"}, dtype="bfloat16"),
        ModelChoice("facebook/sam2.1-hiera-small", "hf", label="SAM 2.1 Hiera-S (images + video)",
                    revision="ee5bba1d82bb8749febdf90f45e84b687142ba03", files=_SAM2_FILES,
                    approx_bytes=184_000_000, license="Apache-2.0", size_dtype="float32",
                    options={"family": "sam2", "arch": "hiera_s"}, dtype="bfloat16"),
        ModelChoice("facebook/sam2.1-hiera-base-plus", "hf", label="SAM 2.1 Hiera-B+ (images + video)",
                    revision="b7320756a13354e7530a63935656d35b2f91a290", files=_SAM2_FILES,
                    approx_bytes=324_000_000, license="Apache-2.0", size_dtype="float32",
                    options={"family": "sam2", "arch": "hiera_b+"}, dtype="bfloat16"),
        ModelChoice("facebook/sam2.1-hiera-large", "hf", label="SAM 2.1 Hiera-L (images + video, best)",
                    revision="665f8e2ad61cf5f53d65644ff27c8ee525124610", files=_SAM2_FILES,
                    approx_bytes=898_000_000, license="Apache-2.0", size_dtype="float32",
                    options={"family": "sam2", "arch": "hiera_l"}, dtype="bfloat16"),
        ModelChoice("tiny-random", "random", label="tiny random SAM (tests)",
                    options={"arch": "tiny"}, hidden=True),
        ModelChoice("tiny-random-sam2", "random", label="tiny random SAM 2.1 (tests)",
                    options={"arch": "tiny", "family": "sam2"}, hidden=True),
    ),
    default_model={"cuda": "vit_b", "mps": "mobile_sam", "cpu": "mobile_sam"},
    api_names=("segment", "segment_everything", "track_video"),
    gpu_concurrency=2,  # a click (decoder only) should not wait behind another session's image encoding
    zero_gpu_seconds=60,
)

DEMO = Demo(
    spec=SPEC,
    load="demos.sam_segment.engine:load",
    work="demos.sam_segment.engine:WORK",
    ui="demos.sam_segment.ui:build",
    fetch="demos.sam_segment.engine:fetch",
    examples=(
        Example("segment", {"image": Sample("image"), "points": [[40, 30]], "labels": [1], "box": None,
                            "multimask": True, "model": "tiny-random"},
                bad={"points": [[10000, 10000]]}),
        Example("segment_everything", {"image": Sample("image"), "points_per_side": 4, "iou_threshold": 0.0,
                                       "stability_threshold": 0.0, "min_area": 0, "model": "tiny-random"},
                bad={"points_per_side": 0}),
        Example("track_video", {"video": Sample("video"), "points": [[40, 30]], "labels": [1], "box": None,
                                "max_frames": 24, "model": "tiny-random"},
                bad={"points": [[100000, 5]]}),
    ),
)
