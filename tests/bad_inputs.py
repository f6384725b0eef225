"""The bad-input corpus: malformed files and values for every tab, generated in a temporary folder.

Each entry is (id, api_name, args, expect) where expect is "error" (must end as a gr.Error sentence) or "ok"
(accepted, e.g. truncated or clamped with a note). Nothing binary is committed: the files are made here.
"""

from __future__ import annotations

import io
import math
import struct
import wave
from pathlib import Path

import numpy as np
from PIL import Image

NAN = math.nan


def make_files(folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    f: dict[str, str] = {}

    def put(name: str, data: bytes) -> None:
        (folder / name).write_bytes(data)
        f[name] = str(folder / name)

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(buf, "PNG")
    png = buf.getvalue()
    put("good.png", png)
    put("zero.png", b"")
    put("truncated.png", png[: len(png) // 3])
    put("random.png", np.random.default_rng(1).integers(0, 255, 5000, dtype=np.uint8).tobytes())
    put("text.jpg", b"this is not an image, it is text\n" * 20)
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, "PNG")  # 400 Mpx: Pillow's bomb guard must refuse it
    put("bomb.png", bomb.getvalue())
    tiny = io.BytesIO()
    Image.new("RGB", (1, 1), "red").save(tiny, "PNG")
    put("one_pixel.png", tiny.getvalue())
    black = io.BytesIO()
    Image.new("L", (128, 96), 0).save(black, "PNG")
    put("black_mask.png", black.getvalue())

    sr = 16000
    t = np.arange(sr) / sr
    pcm = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
    wav = io.BytesIO()
    with wave.open(wav, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(sr), w.writeframes(pcm.tobytes())
    put("good.wav", wav.getvalue())
    put("zero.wav", b"")
    put("truncated.wav", wav.getvalue()[:30])
    put("text.wav", b"RIFF? no, just text pretending to be audio\n" * 10)
    put("png_as.wav", png)
    one = io.BytesIO()
    with wave.open(one, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(sr), w.writeframes(b"\x01\x00")
    put("one_sample.wav", one.getvalue())
    nan_samples = np.full(sr, np.nan, dtype=np.float32).tobytes()
    header = (b"RIFF" + struct.pack("<I", 36 + len(nan_samples)) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 3, 1, sr, sr * 4, 4, 32)
              + b"data" + struct.pack("<I", len(nan_samples)))
    put("nan_float.wav", header + nan_samples)
    huge_header = (b"RIFF" + struct.pack("<I", 0xFFFFFFF0) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
                   + b"data" + struct.pack("<I", 0xFFFFFF00))
    put("absurd_length.wav", huge_header + b"\0" * 1000)

    from hub.samples import make_samples

    f["good.mp4"] = make_samples(folder / "samples")["video"]
    put("zero.mp4", b"")
    put("random.mp4", np.random.default_rng(2).integers(0, 255, 20000, dtype=np.uint8).tobytes())
    put("text.mp4", b"not a video\n" * 100)
    return f


GOOD = {"image": "good.png", "audio": "good.wav", "video": "good.mp4"}


def examples() -> dict:
    """api name ("/detect") -> the demo's declared Example (hub.contract): the corpus varies these."""
    from hub.registry import load_demos

    return {f"/{ex.api_name}": ex for h in load_demos() for ex in h.demo.examples}


def corpus(F):
    """The corpus, with F(file name) -> what the client sends for that file (handle_file of its path).

    Every request is a demo's declared example with some parameters replaced (by the API's parameter names).
    """
    from hub.samples import fill

    EX = examples()

    def req(api, **kw):
        return api, fill(EX[api].values(**kw), GOOD, F)

    sd = lambda **kw: req("/generate_image", **kw)  # noqa: E731
    i2i = lambda img, **kw: req("/img2img", image=img, **kw)  # noqa: E731
    asr = lambda audio, **kw: req("/transcribe", audio=audio, language="en", **kw)  # noqa: E731
    det = lambda img, **kw: req("/detect", image=img, **kw)  # noqa: E731
    vid = lambda v, **kw: req("/detect_video", video=v, **kw)  # noqa: E731
    clip = lambda imgs, **kw: req("/classify", images=imgs, **kw)  # noqa: E731
    search = lambda gal, q: req("/search_images", gallery=gal, query=q)  # noqa: E731
    sam = lambda img, pts, lbl, box: req("/segment", image=img, points=pts, labels=lbl, box=box)  # noqa: E731
    every = lambda img, **kw: req("/segment_everything", image=img, **kw)  # noqa: E731
    chat = lambda msg, **kw: req("/chat", message=msg, **kw)  # noqa: E731
    g = lambda: [{"image": F("good.png"), "caption": None}]  # noqa: E731
    E, OK = "error", "ok"
    items = [
        # Stable Diffusion (sizes out of range are refused, as every number in every tab: hub.validate)
        ("sd-steps-zero", *sd(steps=0), E), ("sd-steps-nan", *sd(steps=NAN), E), ("sd-steps-absurd", *sd(steps=10**9), E),
        ("sd-guidance-negative", *sd(guidance_scale=-5), E), ("sd-width-zero", *sd(width=0), E),
        ("sd-width-absurd", *sd(width=100000), E), ("sd-width-not-multiple-of-8", *sd(width=70), E),
        ("sd-height-nan", *sd(height=NAN), E), ("sd-count-zero", *sd(num_images=0), E), ("sd-count-absurd", *sd(num_images=1000), E),
        ("sd-seed-text", *sd(seed="abc"), E), ("sd-scheduler-unknown", *sd(scheduler="Quantum"), E),
        ("sd-model-path", *sd(model="../../etc/passwd"), E),
        ("sd-prompt-control-chars", *sd(prompt="cube \x00\x1b[31m\u0301\ufeff"), OK),
        ("sd-prompt-huge", *sd(prompt="a cube " * 20000), OK),
        ("i2i-zero", *i2i(F("zero.png")), E), ("i2i-truncated", *i2i(F("truncated.png")), E),
        ("i2i-text", *i2i(F("text.jpg")), E), ("i2i-bomb", *i2i(F("bomb.png")), E),
        ("i2i-strength-nan", *i2i(F("good.png"), strength=NAN), E), ("i2i-none", *i2i(None), E),
        ("inpaint-empty-mask", *req("/inpaint", image={"background": F("good.png"), "layers": [], "composite": None},
                                    mask=F("black_mask.png")), E),
        ("read-params-text", *req("/read_parameters", file=F("text.jpg")), E),
        ("read-params-zero", *req("/read_parameters", file=F("zero.png")), E),
        # Whisper
        ("asr-zero", *asr(F("zero.wav")), E), ("asr-truncated", *asr(F("truncated.wav")), E), ("asr-text", *asr(F("text.wav")), E),
        ("asr-png", *asr(F("png_as.wav")), E), ("asr-none", *asr(None), E), ("asr-one-sample", *asr(F("one_sample.wav")), E),
        ("asr-nan-samples", *asr(F("nan_float.wav")), E), ("asr-absurd-length", *asr(F("absurd_length.wav")), E),
        ("asr-language-unknown", *req("/transcribe", language="xx"), E), ("asr-beam-zero", *asr(F("good.wav"), beam_size=0), E),
        ("asr-beam-nan", *asr(F("good.wav"), beam_size=NAN), E), ("asr-task-unknown", *asr(F("good.wav"), task="summarize"), E),
        # YOLO
        ("det-zero", *det(F("zero.png")), E), ("det-truncated", *det(F("truncated.png")), E), ("det-random", *det(F("random.png")), E),
        ("det-bomb", *det(F("bomb.png")), E), ("det-none", *det(None), E), ("det-conf-high", *det(F("good.png"), conf=5), E),
        ("det-conf-nan", *det(F("good.png"), conf=NAN), E), ("det-iou-negative", *det(F("good.png"), iou=-1), E),
        ("det-class-unknown", *det(F("good.png"), classes=["unicorn"]), E), ("det-imgsz-zero", *det(F("good.png"), imgsz=0), E),
        ("det-imgsz-absurd", *det(F("good.png"), imgsz=100000), E), ("det-one-pixel", *det(F("one_pixel.png")), E),
        ("vid-zero", *vid(F("zero.mp4")), E), ("vid-random", *vid(F("random.mp4")), E),
        ("vid-text", *vid(F("text.mp4")), E), ("vid-none", *vid(None), E),
        # CLIP
        ("clip-no-labels", *clip(g(), labels=""), E), ("clip-blank-labels", *clip(g(), labels=" , ,, "), E),
        ("clip-too-many-labels", *clip(g(), labels=",".join(f"l{i}" for i in range(1000))), E),
        ("clip-template-no-braces", *clip(g(), template="a photo"), E), ("clip-no-images", *clip([]), E),
        ("clip-corrupt-image", *clip([{"image": F("truncated.png"), "caption": None}]), E),
        ("clip-threshold-nan", *clip(g(), mode="multi", threshold=NAN), E), ("clip-topk-zero", *clip(g(), top_k=0), E),
        ("clip-mode-unknown", *clip(g(), mode="bogus"), E), ("clip-labels-huge", *clip(g(), labels="x" * 100000), E),
        ("search-empty-query", *search(g(), ""), E), ("search-no-images", *search([], "a cat"), E),
        ("search-zero-byte", *search([{"image": F("zero.png"), "caption": None}], "a cat"), E),
        # SAM
        ("sam-outside", *sam(F("good.png"), [[10000, 10000]], [1], None), E), ("sam-no-prompts", *sam(F("good.png"), [], [], None), E),
        ("sam-only-negative", *sam(F("good.png"), [[5, 5]], [0], None), E),
        ("sam-zero-box", *sam(F("good.png"), [], [], [5, 5, 5, 5]), E),
        ("sam-box-outside", *sam(F("good.png"), [], [], [5000, 5000, 6000, 6000]), E),
        ("sam-points-garbage", *sam(F("good.png"), "garbage", [1], None), E),
        ("sam-labels-mismatch", *sam(F("good.png"), [[5, 5], [6, 6]], [1], None), E),
        ("sam-points-nan", *sam(F("good.png"), [[NAN, 5]], [1], None), E),
        ("sam-corrupt", *sam(F("truncated.png"), [[5, 5]], [1], None), E), ("sam-none", *sam(None, [[5, 5]], [1], None), E),
        ("every-pps-zero", *every(F("good.png"), points_per_side=0), E),
        ("every-pps-absurd", *every(F("good.png"), points_per_side=10000), E),
        ("every-iou-nan", *every(F("good.png"), iou_threshold=NAN), E), ("every-none", *every(None), E),
        # LLM chat
        ("chat-empty", *chat(""), E), ("chat-temperature-negative", *chat("hi", temperature=-1), E),
        ("chat-top-p-high", *chat("hi", top_p=5), E), ("chat-max-tokens-zero", *chat("hi", max_new_tokens=0), E),
        ("chat-max-tokens-absurd", *chat("hi", max_new_tokens=10**9), E),
        ("chat-repetition-zero", *chat("hi", repetition_penalty=0), E),
        ("chat-control-chars", *chat("hi \x00\x1b[2J there \ufffe"), OK),
        ("chat-huge", *chat("hello " * 20000), OK), ("chat-emoji-rtl-zero-width", *chat("👩‍👩‍👧 مرحبا \u200b\u202e"), OK),
    ]
    return items


def valid(F) -> dict:
    """api_name -> the declared example (a valid request after which the tab must still work)."""
    from hub.samples import fill

    return {api: fill(ex.values(), GOOD, F) for api, ex in examples().items()}
