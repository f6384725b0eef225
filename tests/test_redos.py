"""Every parser of user text runs in time linear in its input (issue 33, items 1 and 2; STYLE.md habit 19).

Two regexes with overlapping repeats froze the whole hub: `/read_parameters` took 16.7 s on a 1 KB PNG whose
parameters were "a cat\\nSteps: 1, " + 1000 spaces + "x", and one 540-byte assistant message of repeated stats footers
took 14.4 s on `/v1/chat/completions`. Each parser here gets adversarial inputs of about 100 KB (the A1111 reader
refuses beyond 64 KB) in a thread and must finish well within 2 s — a linear parser takes milliseconds, the old
regexes would take hours. Each also gives the right answer on ordinary inputs, checked against hand-written
expectations (and, for the footer, against the old regex on small inputs, where it was correct).

`test_every_regex_in_hub_and_demos_is_audited` lists every regex in hub/ and demos/ with why it is safe, and fails
when a new one appears unreviewed.
"""

from __future__ import annotations

import ast
import gc
import io
import random
import re
import threading
import time
from pathlib import Path

import pytest

from demos.llm_chat.messages import build_messages, clean_text, without_footer
from demos.llm_chat.thinking import without_thinking
from demos.stable_diffusion import formats
from hub.errors import UserError

# A linear parser does 100 KB in about 0.1 s; a backtracking one takes hours on it (the 1 KB inputs of issue #33
# took 14-17 s). The cap leaves room for a busy CI machine: one full-suite run saw a 0.08 s parse take 2 s there.
CAP_S = 10.0
ROOT = Path(__file__).resolve().parents[1]


