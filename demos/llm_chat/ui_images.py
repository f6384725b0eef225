"""Pictures in the chat tab: the message box takes images with the text (gradio's MultimodalTextbox), and a
conversation with pictures is answered by the hub's vision demo.

Routing. Every chat model this hub lists reads text only, so a message with pictures goes to the vision demo's
`chat` work method through `ctx.other("vision")` (its allow-list, lease, budget and caps, as the /v1 image parts
in demos/vision/openai_parts.py): to the vision model named in the picker when one is (a /chat API client may name
one), else to the vision default, and the answer says which model read the picture and why. A sentence instead
would leave pictures in the chat unusable with every listed model; someone who attaches a picture wants it read.
Once a conversation has pictures, its later turns go there too (the model sees the earlier pictures and answers
about them; their features are kept per page by the vision engine), until the chat is cleared. The Thinking switch
applies to text conversations (no listed vision model has one).

Checks, before anything loads: the vision demo must be on this hub, at most `DEMOHUB_VISION_MAX_IMAGES` pictures in
the message, each at most `DEMOHUB_VISION_MAX_IMAGE_MB` and a picture by its header (the hub's decoder, no pixels
decoded). The tab runs them in the send's validator, so a refused message stays in the box, text and pictures; an
API call gets the same sentence from the handler. The pictures are gradio's uploads, read where gradio put them
(its upload folder): the hub writes no copy. UI only: no model code.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import gradio as gr

from demos.llm_chat.messages import EMPTY, clean_text, without_footer
from demos.llm_chat.thinking import without_thinking
from hub.errors import UserError

VISION = "vision"
DESCRIBE = "Describe this image."  # the question of a message that is only pictures
# gradio 6.31's MultimodalTextbox gives its textarea no accessible name (a Textbox's is its label): screen readers
# (and tests) find the message box by the name "Message", set here whenever gradio draws it
NAME_BOX = ("() => { const name = () => document.querySelectorAll('#chat-message textarea:not([aria-label])')"
            ".forEach(t => t.setAttribute('aria-label', 'Message')); name(); "
            "new MutationObserver(name).observe(document.body, {childList: true, subtree: true}); }")


def split(message) -> tuple[str, list[str]]:
    """(text, image paths) of the chat input: a plain string (API clients) or the box's {"text", "files"}."""
    if isinstance(message, dict):
        files = [f.get("path") if isinstance(f, dict) else f for f in message.get("files") or []]
        text = message.get("text")
        return (text if isinstance(text, str) else ""), [f for f in files if isinstance(f, str) and f]
    return (message if isinstance(message, str) else ""), []


def parts(content) -> tuple[str, list[str]]:
    """(text, file paths) of one chat message's content, in each of the forms gradio keeps it: a string, a file
    dict, or a list of strings, {"type": "text"} and {"type": "file", "file": {...}} / {"path": ...} parts."""
    if isinstance(content, str):
        return content, []
    texts, files = [], []
    for p in content if isinstance(content, (list, tuple)) else [content]:
        if isinstance(p, str):
            texts.append(p)
        elif isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str):
            texts.append(p["text"])
        elif isinstance(p, dict) and isinstance((p.get("file") or {}).get("path"), str):
            files.append(p["file"]["path"])
        elif isinstance(p, dict) and isinstance(p.get("path"), str):
            files.append(p["path"])
    return "\n".join(texts), files


def has_images(history) -> bool:
    """Whether a user message of the conversation holds a picture."""
    return any(isinstance(m, dict) and m.get("role") == "user" and parts(m.get("content"))[1] for m in history or [])


def adapt(box) -> None:
    """Instance tweaks of the multimodal box (subclassing a component would make gradio write a .pyi stub): its
    API takes a plain string too ("Hello" as {"text": "Hello"}), so /chat clients that send text keep working; and
    its files reach the hub's decoder as they are, whose sentence names a file that is not a picture (gradio's own
    check answers "Invalid file type: text/plain ..." by MIME type)."""
    from gradio.components.multimodal_textbox import MultimodalData
    from pydantic import model_validator

    class TextOrFiles(MultimodalData):
        @model_validator(mode="before")
        @classmethod
        def _plain(cls, value):
            return {"text": value, "files": []} if isinstance(value, str) else value

    def preprocess(payload):
        return None if payload is None else {"text": payload.text, "files": [f.path for f in payload.files]}

    schema = box.api_info()
    defs = schema.pop("$defs", {})
    box.data_model = TextOrFiles
    box.preprocess = preprocess
    box.api_info = lambda: {"$defs": defs, "anyOf": [{"type": "string"}, schema]}  # the API page: str | dict(...)
    box.value = None  # the API's message stays required, as the Textbox's was (the page starts it empty itself)
    box.example_payload = lambda: "Hello!"  # the API page's snippet runs as it is (gradio's fetches a GitHub URL)


def vision_context(ctx):
    from demos.vision.openai_parts import vision_context as other

    return other(ctx)


def check_images(files: list[str], options) -> None:
    """Count, size and header of each picture of a message (no pixel decoded): UserError with one sentence."""
    from demos.vision.engine import check_count
    from hub.media.image import image_size

    check_count(files, int(options.max_images))  # at least one, at most max_images
    most = float(options.max_image_mb)
    for path in files:
        name = Path(path).name[:80] or "The image"
        if not Path(path).is_file():
            raise UserError(f"{name} is no longer on the server; attach it again.")
        if Path(path).stat().st_size > most * 2**20:
            raise UserError(f"{name} is larger than {most:g} MB; attach a smaller picture.")
        image_size(path, name, min_side=8)


