"""Stable Diffusion: text-to-image, image-to-image and inpainting (diffusers); PNGs that carry their parameters.

types.py holds the work's requests and results, engine.py loads and runs the pipelines (its WORK: the txt2img,
img2img and inpaint methods, streaming a Step per denoising step), checks.py checks every input, decoder.py the tiny
decoder (TAESD, the default on a CPU), pipelines.py builds them (embedded architecture configs, folders, single
files), formats.py writes and reads the PNG parameters, fast.py compiles the UNet on CUDA, ui.py builds the tab,
openai.py serves /v1/images/generations and /v1/images/edits. Operator settings:
DEMOHUB_STABLE_DIFFUSION_SAFETY_CHECKER=0 turns the safety checker off; DEMOHUB_COMPILE=1 or
DEMOHUB_STABLE_DIFFUSION_COMPILE=1 compiles the UNet at load; DEMOHUB_STABLE_DIFFUSION_LORA_DIR names a folder of LoRAs
(lora.py lists them, fuse.py fuses them; weighting.py reads A1111's prompt weighting, comfy.py ComfyUI's PNGs).
"""

from hub.contract import Demo, Example, Option, Sample

from demos.stable_diffusion.spec import SPEC

__all__ = ["DEMO", "SPEC"]

_COMMON = {"seed": 1, "steps": 2, "guidance_scale": 7.5, "scheduler": "Euler a", "width": 64, "height": 64,
           "num_images": 1, "decoder": "tiny", "loras": ""}

DEMO = Demo(
    spec=SPEC,
    load="demos.stable_diffusion.engine:load",
    ui="demos.stable_diffusion.ui:build",
    work="demos.stable_diffusion.engine:WORK",
    routes="demos.stable_diffusion.openai:routes",
    options=(
        Option("safety_checker", True, "Run the model's own safety checker on every image (models that ship one); "
                                       "flagged images are blacked out. 0 turns it off."),
        Option("offload", "auto", "On a CUDA GPU: auto puts the whole model on the GPU when it fits, else uses model "
                                  "CPU offload (one component at a time; Z-Image-Turbo on a 16 GB GPU), else "
                                  "sequential offload (layer by layer, slow). model, sequential or none force one.",
               choices=("auto", "model", "sequential", "none")),
        Option("lora_dir", "", "A folder of .safetensors LoRAs (kohya/A1111 or diffusers format; subfolders too): "
                               "listed in the tab and GET /v1/images/loras, used by name or with <lora:name:0.8> "
                               "in the prompt. Empty: only the pinned Hub LoRAs that `demohub fetch` got."),
        Option("compile", False, "On CUDA, torch.compile the UNet at load (CUDA graphs, warmed up at the default "
                                 "size): faster steps, a minute or more of start. DEMOHUB_COMPILE=1 does it too."),
    ),
    examples=(
        Example("generate_image", {"model": "tiny-random", "prompt": "a red cube", "negative_prompt": "",
                                   **_COMMON},
                bad={"width": 20}),
        Example("img2img", {"model": "tiny-random", "image": Sample("image"), "prompt": "a red cube",
                            "negative_prompt": "", "strength": 0.5, **_COMMON},
                bad={"image": None}),
        # The one layer of an uploaded picture has no transparency: it counts as painted all over (repaint all).
        Example("inpaint", {"model": "tiny-random",
                            "image": {"background": Sample("image"), "layers": [Sample("image")], "composite": None},
                            "mask": None, "prompt": "a red cube", "negative_prompt": "", "strength": 1.0, **_COMMON},
                bad={"image": {"background": Sample("image"), "layers": [], "composite": None}}),
        # A PNG without parameters is a valid request: the fields stay as they are, with a warning.
        Example("read_parameters", {"file": Sample("image")}, bad={"file": None}, model_arg=None),
    ),
)