def finishes(fn, *args, cap: float = CAP_S):
    """fn(*args) run in a thread; fails unless it ends within `cap` seconds. Returns its value (or UserError)."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn(*args)
        except UserError as e:
            box["value"] = e

    t = threading.Thread(target=run, daemon=True)
    # the garbage collector off while timed: a full collection walks every object the whole test run holds (seconds
    # late in a suite), which says nothing about the parser; no gc.collect() here either (one per call made the
    # audit of every regex take minutes late in a run)
    gc.disable()
    try:
        t0 = time.perf_counter()
        t.start()
        t.join(cap)
        elapsed = time.perf_counter() - t0
    finally:
        gc.enable()
    assert not t.is_alive() and elapsed < cap, f"{getattr(fn, '__name__', fn)} took {elapsed:.1f} s on {str(args)[:60]}"
    return box.get("value")


# ---- AUTOMATIC1111 parameters (stable_diffusion/formats.py) -----------------------------------------------------

# Real infotexts as AUTOMATIC1111's web UI writes them (v1.9-style with a Schedule type; 2023-style with the
# scheduler in the sampler's name; quoted values holding commas and colons; a multi-line prompt).
A1111 = [
    ("masterpiece, best quality, 1girl, (smile:1.2), looking at viewer\n"
     "Negative prompt: (worst quality, low quality:1.4), lowres, bad anatomy\n"
     "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 3056911843, Size: 512x768, "
     "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.45, Clip skip: 2, Hires upscale: 2, "
     "Hires steps: 15, Hires upscaler: Latent, Lora hashes: \"add_detail: 7c6bad76eb54\", Version: v1.9.4",
     {"prompt": "masterpiece, best quality, 1girl, (smile:1.2), looking at viewer",
      "negative_prompt": "(worst quality, low quality:1.4), lowres, bad anatomy", "steps": 28,
      "scheduler": "DPM++ 2M Karras", "guidance": 7.0, "seed": 3056911843, "width": 512, "height": 768,
      "model": "v1-5-pruned-emaonly",
      # with Hires fields, Denoising strength is the hires pass's, as A1111 means it
      "hires": {"upscaler": "Latent", "scale": 2.0, "denoise": 0.45, "steps": 15}}),
    ("a photo of an astronaut riding a horse on mars\n"
     "Steps: 20, Sampler: Euler a, CFG scale: 7.5, Seed: 42, Size: 768x512, Model hash: e1441589a6, "
     "Model: sd_xl_base_1.0, TI hashes: \"EasyNegative: c74b4e810b03, bad-hands-5: aa7651be154c\", "
     "ADetailer prompt: \"a face, smiling\", ADetailer model: face_yolov8n.pt, Version: v1.6.0",
     {"prompt": "a photo of an astronaut riding a horse on mars", "negative_prompt": "", "steps": 20,
      "scheduler": "Euler a", "guidance": 7.5, "seed": 42, "width": 768, "height": 512, "model": "sd_xl_base_1.0"}),
    ("a lighthouse at dusk,\nstormy sea, dramatic light\nNegative prompt: blurry\ntext, watermark\n"
     "Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 5, Seed: 1, Size: 1024x1024, Model: \"my, model\"",
     {"prompt": "a lighthouse at dusk,\nstormy sea, dramatic light", "negative_prompt": "blurry\ntext, watermark",
      "steps": 30, "scheduler": "DPM++ 2M Karras", "guidance": 5.0, "seed": 1, "width": 1024, "height": 1024,
      "model": "my, model"}),
    ("just a prompt, no settings", {"prompt": "just a prompt, no settings", "negative_prompt": ""}),
    ("a cat\nSteps: x, Seed: 12, Size: 512x, CFG scale: lots",  # unreadable fields are left out
     {"prompt": "a cat", "negative_prompt": "", "seed": 12}),
]


@pytest.mark.parametrize("text, expected", A1111)
def test_a1111_infotext_is_read_right(text, expected):
    assert finishes(formats.parse_a1111, text) == expected


def test_this_tabs_own_parameters_text_reads_back():
    params = {"prompt": "a fox, in snow", "negative_prompt": "blurry", "steps": 3, "scheduler": "DDIM",
              "guidance": 6.5, "seed": 7, "width": 64, "height": 72, "model": "/models/odd, name: v2",
              "revision": "abc123", "strength": 0.5, "mode": "img2img"}
    assert formats.parse_a1111(formats.parameters_text(params)) == params


def _png_with_parameters(text: str) -> bytes:
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", text)
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


A1111_ATTACKS = [  # each a prefix + a repeated unit, grown to the size asked
    ("a cat\nSteps: 1, ", " "), ("Steps: 1, ", "a "), ("Steps: 1, ", 'a: "x, '), ("Steps: 1, ", ", "),
    ("Steps: 1, ", "a: b: "), ("Steps: 1, ", '\\"'), ("Steps: ", '"'), ("Steps: 1, ", "ab"), ("", "\n"),
    ("Steps: 1, x: ", '"a", '), ("Negative prompt: ", "Negative prompt: \n"),
]


@pytest.mark.parametrize("prefix, unit", A1111_ATTACKS)
def test_a1111_reader_is_linear(prefix, unit):
    text = (prefix + unit * (64 * 1024 // len(unit)))[: formats.MAX_PARAMETERS_CHARS - 1] + "x"
    assert isinstance(finishes(formats.parse_a1111, text), dict)


def test_the_issues_png_reads_at_once_and_an_oversized_text_gets_a_sentence():
    issue = _png_with_parameters("a cat\nSteps: 1, " + " " * 1000 + "x")  # 16.7 s before
    assert finishes(formats.read_parameters, issue) == {"prompt": "a cat", "negative_prompt": "", "steps": 1}
    huge = _png_with_parameters("a cat\nSteps: 1, " + " " * 100_000 + "x")
    err = finishes(formats.read_parameters, huge)
    assert isinstance(err, UserError) and "at most 64 KB" in str(err) and "by hand" in str(err)


# ---- chat history (llm_chat/messages.py, thinking.py) -----------------------------------------------------------

OLD_FOOTER = re.compile(r"(\s*<sub>(?:⏱|ℹ️)[^\n]*</sub>)+\s*$")  # the regex of issue 33, the truth on small inputs


def test_footers_are_stripped_as_before():
    footer = "<sub>⏱ 12 tokens · 8.1 tokens/s · first token 0.40 s</sub>"
    answer = "Paris is the capital.\n\n<sub>ℹ️ The 2 oldest message(s) were left out.</sub>\n\n" + footer
    assert without_footer(answer) == "Paris is the capital."
    assert without_footer("Use <sub>⏱</sub> tags, like this.") == "Use <sub>⏱</sub> tags, like this."
    assert without_footer("2 < 3\n" + footer + "\nmore text") == "2 < 3\n" + footer + "\nmore text"
    history = [{"role": "user", "content": "capital?"}, {"role": "assistant", "content": answer}]
    assert build_messages("", history, "and Spain?")[1] == {"role": "assistant", "content": "Paris is the capital."}
    rng = random.Random(33)  # the old regex was right, only slow: on small inputs both agree
    pieces = ["<sub>⏱", "<sub>ℹ️", "</sub>", "\n", " ", "x", "<sub>", "⏱", "\t", "\n\n", "ℹ️"]
    for _ in range(20_000):
        s = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 10)))
        assert without_footer(s) == OLD_FOOTER.sub("", s), repr(s)


FOOTER_ATTACKS = [  # (prefix, unit, what is left of prefix + unit * n): n is grown to 100 KB
    ("hello ", "<sub>⏱</sub>", "hello"), ("", "<sub>⏱ a</sub> ", ""), ("x", " ", None), ("x", "<sub>ℹ️\n</sub>", None),
    ("x", "<sub>⏱</sub>\n", "x"), ("x", "</sub>", None), ("x", "<sub>⏱<sub>⏱", None), ("x", "\n<sub>ℹ️ n</sub>", "x"),
]


@pytest.mark.parametrize("prefix, unit, left", FOOTER_ATTACKS)
def test_chat_history_footer_stripping_is_linear(prefix, unit, left):
    text = prefix + unit * (100_000 // len(unit))
    for answer, expected in ((text + "x", text + "x"), (text, text if left is None else left)):  # the issue: + "x"
        history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": answer}]
        msgs = finishes(lambda h: build_messages("", h, "next"), history)
        assert msgs[1]["content"] == expected


@pytest.mark.parametrize("text", ["<think>" + "</thin" * 20_000, " " * 100_000 + "<think", "<think>" * 15_000,
                                  "<think>" + "a" * 100_000 + "</think>" + " " * 1000 + "answer"])
def test_thinking_block_removal_is_linear(text):
    out = finishes(without_thinking, text)
    assert out == ("answer" if text.endswith("answer") else text)


def test_clean_text_is_linear():
    assert finishes(clean_text, "\ud800" * 100_000) == "\ufffd" * 100_000


# ---- the other parsers of user text --------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["data:image/png" + ";a" * 50_000, "data:image/" + "a" * 100_000,
                                 "data:image/png;" + ";" * 100_000 + "x", "data:image/png" + ";base64" * 14_000])
def test_clip_data_urls_are_matched_linearly(url):
    from demos.clip_zero_shot.openai import parse_inputs

    items = finishes(lambda u: parse_inputs([u, "a dog"]), url)
    assert items[1] == "a dog" and items[0] == url  # no comma: not a data URL, so it is read as text


@pytest.mark.parametrize("size", [" " * 100_000 + "512x512" + " " * 100_000 + "y", "1" * 100_000 + "x1",
                                  "512" + " " * 100_000 + "x"])
def test_image_sizes_are_matched_linearly(size):
    from demos.stable_diffusion.openai import ImageRequest

    def check(value):
        try:
            return ImageRequest.model_validate({"prompt": "a cat", "size": value})
        except Exception as e:  # pydantic wraps the validator's sentence
            return e

    assert "is not allowed" in str(finishes(check, size))
    assert ImageRequest.model_validate({"prompt": "a cat", "size": " 512 X 768 "}).size == "512x768"


def test_image_decoder_reasons_are_cut_linearly():
    from hub.media.image import _reason

    assert finishes(lambda e: _reason(e), ValueError("/" * 100_000))
    assert _reason(ValueError("cannot identify image file '/tmp/gradio/abc/photo.png'")) == \
        "cannot identify image file 'photo.png'"


def test_language_names_are_matched_linearly():
    from demos.whisper_asr.languages import normalize_language

    err = finishes(normalize_language, "fr" + "a" * 100_000)
    assert isinstance(err, UserError) and "Unknown language" in str(err)
    assert normalize_language("fr (french)") == "fr"


# ---- the audit -----------------------------------------------------------------------------------------------------

# Every regex in hub/ and demos/: how the code applies it, and why it cannot blow up. "linear": no nested or
# overlapping repeats (each character is consumed by one repeat, or the repeats are bounded), for the way it is
# applied (match/fullmatch: at the start only; search: finditer/sub over every position); "capped": quadratic at
# worst, on text cut short before it; "not user text": operator settings or the code's own strings.
AUDITED = {
    r"[\ud800-\udfff]": ("search", "linear: one character class (messages.clean_text)"),
    r"^\s*<think>.*?</think>\s*": ("search", "linear: anchored; a literal between the repeats (without_thinking)"),
    r"data:image/([A-Za-z0-9.+-]+)((?:;[^,;]*)*),": ("match", "linear: at 0 only; each ';' starts one repeat (clip)"),
    r"\s*(\d{1,5})\s*[xX]\s*(\d{1,5})\s*": ("fullmatch", "linear: bounded digits between disjoint classes (size)"),
    r"[^\w.-]+": ("search", "linear: one class (file names)"),
    r"^([a-z]{2,3}|haw|yue)\b": ("match", "linear: anchored, bounded (whisper language)"),
    r"^[A-Za-z0-9][\w.-]*/[\w.-]+$": ("match", "linear: anchored; '/' is in neither class (model ids)"),
    r"at index (\d+)": ("search", "linear: a literal prefix (gradio's error text)"),
    r"(/[^\s'\"]+/)([^/\s'\"]+)": ("search", "capped: quadratic in a run of slashes; the text is cut to 500 / 200 "
                                              "characters first (hub/media/image._reason, hub/blocks._friendly)"),
    r"\s*\(.*\)\s*$": ("search", "not user text: a component's label written by the demo's code (blocks._name)"),
    r"^(MOSTLY|ALL)_": ("search", "not user text: a gguf enum name"),
    r"(\d+(?:\.\d+)?)\s*([KMG]i?B|B)?": ("fullmatch", "not user text: operator settings (DEMOHUB_*)"),
    r"(\d+(?:\.\d+)?)\s*(s|m|h)?": ("fullmatch", "not user text: operator settings (DEMOHUB_*)"),
    r"[,\n]": ("search", "not user text: operator settings (DEMOHUB_*)"),
    r"DEMOHUB_(\w+?)_KEEP_ALIVE": ("fullmatch", "not user text: environment variable names"),
    r"DEMOHUB_(\w+?)_MODEL": ("fullmatch", "not user text: environment variable names"),
}
RE_FUNCS = {"compile", "sub", "subn", "search", "match", "fullmatch", "finditer", "findall", "split"}


def _regexes() -> list[tuple[str, int, str]]:
    """(file, line, pattern) of every re.<function>("literal", ...) call in hub/ and demos/."""
    found = []
    for path in sorted([*ROOT.glob("hub/**/*.py"), *ROOT.glob("demos/**/*.py"), ROOT / "app.py"]):
        source = path.read_text()
        assert "import regex" not in source, f"{path}: audit the regex module's patterns here too"
        for node in ast.walk(ast.parse(source, str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in RE_FUNCS
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "re" and node.args
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                found.append((str(path.relative_to(ROOT)), node.lineno, node.args[0].value))
    return found


def test_every_regex_in_hub_and_demos_is_audited():
    found = _regexes()
    new = [(f, line, p) for f, line, p in found if p not in AUDITED]
    assert not new, f"new regexes to review for linear time (then list them in AUDITED): {new}"
    gone = set(AUDITED) - {p for _, _, p in found}
    assert not gone, f"regexes no longer in the code (drop them from AUDITED): {gone}"


@pytest.mark.parametrize("pattern", [p for p, (_, why) in AUDITED.items() if why.startswith("linear")])
def test_every_linear_regex_is_linear_on_adversarial_text(pattern):
    """Each 'linear' pattern, applied as the code applies it, over 100 KB strings built from its own characters."""
    mode, _ = AUDITED[pattern]
    rx = re.compile(pattern, re.S)
    apply = {"match": rx.match, "fullmatch": rx.fullmatch, "search": lambda t: rx.sub("", t)}[mode]
    units = sorted({*re.sub(r"\\.|[\[\]()*+?{}^$|]", "", pattern), " ", "a", "/", "\n", "1", ";", ","})
    for unit in units + ["".join(units), "ab1 ", "data:image/png;", "<think>", "</thin", "512 "]:
        finishes(apply, unit * (100_000 // len(unit)) + "!")