def refusal(ctx, message) -> str | None:
    """The sentence that keeps `message` in the box (nothing is sent), or None when it may be sent."""
    text, files = split(message)
    if not text.strip() and not files:
        return EMPTY
    if not files:
        return None
    try:
        check_images(files, vision_context(ctx).options)
    except UserError as e:
        return str(e)
    return None


def vision_messages(system, history, text: str, files: list[str], most: int) -> tuple[tuple, tuple, int]:
    """(messages, images, pictures left out) for the vision `chat` method: the system prompt, the earlier turns
    (answers without this tab's footers and reasoning), the new message and its pictures; of the pictures, the
    newest `most` are kept (older turns keep their text)."""
    msgs: list[dict] = []
    images: list[str] = []
    if isinstance(system, str) and clean_text(system).strip():
        msgs.append({"role": "system", "text": clean_text(system).strip(), "images": ()})
    turns = [(m.get("role"), m.get("content")) for m in history or [] if isinstance(m, dict)
             and not (isinstance(m.get("metadata"), dict) and m["metadata"].get("title"))]
    for role, content in turns + [("user", [*({"path": f} for f in files), text.strip() or DESCRIBE])]:
        if role not in ("user", "assistant"):
            continue
        said, pics = parts(content)
        said = clean_text(said)
        if role == "assistant":
            said, pics = without_thinking(without_footer(said)), []
        new = tuple(range(len(images), len(images) + len(pics)))
        images += pics
        if msgs and msgs[-1]["role"] == role:  # gradio may keep one message's pictures and text apart
            last = msgs[-1]
            msgs[-1] = {"role": role, "text": "\n".join(t for t in (last["text"], said) if t),
                        "images": last["images"] + new}
        elif said.strip() or new:
            msgs.append({"role": role, "text": said, "images": new})
    cut = max(0, len(images) - most)
    for m in msgs:
        m["images"] = tuple(i - cut for i in m["images"] if i >= cut)
    return tuple(msgs), tuple(images[cut:]), cut


def answer(ctx, text: str, files: list[str], history, model, system_prompt, params, request=None):
    """(answer so far, details) pairs for a conversation with pictures, streamed from the vision demo: a loading line
    while the vision model loads, the growing text, then the text with its notes and stats footer and the record.
    `params`: the tab's checked GenParams (temperature, top-p and the token cap apply; the cap is the vision
    demo's at most)."""
    from demos.vision.types import Delta, Sampling, VisionChatRequest

    sent_at = time.time()
    vision = vision_context(ctx)
    picked = model if isinstance(model, str) and model in set(vision.listed_models()) - set(ctx.listed_models()) \
        else None  # a vision model named in the picker (or by an API client); a chat model: the vision default
    if picked is None:
        ctx.check_model(model)  # a model neither demo lists is named before anything loads
    if files:
        check_images(files, vision.options)
    msgs, images, cut = vision_messages(system_prompt, history, text, files, int(vision.options.max_images))
    sampling = Sampling(min(params.max_new_tokens, int(vision.options.max_new_tokens)), params.temperature,
                        params.top_p)
    session = hashlib.sha256(str(getattr(request, "session_hash", None) or "").encode()).hexdigest()
    shown = vision.choice(picked).display
    notes = [] if picked else [f"{_chat_name(ctx, model)} reads text only, so {shown}, this hub's vision model, "
                               "answered about the pictures of this conversation."]
    if cut:
        notes.append(f"The {cut} oldest pictures of this conversation were left out: the vision model sees at most "
                     f"{len(images)} at once.")
    loading = vision.loading_text(picked)
    if loading:
        yield loading, gr.skip()
    work = vision.stream("chat", VisionChatRequest(msgs, images, sampling, session), picked)
    out, first = "", None
    try:  # a Stop (gradio closes this generator) closes the stream: generation ends at the next token
        for item in work:
            if isinstance(item, Delta):
                first = first or time.time()
                out += item.text
                yield out, gr.skip()
                continue
            said = "".join(f"\n\n<sub>ℹ️ {n}</sub>" for n in notes)
            yield item.text + said + "\n\n" + footer(item, shown, sent_at, first), item.record
    finally:
        work.close()


def _chat_name(ctx, model) -> str:
    try:
        return ctx.choice(model).display
    except UserError:
        return "The chat model"


def footer(done, shown: str, sent_at: float, first: float | None) -> str:
    """The stats line under a vision answer, in the form the text answers have (so later turns strip it)."""
    seconds = max(time.time() - (first or sent_at), 1e-6)
    parts_ = [f"{done.completion_tokens} tokens", f"{done.completion_tokens / seconds:.1f} tokens/s"]
    if first is not None:
        parts_.append(f"first token {first - sent_at:.2f} s")
    parts_.append(f"🖼 {shown}")
    if done.images_cached:
        parts_.append("picture features reused")
    if done.finish_reason == "cancelled":
        parts_.append("stopped")
    elif done.finish_reason == "length":
        parts_.append("hit max new tokens")
    return "<sub>⏱ " + " · ".join(parts_) + "</sub>"
