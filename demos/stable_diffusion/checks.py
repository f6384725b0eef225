"""Stable Diffusion's input checks: every work function runs them before any work (engine.py). Out-of-range numbers
are refused with hub.validate's sentence, and so is a width or height that is not a multiple of 8 (the sentence names
the nearest valid sizes): nothing is clamped or rounded behind the user's back."""

from __future__ import annotations

import math
import secrets

from demos.stable_diffusion import lora
from demos.stable_diffusion.decoder import check_decoder
from demos.stable_diffusion.spec import MAX_GUIDANCE, MAX_IMAGES, MAX_SEED, MAX_SIDE, MAX_STEPS, MIN_SIDE, SCHEDULERS
from hub import validate
from hub.errors import UserError

# ---- input checks (all run before any work) -----------------------------------------------------------------------


def check_text_model(engine) -> None:
    if engine.is_inpainting_model:
        raise UserError("This is an inpainting model: use the Inpaint tab, or pick a text-to-image model.")


def check_common(engine, prompt, negative_prompt, seed, steps, guidance, scheduler, num_images, notes,
                 decoder=None, loras=()) -> dict:
    """The parameters every mode shares, checked; notes for an empty or over-long prompt. `loras`: the tab's or the
    body's LoRAs (lora.py: a "name:0.8, other:0.5" text or (name, weight) pairs), with the prompt's tags."""
    d = engine.defaults
    steps = validate.number(steps, "steps", 1, MAX_STEPS, integer=True, default=d["steps"])
    guidance = validate.number(guidance, "guidance scale", 0, MAX_GUIDANCE, default=d["guidance"])
    scheduler = validate.choice(scheduler, "the scheduler", SCHEDULERS, default=d["scheduler"])
    if scheduler not in engine.schedulers:
        *rest, last = engine.schedulers
        which = f"{', '.join(rest)} or {last} schedulers" if rest else f"{last} scheduler"
        raise UserError(f"{engine.model_id} runs only the {which}, not {scheduler}; pick one of them (or leave the "
                        "scheduler out for the model's own).")
    n = validate.number(num_images, "number of images", 1, MAX_IMAGES, integer=True, default=1)
    seed = validate.number(seed, "seed", -1, MAX_SEED, integer=True, default=-1)
    if seed == -1:
        seed = secrets.randbelow(MAX_SEED - MAX_IMAGES)
    prompt = "" if prompt is None else str(prompt)
    negative_prompt = "" if negative_prompt is None else str(negative_prompt)
    chosen = lora.check(engine, loras, prompt)  # before any work: names listed, weights in range, the same base
    text, negative_text = lora.split_tags(prompt)[0], lora.split_tags(negative_prompt)[0]
    if not text.strip():
        notes.append("The prompt is empty, so the model draws without a subject (an unconditioned image).")
    _check_length(engine.pipe.tokenizer, engine.prompt_limit, text, "prompt", notes)
    _check_length(engine.pipe.tokenizer, engine.prompt_limit, negative_text, "negative prompt", notes)
    p = {"prompt": prompt, "negative_prompt": negative_prompt, "seed": seed, "steps": steps,
         "guidance": float(guidance), "scheduler": scheduler, "num_images": n,
         "decoder": check_decoder(decoder, engine, notes), "model": engine.model_id, "revision": engine.revision}
    return {**p, "loras": chosen} if chosen else p


def check_side(value, name: str, default: int, multiple: int = 8) -> int:
    """A width or height: a whole number from MIN_SIDE to MAX_SIDE and a multiple of `multiple` (8: the VAE's
    scale; 16 for Z-Image, whose transformer also packs 2x2 latents). Anything else is refused with a sentence; one
    that is not a multiple names the two nearest valid sizes."""
    side = validate.number(value, name, MIN_SIDE, MAX_SIDE, integer=True, default=default)
    if side % multiple:
        below = side // multiple * multiple  # both neighbours are in range: MIN_SIDE and MAX_SIDE are multiples of 16
        raise UserError(f"{name.capitalize()} is {side}, which is not a multiple of {multiple}; use {below} or "
                        f"{below + multiple} (a multiple of {multiple} from {MIN_SIDE} to {MAX_SIDE}).")
    return side


def check_strength(value) -> float:
    return validate.number(value, "strength", 0, 1, lo_open=True)


def check_steps_for_strength(steps: int, strength: float, notes: list[str]) -> int:
    """img2img runs only steps x strength steps; make sure at least one runs."""
    if int(steps * strength) >= 1:
        return steps
    need = next((n for n in range(steps, MAX_STEPS + 1) if int(n * strength) >= 1), None)
    if need is None:  # also keeps 1 / strength (denormal strengths: inf) out of the step count
        raise UserError(f"Strength {strength:g} is too small: even {MAX_STEPS} steps would run no denoising step; "
                        f"use a strength of at least {math.ceil(1000 / MAX_STEPS) / 1000:g}.")
    notes.append(f"With strength {strength:g}, {steps} step(s) would run no denoising step at all; using {need} steps.")
    return need


def _check_length(tokenizer, limit: int, text: str, what: str, notes: list[str]) -> None:
    enc = tokenizer(text, add_special_tokens=False, truncation=False, return_offsets_mapping=True, verbose=False)
    ids = enc.input_ids
    if len(ids) > limit:
        dropped = text[enc.offset_mapping[limit][0]:].strip()
        notes.append(f"The {what} is {len(ids)} tokens long; the text encoder reads only {limit}, so this part was "
                     f"ignored: \u201c{dropped if len(dropped) <= 200 else dropped[:200] + ' ...'}\u201d.")


def check_fit(im, width, height, engine, notes: list[str]):
    """Fit `im` inside width x height (default: the model's size; the same checks as text to image) keeping its
    shape, sides multiples of 8."""
    from PIL import Image

    size, k = engine.defaults["size"], engine.multiple
    box_w = check_side(width, "width", size, k)
    box_h = check_side(height, "height", size, k)
    scale = min(box_w / im.width, box_h / im.height)
    # A very long, thin picture cannot keep its shape inside the size limits: its short side becomes MIN_SIDE.
    w = max(MIN_SIDE, min(MAX_SIDE, int(round(im.width * scale / k)) * k))
    h = max(MIN_SIDE, min(MAX_SIDE, int(round(im.height * scale / k)) * k))
    if (w, h) != im.size:
        notes.append(f"The image was resized from {im.width}x{im.height} to {w}x{h} to fit {box_w}x{box_h} "
                     f"(sides are multiples of {k}).")
        im = im.resize((w, h), Image.Resampling.LANCZOS)
    return im


EMPTY_MASK = ("The mask is empty: paint over the part of the image to repaint (white = repaint), "
              "or upload a black-and-white mask.")


def check_mask(mask):
    if mask.getbbox() is None:
        raise UserError(EMPTY_MASK)
    return mask
