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

    put("zero.mp4", b"")
    put("random.mp4", np.random.default_rng(2).integers(0, 255, 20000, dtype=np.uint8).tobytes())
    put("text.mp4", b"not a video\n" * 100)
    return f


def corpus(F):
    """The corpus, with F(file name) -> what the client sends for that file (handle_file of its path)."""

    sd = lambda **kw: ("/generate_image", tuple({**dict(m="tiny-random", p="a cube", n="", seed=1, steps=2, g=7.5, s="Euler a",  # noqa: E731
                                                      w=64, h=64, c=1), **kw}.values()))
    i2i = lambda img, **kw: ("/img2img", tuple({**dict(m="tiny-random", img=img, p="a cube", n="", st=0.5, seed=1, steps=2,  # noqa: E731
                                                        g=7.5, s="Euler a", w=64, h=64, c=1), **kw}.values()))
    asr = lambda audio, **kw: ("/transcribe", tuple({**dict(m="tiny-random", a=audio, o=None, task="transcribe", lang="en",  # noqa: E731
                                                         words=False, vad=False, prompt="", beam=1), **kw}.values()))
    det = lambda img, **kw: ("/detect", tuple({**dict(m="tiny-random", img=img, conf=0.25, iou=0.7, cls=[], md=100,  # noqa: E731
                                                   sz=320), **kw}.values()))
    vid = lambda v, **kw: ("/detect_video", tuple({**dict(m="tiny-random", v=v, conf=0.25, iou=0.7, cls=[], md=100, sz=320,  # noqa: E731
                                                       tr=False), **kw}.values()))
    clip = lambda imgs, **kw: ("/classify", tuple({**dict(m="tiny-random", imgs=imgs, labels="cat, dog", t="a photo of a {}.",  # noqa: E731
                                                       e="none", mode="single", th=0.5, k=3), **kw}.values()))
    search = lambda gal, q: ("/search_images", ("tiny-random", gal, q))  # noqa: E731
    sam = lambda img, pts, lbl, box: ("/segment", (img, pts, lbl, box, True, "tiny-random"))  # noqa: E731
    every = lambda img, **kw: ("/segment_everything", tuple({**dict(img=img, pps=4, iou=0.88, st=0.95, mp=0, m="tiny-random"),  # noqa: E731
                                                             **kw}.values()))
    chat = lambda msg, **kw: ("/chat", tuple({**dict(msg=msg, m="tiny-random", sys="You are helpful.", t=0.7, p=0.9, k=50,  # noqa: E731
                                                  mx=8, rp=1.0), **kw}.values()))
    g = lambda: [{"image": F("good.png"), "caption": None}]  # noqa: E731
    E, OK = "error", "ok"
    items = [
        # Stable Diffusion
        ("sd-steps-zero", *sd(steps=0), E), ("sd-steps-nan", *sd(steps=NAN), E), ("sd-steps-absurd", *sd(steps=10**9), E),
        ("sd-guidance-negative", *sd(g=-5), E), ("sd-width-zero", *sd(w=0), OK), ("sd-width-absurd", *sd(w=100000), OK),
        ("sd-height-nan", *sd(h=NAN), E), ("sd-count-zero", *sd(c=0), E), ("sd-count-absurd", *sd(c=1000), E),
        ("sd-seed-text", *sd(seed="abc"), E), ("sd-scheduler-unknown", *sd(s="Quantum"), E),
        ("sd-model-path", *sd(m="../../etc/passwd"), E), ("sd-prompt-control-chars", *sd(p="cube \x00\x1b[31m\u0301\ufeff"), OK),
        ("sd-prompt-huge", *sd(p="a cube " * 20000), OK),
        ("i2i-zero", *i2i(F("zero.png")), E), ("i2i-truncated", *i2i(F("truncated.png")), E),
        ("i2i-text", *i2i(F("text.jpg")), E), ("i2i-bomb", *i2i(F("bomb.png")), E), ("i2i-strength-nan", *i2i(F("good.png"), st=NAN), E),
        ("i2i-none", *i2i(None), E),
        ("inpaint-empty-mask", "/inpaint", ("tiny-random", {"background": F("good.png"), "layers": [], "composite": None},
                                            F("black_mask.png"), "a cube", "", 1.0, 1, 2, 7.5, "Euler a", 64, 64, 1), E),
        ("read-params-text", "/read_parameters", (F("text.jpg"),), E),
        ("read-params-zero", "/read_parameters", (F("zero.png"),), E),
        # Whisper
        ("asr-zero", *asr(F("zero.wav")), E), ("asr-truncated", *asr(F("truncated.wav")), E), ("asr-text", *asr(F("text.wav")), E),
        ("asr-png", *asr(F("png_as.wav")), E), ("asr-none", *asr(None), E), ("asr-one-sample", *asr(F("one_sample.wav")), E),
        ("asr-nan-samples", *asr(F("nan_float.wav")), E), ("asr-absurd-length", *asr(F("absurd_length.wav")), E),
        ("asr-language-unknown", *asr(F("good.wav"), lang="xx"), E), ("asr-beam-zero", *asr(F("good.wav"), beam=0), E),
        ("asr-beam-nan", *asr(F("good.wav"), beam=NAN), E), ("asr-task-unknown", *asr(F("good.wav"), task="summarize"), E),
        # YOLO
        ("det-zero", *det(F("zero.png")), E), ("det-truncated", *det(F("truncated.png")), E), ("det-random", *det(F("random.png")), E),
        ("det-bomb", *det(F("bomb.png")), E), ("det-none", *det(None), E), ("det-conf-high", *det(F("good.png"), conf=5), E),
        ("det-conf-nan", *det(F("good.png"), conf=NAN), E), ("det-iou-negative", *det(F("good.png"), iou=-1), E),
        ("det-class-unknown", *det(F("good.png"), cls=["unicorn"]), E), ("det-imgsz-zero", *det(F("good.png"), sz=0), E),
        ("det-imgsz-absurd", *det(F("good.png"), sz=100000), E), ("det-one-pixel", *det(F("one_pixel.png")), E),
        ("vid-zero", *vid(F("zero.mp4")), E), ("vid-random", *vid(F("random.mp4")), E),
        ("vid-text", *vid(F("text.mp4")), E), ("vid-none", *vid(None), E),
        # CLIP
        ("clip-no-labels", *clip(g(), labels=""), E), ("clip-blank-labels", *clip(g(), labels=" , ,, "), E),
        ("clip-too-many-labels", *clip(g(), labels=",".join(f"l{i}" for i in range(1000))), E),
        ("clip-template-no-braces", *clip(g(), t="a photo"), E), ("clip-no-images", *clip([]), E),
        ("clip-corrupt-image", *clip([{"image": F("truncated.png"), "caption": None}]), E),
        ("clip-threshold-nan", *clip(g(), mode="multi", th=NAN), E), ("clip-topk-zero", *clip(g(), k=0), E),
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
        ("every-pps-zero", *every(F("good.png"), pps=0), E), ("every-pps-absurd", *every(F("good.png"), pps=10000), E),
        ("every-iou-nan", *every(F("good.png"), iou=NAN), E), ("every-none", *every(None), E),
        # LLM chat
        ("chat-empty", *chat(""), E), ("chat-temperature-negative", *chat("hi", t=-1), E), ("chat-top-p-high", *chat("hi", p=5), E),
        ("chat-max-tokens-zero", *chat("hi", mx=0), E), ("chat-max-tokens-absurd", *chat("hi", mx=10**9), E),
        ("chat-repetition-zero", *chat("hi", rp=0), E), ("chat-control-chars", *chat("hi \x00\x1b[2J there \ufffe"), OK),
        ("chat-huge", *chat("hello " * 20000), OK), ("chat-emoji-rtl-zero-width", *chat("👩‍👩‍👧 مرحبا \u200b\u202e"), OK),
    ]
    return items


