"""Stable Diffusion: text-to-image, image-to-image and inpainting (diffusers); PNGs that carry their parameters.

types.py holds the work's requests and results, engine.py loads and runs the pipelines (its WORK: the txt2img,
img2img and inpaint methods, streaming a Step per denoising step), checks.py checks every input, decoder.py the tiny
decoder (TAESD, the default on a CPU), pipelines.py builds them (embedded architecture configs, folders, single
files), formats.py writes and reads the PNG parameters, fast.py compiles the UNet on CUDA, int8.py runs it in int8
through OpenVINO on a CPU (DEMOHUB_STABLE_DIFFUSION_INT8=1), ui.py builds the tab,
openai.py serves /v1/images/generations and /v1/images/edits. Operator settings:
DEMOHUB_STABLE_DIFFUSION_SAFETY_CHECKER=0 turns the safety checker off; DEMOHUB_COMPILE=1 or
DEMOHUB_STABLE_DIFFUSION_COMPILE=1 compiles the UNet at load; DEMOHUB_STABLE_DIFFUSION_LORA_DIR names a folder of LoRAs
(lora.py lists them, fuse.py fuses them; weighting.py reads A1111's prompt weighting, comfy.py ComfyUI's PNGs).
ControlNet: controlnet.py lists and checks the units (pinned v1.1 models, DEMOHUB_STABLE_DIFFUSION_CONTROLNET_DIR),
control_maps.py makes the preprocessors' maps, control_run.py loads the ControlNets and builds the pipelines (and the
control_map work method), ui_control.py the tab's units and their API parameters, openai_extras.py the /v1 `controlnet`
and `hires` extensions. The hires fix: hires.py (two passes; the upscaler models of demos/upscale) and ui_hires.py.
"""

from hub.contract import Demo, Example, Option, Sample

from demos.stable_diffusion.spec import SPEC
from demos.stable_diffusion.ui_control import DEFAULTS, FIELDS, HIRES, UNITS, prefix

__all__ = ["DEMO", "SPEC"]

_COMMON = {"seed": 1, "steps": 2, "guidance_scale": 7.5, "scheduler": "Euler a", "width": 64, "height": 64,
           "num_images": 1, "decoder": "tiny", "loras": ""}
# the ControlNet units' and the hires fix's parameters (ui_control.py), all off (tests/test_stable_diffusion_controlnet.py
# and tests/test_sd_hires.py turn them on)
_CONTROL = {prefix(k) + f: DEFAULTS[f] for k in range(UNITS) for f in FIELDS}
_HIRES = {name: value for name, value, _ in HIRES}

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
        Option("controlnet_dir", "", "A folder of diffusers ControlNet folders (config.json and weights; subfolders "
                                     "too), listed beside the pinned ones in the tab and GET /v1/images/controlnets "
                                     "by folder name (control_v11p_sd15_lineart, an SD 2.1 one...)."),
        Option("int8", False, "On a CPU, run the UNet in int8 through OpenVINO and NNCF (pip install "
                              "'demohub[openvino]', which `bash run.sh` installs): made once per checkpoint at its "
                              "first load with this on (about 4 minutes for SD-Turbo on 2 vCPUs) and cached. LoRAs, "
                              "ControlNet and sides that are not multiples of 64 run on torch's UNet."),
        Option("compile", False, "On CUDA, torch.compile the UNet at load (CUDA graphs, warmed up at the default "
                                 "size): faster steps, a minute or more of start. DEMOHUB_COMPILE=1 does it too."),
    ),
    examples=(
        Example("generate_image", {"model": "tiny-random", "prompt": "a red cube", "negative_prompt": "",
                                   **_COMMON, **_CONTROL, **_HIRES},
                bad={"width": 20}),
        Example("img2img", {"model": "tiny-random", "image": Sample("image"), "prompt": "a red cube",
                            "negative_prompt": "", "strength": 0.5, **_COMMON, **_CONTROL},
                bad={"image": None}),
        # The one layer of an uploaded picture has no transparency: it counts as painted all over (repaint all).
        Example("inpaint", {"model": "tiny-random",
                            "image": {"background": Sample("image"), "layers": [Sample("image")], "composite": None},
                            "mask": None, "prompt": "a red cube", "negative_prompt": "", "strength": 1.0, **_COMMON,
                            **_CONTROL},
                bad={"image": {"background": Sample("image"), "layers": [], "composite": None}}),
        # scribble: canny's low-above-high refusal would answer before the thresholds' own range checks (test_bounds)
        Example("control_map", {"model": "tiny-random", "image": Sample("image"), "preprocessor": "scribble",
                                "controlnet_model": "", "low": 100, "high": 200, "width": 64, "height": 64},
                bad={"preprocessor": "hed"}),
        # A PNG without parameters is a valid request: the fields stay as they are, with a warning.
        Example("read_parameters", {"file": Sample("image")}, bad={"file": None}, model_arg=None),
    ),
)
