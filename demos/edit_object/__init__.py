"""Edit by object: a chain over other demos' models, with no model of its own (hub.chain).

Upload a photo; YOLO finds the objects (pick them by class name, by clicking a detected box, or click + / - points
for SAM directly); SAM turns each pick into a mask; then a cut-out PNG with alpha, the mask PNG, **replace** (Stable
Diffusion inpainting inside the mask grown and feathered by N px, with a prompt) or **remove** (inpainting with a
"background" prompt). Each step borrows its demo's model under the hub's one memory budget (a model that does not fit
beside the previous one waits for it to be released, and the status says so); the result carries one record of
every step. flow.py runs the steps, masks.py grows, feathers, crops and composites, engine.py's one work method
(`compose`) composites, formats.py writes the PNG and JSON, ui.py builds the tab.
"""

from hub.contract import Demo, Example, Sample
from hub.spec import DemoSpec, ModelChoice

__all__ = ["DEMO", "SPEC", "STEPS"]

STEPS = ("yolo_detect", "sam_segment", "stable_diffusion")  # the demos whose models the chain runs

SPEC = DemoSpec(
    name="edit_object",
    title="Edit by object",
    description="Pick objects in a photo (YOLO finds them, SAM masks them), then cut them out, or replace or remove "
                "them with Stable Diffusion inpainting: one request over three models, with one record.",
    # No weights: compositing is numpy. "tiny-random" is the contract's name for the model a test may always load.
    models=(ModelChoice("tiny-random", "random", label="no model (compositing only)", hidden=True),),
    default_model={"cpu": "tiny-random"},
    api_names=("select_objects", "cut_out", "replace_object", "remove_object"),
    zero_gpu_seconds=120,
    gpu_share=0.0,  # Ray backend: no GPU of its own (CPU work; a chain's steps run on their demos' replicas)
)

_PICK = {"image": Sample("image"), "classes": "", "clicks": '[[60, 40, "+"]]', "conf": 0.25,
         "detector": "tiny-random", "segmenter": "tiny-random"}
_PAINT = {"grow": 4, "feather": 2, "steps": 2, "seed": 1, "size": 64, "painter": "tiny-random"}
_NONE = {"classes": "unicorn", "clicks": ""}  # YOLO runs and finds no unicorn: a sentence naming the step

DEMO = Demo(
    spec=SPEC,
    load="demos.edit_object.engine:load",
    work="demos.edit_object.engine:WORK",
    ui="demos.edit_object.ui:build",
    examples=(
        Example("select_objects", _PICK, bad=_NONE, model_arg=None),
        Example("cut_out", _PICK, bad={"clicks": '[[9999, 5, "+"]]'}, model_arg=None),
        Example("replace_object", {**_PICK, "prompt": "a red ball", "negative_prompt": "", **_PAINT},
                bad={"grow": 9999}, model_arg=None),
        Example("remove_object", {**_PICK, **_PAINT}, bad=_NONE, model_arg=None),
    ),
    extra={"chain": STEPS},  # the hub shows no random-weights banner for its own (weightless) model
)
