"""The Stable Diffusion tab's LoRA picker: the LoRAs this hub has (the operator's folder and the fetched pins, with
their trigger words and base model), a list to add one from, and the "name:0.8, other:0.5" field the run sends
(the API's `loras` parameter). `<lora:name:0.8>` in the prompt works as well, as in AUTOMATIC1111."""

from __future__ import annotations

from types import SimpleNamespace

from demos.stable_diffusion import lora

FIELD = "LoRAs"
NONE_YET = ("No LoRAs on this hub yet: the operator can put .safetensors LoRAs (kohya/A1111 or diffusers format) in "
            "the folder `DEMOHUB_STABLE_DIFFUSION_LORA_DIR` names, or `demohub fetch stable_diffusion` the pinned "
            "ones.")


def rows(ctx) -> list[dict]:
    """What GET /v1/images/loras answers: every LoRA a request may name (lora.listing)."""
    return lora.listing(getattr(ctx.options, "lora_dir", ""), ctx.settings.cache_dir)


def _label(row: dict) -> str:
    words = ", ".join(row["trigger_words"])
    return f"{row['id']} ({row['base']})" + (f" \u2014 {words}" if words else "")


def _table(found: list[dict]) -> str:
    if not found:
        return NONE_YET
    lines = ["| LoRA | base | from | trigger words |", "|---|---|---|---|"]
    for r in found:
        words = ", ".join(r["trigger_words"]).replace("|", "/") or "\u2013"
        lines.append(f"| `{r['id']}` | {r['base']} | {r['source']} | {words} |")
    return "\n".join(lines) + "\n\nPick one above to add it, set its weight after the colon, or write " \
        "`<lora:name:0.8>` in the prompt."


def picker(ctx, c: SimpleNamespace) -> None:
    """The LoRA accordion (under the negative prompt) and its events: `c.loras` is the field the runs send."""
    import gradio as gr

    found = rows(ctx)
    with gr.Accordion("LoRA", open=False, elem_id="sd-lora"):
        with gr.Row(equal_height=True):
            c.lora_pick = gr.Dropdown([(_label(r), r["id"]) for r in found], value=None, label="Add a LoRA",
                                      info="name (base model) \u2014 trigger words", scale=6)
            c.lora_refresh = gr.Button("\u21bb Refresh", size="sm", scale=1, min_width=100)
        c.loras = gr.Textbox("", label=FIELD, placeholder="name:0.8, other:0.5 (or <lora:name:0.8> in the prompt)",
                             max_lines=2)
        c.lora_table = gr.Markdown(_table(found))
    quiet = dict(queue=False, show_progress="hidden", api_visibility="private")
    c.lora_pick.input(add, [c.lora_pick, c.loras], [c.loras, c.lora_pick], **quiet)

    def refresh():
        again = rows(ctx)
        return gr.update(choices=[(_label(r), r["id"]) for r in again], value=None), _table(again)

    c.lora_refresh.click(refresh, None, [c.lora_pick, c.lora_table], **quiet)


def add(name, text):
    """The field with `name` added at weight 1 (once), and the list reset for the next pick."""
    text = (text or "").strip()
    if not name:
        return text, None
    try:
        present = [n for n, _ in lora.parse_text(text)]
    except Exception:  # an over-long field: leave it for the run to refuse with its sentence
        return text, None
    if name not in present:
        text = f"{text}, {name}:1" if text else f"{name}:1"
    return text, None


def as_text(value) -> str:
    """A PNG's LoRAs (the demohub JSON's [{name, weight, hash}], or ComfyUI's text) as the field's text."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ", ".join(f"{x['name']}:{x.get('weight', 1):g}" for x in value if isinstance(x, dict)
                         and isinstance(x.get("name"), str) and isinstance(x.get("weight", 1), (int, float)))
    return ""