VALID = {  # api_name -> a valid request after which the tab must still work
    "/generate_image": lambda F: ("tiny-random", "a cube", "", 1, 2, 7.5, "Euler a", 64, 64, 1),
    "/img2img": lambda F: ("tiny-random", F("good.png"), "a cube", "", 0.5, 1, 2, 7.5, "Euler a", 64, 64, 1),
    "/inpaint": None, "/read_parameters": None,
    "/transcribe": lambda F: ("tiny-random", F("good.wav"), None, "transcribe", "en", False, False, "", 1),
    "/detect": lambda F: ("tiny-random", F("good.png"), 0.25, 0.7, [], 100, 320),
    "/detect_video": None,
    "/classify": lambda F: ("tiny-random", [{"image": F("good.png"), "caption": None}], "cat, dog", "a photo of a {}.",
                            "none", "single", 0.5, 3),
    "/search_images": lambda F: ("tiny-random", [{"image": F("good.png"), "caption": None}], "a cat"),
    "/segment": lambda F: (F("good.png"), [[40, 30]], [1], None, True, "tiny-random"),
    "/segment_everything": lambda F: (F("good.png"), 4, 0.0, 0.0, 0, "tiny-random"),
    "/chat": lambda F: ("hello", "tiny-random", "You are helpful.", 0.7, 0.9, 50, 8, 1.0),
}
